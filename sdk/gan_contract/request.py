"""A sampling request against one model: validation, seeds → codes → named model inputs.

The one definition of "image i of seed s" as a model sees it. The server's
data plane, the TorchServe handler, the evaluation and the Triton client
example all plan and feed through these functions, so a request gives the
same inputs (and, on the same backend, the same bytes) wherever it runs.

    spec = SampleSpec(count=8, seed=3, digit=7)
    plan = plan_request(manifest, spec)           # InvalidArgument names the field
    feeds, classes = model_inputs(manifest, plan, start=0, count=8)
    images = to_uint8(run_graph(feeds), manifest.image.value_range)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InvalidArgument, shown
from .latents import MAX_SEED, Codes, draw_codes
from .manifest import Conditioning, Manifest

CONDITION_FIELDS = ("digit", "label", "category")


@dataclass(frozen=True)
class SampleSpec:
    """One sampling request, shapes checked; values are checked by :func:`plan_request`."""

    count: int
    seed: int = 0
    digit: int | None = None
    label: str | None = None
    category: int | None = None
    continuous: tuple[float, ...] = ()
    latents: np.ndarray | None = None  # (count, latent_dim) float32
    return_latents: bool = False
    first_index: int = 0  # image i of the request is stream (seed, first_index + i)


@dataclass(frozen=True)
class Plan:
    """What to feed the generator for images ``0..count-1``."""

    spec: SampleSpec
    fixed_class: int | None  # class index (class models) or category (InfoGAN) for all images


def num_classes(cond: Conditioning) -> int:
    """Classes a model takes: class names (class models), categories (InfoGAN), else 0."""
    if cond.kind == "class":
        return len(cond.class_names)
    if cond.kind == "infogan":
        return cond.num_categories
    return 0


def condition_asked(digit: int | None, label: str | None, category: int | None) -> str | None:
    """The one conditioning field given, or None; InvalidArgument when more than one is."""
    asked = [f for f, v in zip(CONDITION_FIELDS, (digit, label, category)) if v is not None]
    if len(asked) > 1:
        raise InvalidArgument(asked[1], f"give at most one of digit, label, category (got {', '.join(asked)})")
    return asked[0] if asked else None


def class_for_digit(manifest: Manifest, digit: int) -> int:
    """The class index (class models) or InfoGAN category that draws ``digit``."""
    cond = manifest.conditioning
    if not 0 <= digit <= 9:
        raise InvalidArgument("digit", f"must be in [0, 9], got {digit}")
    if cond.kind == "class":
        names = list(cond.class_names)
        if str(digit) not in names:
            raise InvalidArgument(
                "digit", f"model {manifest.name!r} labels its classes by name ({', '.join(names)}); use label instead"
            )
        return names.index(str(digit))
    return _category_drawing(manifest, digit, "digit", f"digit {digit}")


def _category_drawing(manifest: Manifest, digit: int, field: str, what: str) -> int:
    """The InfoGAN category that draws ``digit`` (an index into class_names), through the learned map."""
    cond = manifest.conditioning
    if not cond.category_to_digit:
        raise InvalidArgument(field, f"model {manifest.name!r} has no category-to-digit map; use category instead")
    if digit not in cond.category_to_digit:
        raise InvalidArgument(field, f"model {manifest.name!r} has no category matched to {what}")
    return cond.category_to_digit.index(digit)


def class_for_label(manifest: Manifest, label: str) -> int:
    """The class index (class models) or InfoGAN category of class name ``label``."""
    cond = manifest.conditioning
    names = list(cond.class_names)
    if label not in names:
        raise InvalidArgument(
            "label", f"model {manifest.name!r} has no class {shown(label)}; classes: {', '.join(names)}"
        )
    index = names.index(label)
    if cond.kind == "infogan":
        # class_names name what category_to_digit points at; the error names the field sent
        return _category_drawing(manifest, index, "label", f"label {label!r}")
    return index


def plan_request(manifest: Manifest, spec: SampleSpec, conditional_models: Sequence[str] | None = None) -> Plan:
    """Check ``spec`` against ``manifest``; raise InvalidArgument naming the field.

    ``conditional_models`` (names of loaded models that take a condition) only
    improves the message for a condition sent to an unconditional model; with
    None (a process serving one model) the message does not list them.
    """
    m = manifest
    cond = m.conditioning
    if not 0 <= spec.seed <= MAX_SEED:
        raise InvalidArgument("seed", f"must be in [0, 2**64 - 1], got {spec.seed}")
    if not 0 <= spec.first_index <= MAX_SEED - spec.count:
        raise InvalidArgument("first_index", f"first_index + count must stay below 2**64, got {spec.first_index}")
    asked = condition_asked(spec.digit, spec.label, spec.category)
    if asked and cond.kind == "none":
        problem = f"model {m.name!r} is unconditional and takes no {asked}"
        if conditional_models is not None:
            problem += f"; models that take one: {', '.join(conditional_models) or 'none are loaded'}"
        raise InvalidArgument(asked, problem)
    fixed: int | None = None
    if spec.digit is not None:
        fixed = class_for_digit(m, spec.digit)
    elif spec.label is not None:
        fixed = class_for_label(m, spec.label)
    elif spec.category is not None:
        if cond.kind != "infogan":
            raise InvalidArgument("category", f"model {m.name!r} is not an InfoGAN model; use digit or label")
        if not 0 <= spec.category < cond.num_categories:
            raise InvalidArgument("category", f"must be in [0, {cond.num_categories - 1}], got {spec.category}")
        fixed = spec.category
    if spec.continuous:
        if cond.kind != "infogan":
            raise InvalidArgument("continuous", f"model {m.name!r} has no continuous codes")
        if len(spec.continuous) != cond.num_continuous:
            raise InvalidArgument(
                "continuous",
                f"model {m.name!r} has {cond.num_continuous} continuous codes, got {len(spec.continuous)} values",
            )
        if not all(math.isfinite(v) for v in spec.continuous):
            raise InvalidArgument("continuous", "values must be finite (no NaN or inf)")
    if spec.latents is not None:
        want = (spec.count, m.latent.dim)
        if spec.latents.shape != want:
            raise InvalidArgument(
                "latents",
                f"expected count x latent_dim = {want[0]} x {want[1]} = {want[0] * want[1]} values, "
                f"got {spec.latents.size}",
            )
        if not np.all(np.isfinite(spec.latents)):
            raise InvalidArgument("latents", "values must be finite (no NaN or inf)")
    return Plan(spec=spec, fixed_class=fixed)


def draw(manifest: Manifest, seed: int, start: int, count: int) -> Codes:
    """The codes of images ``start .. start+count-1`` of seed ``seed`` for this model."""
    cond = manifest.conditioning
    return draw_codes(
        seed,
        start,
        count,
        manifest.latent.dim,
        num_categories=num_classes(cond),
        num_continuous=cond.num_continuous,
        continuous_range=cond.continuous_range,
    )


def inputs_from_codes(
    manifest: Manifest,
    codes: Codes,
    classes: np.ndarray | None = None,
    continuous: Sequence[float] = (),
    z: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Named graph inputs from drawn codes, and the class index of each image.

    ``classes`` (N,) overrides the drawn class/category per image, ``continuous``
    the drawn InfoGAN codes for every image, ``z`` the drawn latents.
    """
    cond = manifest.conditioning
    count = len(codes.z)
    z = codes.z if z is None else np.ascontiguousarray(z, np.float32)
    classes = codes.category if classes is None else np.asarray(classes, np.int64)
    feeds: dict[str, np.ndarray] = {"z": z}
    if cond.kind == "class":
        feeds["label"] = classes
    elif cond.kind == "infogan":
        feeds["category"] = np.eye(cond.num_categories, dtype=np.float32)[classes]
        cont = codes.continuous
        if continuous:
            cont = np.tile(np.asarray(continuous, np.float32), (count, 1))
        feeds["continuous"] = cont
    return feeds, classes


def model_inputs(manifest: Manifest, plan: Plan, start: int, count: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Graph inputs for images ``start .. start+count-1`` of a planned request, and their classes."""
    spec = plan.spec
    codes = draw(manifest, spec.seed, spec.first_index + start, count)
    z = None if spec.latents is None else spec.latents[start : start + count]
    classes = None if plan.fixed_class is None else np.full(count, plan.fixed_class, np.int64)
    return inputs_from_codes(manifest, codes, classes, spec.continuous, z)


def reported_classes(manifest: Manifest, classes: np.ndarray) -> np.ndarray:
    """Classes as the API reports them: int32, -1 for every image of an unconditional model."""
    if manifest.conditioning.kind == "none":
        return np.full(len(classes), -1, np.int32)
    return classes.astype(np.int32)
