"""Sampling: a request (domain type) → latent codes → backend → uint8 images.

Nothing here knows about gRPC, so it can be tested and benchmarked directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gan_contract.latents import MAX_SEED, draw_codes
from gan_contract.manifest import Manifest

from .backends import Backend
from .errors import InvalidArgument


@dataclass(frozen=True)
class SampleSpec:
    """One validated-shape sampling request (values are checked by the model)."""

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
    fixed_class: int | None  # class index (cgan) or category (infogan) for all images


@dataclass
class SampleOutput:
    images: np.ndarray  # (N, H, W, C) uint8
    latents: np.ndarray | None  # (N, dim) float32 when asked for
    classes: np.ndarray  # (N,) int32: class index / InfoGAN category, -1 if none


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, C, H, W) floats in ``value_range`` → (N, H, W, C) uint8, rounded."""
    low, high = value_range
    scaled = (images.astype(np.float32) - low) * (255.0 / (high - low))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(0, 2, 3, 1))


class LoadedModel:
    """A model version whose backend is ready: turns plans into images."""

    def __init__(self, manifest: Manifest, backend: Backend, directory: Path, encoder: Backend | None = None) -> None:
        self.manifest = manifest
        self.backend = backend
        self.encoder = encoder  # image -> latent graph (BiGAN, VAE-GAN), if exported
        self.directory = directory
        self.manifest_json = (directory / "manifest.json").read_text(encoding="utf-8")
        self.in_flight = 0  # requests using this model now (for unloading)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def takes_condition(self) -> bool:
        return self.manifest.conditioning.kind != "none"

    @property
    def num_classes(self) -> int:
        cond = self.manifest.conditioning
        if cond.kind == "class":
            return len(cond.class_names)
        if cond.kind == "infogan":
            return cond.num_categories
        return 0

    # -- validation -------------------------------------------------------

    def plan(self, spec: SampleSpec, conditional_models: list[str] | None = None) -> Plan:
        """Check ``spec`` against this model; raise InvalidArgument naming the field."""
        m = self.manifest
        cond = m.conditioning
        if not 0 <= spec.seed <= MAX_SEED:
            raise InvalidArgument("seed", f"must be in [0, 2**64 - 1], got {spec.seed}")
        if not 0 <= spec.first_index <= MAX_SEED - spec.count:
            raise InvalidArgument("first_index", f"first_index + count must stay below 2**64, got {spec.first_index}")
        asked = [
            f for f, v in (("digit", spec.digit), ("label", spec.label), ("category", spec.category)) if v is not None
        ]
        if len(asked) > 1:
            raise InvalidArgument(asked[1], f"give at most one of digit, label, category (got {', '.join(asked)})")
        if asked and cond.kind == "none":
            takers = ", ".join(conditional_models or []) or "none are loaded"
            raise InvalidArgument(
                asked[0], f"model {m.name!r} is unconditional and takes no {asked[0]}; models that take one: {takers}"
            )
        fixed: int | None = None
        if spec.digit is not None:
            fixed = self._class_for_digit(spec.digit)
        elif spec.label is not None:
            fixed = self._class_for_label(spec.label)
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

    def _class_for_digit(self, digit: int) -> int:
        m = self.manifest
        cond = m.conditioning
        if not 0 <= digit <= 9:
            raise InvalidArgument("digit", f"must be in [0, 9], got {digit}")
        if cond.kind == "class":
            names = list(cond.class_names)
            if str(digit) not in names:
                raise InvalidArgument(
                    "digit", f"model {m.name!r} labels its classes by name ({', '.join(names)}); use label instead"
                )
            return names.index(str(digit))
        # infogan: through the category -> digit map learned after training
        if not cond.category_to_digit:
            raise InvalidArgument("digit", f"model {m.name!r} has no category-to-digit map; use category instead")
        if digit not in cond.category_to_digit:
            raise InvalidArgument("digit", f"model {m.name!r} has no category matched to digit {digit}")
        return cond.category_to_digit.index(digit)

    def _class_for_label(self, label: str) -> int:
        m = self.manifest
        cond = m.conditioning
        names = list(cond.class_names)
        if label not in names:
            raise InvalidArgument("label", f"model {m.name!r} has no class {label!r}; classes: {', '.join(names)}")
        index = names.index(label)
        if cond.kind == "infogan":
            return self._class_for_digit(index)
        return index

    # -- execution --------------------------------------------------------

    def feeds(self, plan: Plan, start: int, count: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Graph inputs for images ``start .. start+count-1``, and their classes."""
        m = self.manifest
        cond = m.conditioning
        spec = plan.spec
        codes = draw_codes(
            spec.seed,
            spec.first_index + start,
            count,
            m.latent.dim,
            num_categories=self.num_classes,
            num_continuous=cond.num_continuous,
            continuous_range=cond.continuous_range,
        )
        z = codes.z if spec.latents is None else np.ascontiguousarray(spec.latents[start : start + count], np.float32)
        classes = codes.category if plan.fixed_class is None else np.full(count, plan.fixed_class, np.int64)
        feeds: dict[str, np.ndarray] = {"z": z}
        if cond.kind == "class":
            feeds["label"] = classes
        elif cond.kind == "infogan":
            feeds["category"] = np.eye(cond.num_categories, dtype=np.float32)[classes]
            cont = codes.continuous
            if spec.continuous:
                cont = np.tile(np.asarray(spec.continuous, np.float32), (count, 1))
            feeds["continuous"] = cont
        return feeds, classes

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph; return uint8 (N, H, W, C). Feeds of several requests may be stacked."""
        return to_uint8(self.backend.run(feeds), self.manifest.image.value_range)

    def output(self, plan: Plan, feeds: dict[str, np.ndarray], classes: np.ndarray, images: np.ndarray) -> SampleOutput:
        return SampleOutput(
            images=images,
            latents=feeds["z"] if plan.spec.return_latents else None,
            classes=(classes if self.takes_condition else np.full(len(classes), -1)).astype(np.int32),
        )

    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) images → float32 (N, latent_dim) latents."""
        if self.encoder is None:
            raise InvalidArgument("model", f"model {self.name!r} has no encoder")
        low, high = self.manifest.image.value_range
        x = images.astype(np.float32).transpose(0, 3, 1, 2) * ((high - low) / 255.0) + low
        return np.ascontiguousarray(self.encoder.run({"images": np.ascontiguousarray(x)}), dtype=np.float32)

    def generate(self, plan: Plan, start: int, count: int) -> SampleOutput:
        """Images ``start .. start+count-1`` of the planned request, in one backend run."""
        feeds, classes = self.feeds(plan, start, count)
        return self.output(plan, feeds, classes, self.run(feeds))
