"""A sampling request against one model: validation, seeds → codes → named model inputs.

The one definition of "image i of seed s" as a model sees it. The server's
data plane, the TorchServe handler, the evaluation and the Triton client
example all plan and feed through these functions, so a request gives the
same inputs (and, on the same backend, the same bytes) wherever it runs.

    spec = SampleSpec(count=8, seed=3, digit=7)
    plan = plan_request(manifest, spec)           # InvalidArgument names the field
    feeds, classes = model_inputs(manifest, plan, start=0, count=8)
    images = to_uint8(run_graph(feeds), manifest.image.value_range)

The rules from codes to inputs run on numpy arrays, or on torch tensors on
any device (``device=`` below: a server that keeps the whole hot loop on a
GPU), with the same values: torch is imported only then.
"""

from __future__ import annotations

import dataclasses
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


def draw(manifest: Manifest, seed: int, start: int, count: int, device=None) -> Codes:
    """The codes of images ``start .. start+count-1`` of seed ``seed`` for this model,
    under the latent scheme its manifest names.

    With ``device`` (a torch device), tensors on it (``TorchCodes``, same fields):
    the vectorised scheme is drawn there; the per-image one by numpy, then copied.
    """
    return draw_many(manifest, [(seed, start, count)], device)


def draw_many(manifest: Manifest, runs: Sequence[tuple[int, int, int]], device=None) -> Codes:
    """The codes of several runs ``(seed, start, count)`` of images, stacked in order
    (the chunks of one backend run). On a torch ``device`` the vectorised scheme
    draws all the rows in one pass."""
    cond = manifest.conditioning
    shape = dict(
        dim=manifest.latent.dim,
        num_categories=num_classes(cond),
        num_continuous=cond.num_continuous,
        continuous_range=cond.continuous_range,
    )
    if device is not None and manifest.latent_scheme == "philox4x32-vectorised":
        from .counter_rng_torch import draw_codes_torch, draw_rows_torch  # torch: only when a device is asked for

        if len(runs) == 1:
            ((seed, start, count),) = runs
            return draw_codes_torch(seed, start, count, **shape, device=device)
        seeds = np.concatenate([np.full(count, seed, np.uint64) for seed, _, count in runs])
        indices = np.concatenate([np.arange(count, dtype=np.uint64) + np.uint64(start) for _, start, count in runs])
        return draw_rows_torch(seeds, indices, **shape, device=device)
    parts = [draw_codes(seed, start, count, scheme=manifest.latent_scheme, **shape) for seed, start, count in runs]
    codes = parts[0]
    if len(parts) > 1:
        codes = Codes(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Codes)))
    if device is None:
        return codes
    from .counter_rng_torch import TorchCodes  # torch: only when a device is asked for

    ops = _TorchOps(device)
    return TorchCodes(
        z=ops.float32(codes.z), category=ops.int64(codes.category), continuous=ops.float32(codes.continuous)
    )


class _NumpyOps:
    """The array operations the input rules use, on numpy arrays."""

    def float32(self, x) -> np.ndarray:
        return np.ascontiguousarray(x, np.float32)

    def int64(self, x) -> np.ndarray:
        return np.asarray(x, np.int64)

    def full(self, count: int, value: int) -> np.ndarray:
        return np.full(count, value, np.int64)

    def one_hot(self, classes, n: int) -> np.ndarray:
        return np.eye(n, dtype=np.float32)[classes]

    def tile(self, values: Sequence[float], count: int) -> np.ndarray:
        return np.tile(np.asarray(values, np.float32), (count, 1))

    def concat(self, arrays: list) -> np.ndarray:
        return np.concatenate(arrays)


class _TorchOps:
    """The same operations on torch tensors on ``device`` (host values are copied there)."""

    def __init__(self, device) -> None:
        import torch  # optional: the contract itself needs numpy only

        self.torch = torch
        self.device = torch.device(device)

    def float32(self, x):
        return self.torch.as_tensor(x, dtype=self.torch.float32, device=self.device).contiguous()

    def int64(self, x):
        return self.torch.as_tensor(x, dtype=self.torch.int64, device=self.device)

    def full(self, count: int, value: int):
        return self.torch.full((count,), value, dtype=self.torch.int64, device=self.device)

    def one_hot(self, classes, n: int):
        return self.torch.eye(n, dtype=self.torch.float32, device=self.device)[classes]

    def tile(self, values: Sequence[float], count: int):
        return self.torch.tensor(list(values), dtype=self.torch.float32, device=self.device).repeat(count, 1)

    def concat(self, arrays: list):
        return self.torch.cat(arrays)


def _ops(codes: Codes) -> _NumpyOps | _TorchOps:
    """numpy's operations for numpy codes, torch's on their device for tensors."""
    if isinstance(codes.z, np.ndarray):
        return _NumpyOps()
    return _TorchOps(codes.z.device)


def inputs_from_codes(
    manifest: Manifest,
    codes: Codes,
    classes=None,
    continuous: Sequence[float] = (),
    z=None,
) -> tuple[dict, object]:
    """Named graph inputs from drawn codes, and the class index of each image.

    ``classes`` (N,) overrides the drawn class/category per image, ``continuous``
    the drawn InfoGAN codes for every image, ``z`` the drawn latents. The inputs
    are numpy arrays for numpy codes, tensors on the codes' device for torch
    codes (``classes`` and ``z`` may then be host arrays: they are copied there).
    """
    ops = _ops(codes)
    cond = manifest.conditioning
    count = len(codes.z)
    z = codes.z if z is None else ops.float32(z)
    classes = codes.category if classes is None else ops.int64(classes)
    feeds = {"z": z}
    if cond.kind == "class":
        feeds["label"] = classes
    elif cond.kind == "infogan":
        feeds["category"] = ops.one_hot(classes, cond.num_categories)
        cont = codes.continuous
        if continuous:
            cont = ops.tile(continuous, count)
        feeds["continuous"] = cont
    return feeds, classes


def _plain(plan: Plan) -> bool:
    """Whether the request takes its inputs as drawn (nothing fixed or given)."""
    return plan.fixed_class is None and not plan.spec.continuous and plan.spec.latents is None


def _chunk_inputs(manifest: Manifest, plan: Plan, start: int, count: int, codes: Codes) -> tuple[dict, object]:
    spec = plan.spec
    z = None if spec.latents is None else spec.latents[start : start + count]
    classes = None if plan.fixed_class is None else _ops(codes).full(count, plan.fixed_class)
    return inputs_from_codes(manifest, codes, classes, spec.continuous, z)


def batch_inputs(manifest: Manifest, chunks: Sequence[tuple[Plan, int, int]], device=None) -> tuple[dict, object]:
    """Graph inputs of several chunks ``(plan, start, count)`` of planned requests
    (images ``start .. start+count-1`` of each), stacked in order, and their classes.

    numpy arrays, or with ``device`` (a torch device) tensors on it: the codes are
    drawn once for all the chunks and each chunk's values replace its own rows.
    """
    runs = [(plan.spec.seed, plan.spec.first_index + start, count) for plan, start, count in chunks]
    codes = draw_many(manifest, runs, device)
    if all(_plain(plan) for plan, _, _ in chunks):
        return inputs_from_codes(manifest, codes)
    parts, offset = [], 0
    for plan, start, count in chunks:
        rows = slice(offset, offset + count)
        part = dataclasses.replace(
            codes, z=codes.z[rows], category=codes.category[rows], continuous=codes.continuous[rows]
        )
        parts.append(_chunk_inputs(manifest, plan, start, count, part))
        offset += count
    if len(parts) == 1:
        return parts[0]
    ops = _ops(codes)
    feeds = {name: ops.concat([f[name] for f, _ in parts]) for name in parts[0][0]}
    return feeds, ops.concat([c for _, c in parts])


def model_inputs(
    manifest: Manifest, plan: Plan, start: int, count: int, device=None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Graph inputs for images ``start .. start+count-1`` of a planned request, and their classes
    (numpy; with ``device``, torch tensors on it)."""
    return batch_inputs(manifest, [(plan, start, count)], device)


def reported_classes(manifest: Manifest, classes: np.ndarray) -> np.ndarray:
    """Classes as the API reports them: int32, -1 for every image of an unconditional model."""
    if manifest.conditioning.kind == "none":
        return np.full(len(classes), -1, np.int32)
    return classes.astype(np.int32)
