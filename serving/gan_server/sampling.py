"""Sampling: a planned request → backend → uint8 images.

Validation and codes → inputs are the contract's (``gan_contract.request``);
this module adds the backend. Nothing here knows about gRPC, so it can be
tested and benchmarked directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gan_contract.errors import InvalidArgument
from gan_contract.images import from_uint8, to_uint8
from gan_contract.manifest import Manifest
from gan_contract.request import Plan, SampleSpec, model_inputs, num_classes, plan_request, reported_classes

from .backends import Backend


@dataclass
class SampleOutput:
    images: np.ndarray  # (N, H, W, C) uint8
    latents: np.ndarray | None  # (N, dim) float32 when asked for
    classes: np.ndarray  # (N,) int32: class index / InfoGAN category, -1 if none


class LoadedModel:
    """A model version whose backend is ready: turns plans into images."""

    def __init__(
        self,
        manifest: Manifest,
        backend: Backend,
        directory: Path,
        encoder: Backend | None = None,
        manifest_json: str | None = None,
    ) -> None:
        self.manifest = manifest
        self.backend = backend
        self.encoder = encoder  # image -> latent graph (BiGAN, VAE-GAN), if exported
        self.directory = directory
        # The text the manifest was parsed from (read again only when not given).
        if manifest_json is None:
            manifest_json = (directory / "manifest.json").read_text(encoding="utf-8")
        self.manifest_json = manifest_json
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
        return num_classes(self.manifest.conditioning)

    def plan(self, spec: SampleSpec, conditional_models: list[str] | None = None) -> Plan:
        """Check ``spec`` against this model; raise InvalidArgument naming the field."""
        return plan_request(self.manifest, spec, conditional_models)

    def feeds(self, plan: Plan, start: int, count: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Graph inputs for images ``start .. start+count-1``, and their classes."""
        return model_inputs(self.manifest, plan, start, count)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph; return uint8 (N, H, W, C). Feeds of several requests may be stacked."""
        return to_uint8(self.backend.run(feeds), self.manifest.image.value_range)

    def output(self, plan: Plan, feeds: dict[str, np.ndarray], classes: np.ndarray, images: np.ndarray) -> SampleOutput:
        return SampleOutput(
            images=images,
            latents=feeds["z"] if plan.spec.return_latents else None,
            classes=reported_classes(self.manifest, classes),
        )

    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) images → float32 (N, latent_dim) latents."""
        if self.encoder is None:
            raise InvalidArgument("model", f"model {self.name!r} has no encoder")
        x = from_uint8(images, self.manifest.image.value_range)
        return np.ascontiguousarray(self.encoder.run({"images": x}), dtype=np.float32)

    def generate(self, plan: Plan, start: int, count: int) -> SampleOutput:
        """Images ``start .. start+count-1`` of the planned request, in one backend run."""
        return self.run_chunks([(plan, start, count)])[0]

    def run_chunks(self, chunks: list[tuple[Plan, int, int]]) -> list[SampleOutput]:
        """Chunks ``(plan, start, count)`` of planned requests, stacked in one backend run; one output each.

        A backend with ``sample`` (torchscript) does the whole run on its device;
        otherwise the inputs are built here with numpy and only the graph runs in
        the backend.
        """
        if hasattr(self.backend, "sample"):
            return self._run_on_device(chunks)
        prepared = [self.feeds(plan, start, count) for plan, start, count in chunks]
        if len(prepared) == 1:
            stacked = prepared[0][0]
        else:
            stacked = {name: np.concatenate([feeds[name] for feeds, _ in prepared]) for name in prepared[0][0]}
        images = self.run(stacked)
        outputs, offset = [], 0
        for (plan, _, count), (feeds, classes) in zip(chunks, prepared):
            outputs.append(self.output(plan, feeds, classes, images[offset : offset + count]))
            offset += count
        return outputs

    def _run_on_device(self, chunks: list[tuple[Plan, int, int]]) -> list[SampleOutput]:
        images, latents, classes = self.backend.sample(self.manifest, chunks)
        outputs, offset = [], 0
        for (plan, _, count), z in zip(chunks, latents):
            if classes is not None:
                drawn = classes[offset : offset + count]
            else:  # not drawn: the request's fixed class, or none (reported as -1)
                drawn = np.full(count, -1 if plan.fixed_class is None else plan.fixed_class, np.int64)
            outputs.append(SampleOutput(images[offset : offset + count], z, reported_classes(self.manifest, drawn)))
            offset += count
        return outputs
