"""Class-conditional GAN (Mirza & Osindero, 2014) with a projection discriminator.

G(z, label) draws the requested digit; D(x, label) judges whether x is a
real example *of that label*. Fakes get uniformly drawn labels.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import TrainConfig
from ..models import GeneratorConfig, NetConfig
from .base import Codes, ConditionalMixin, Variant, register


@register
class CGAN(ConditionalMixin, Variant):
    name = "cgan"
    conditioning = "class"
    supports_points = False  # the conditional generator draws images
    supports_pack = False
    pack_refusal = "its projection D judges each sample against its own label"

    def discriminator_config(self) -> NetConfig:
        return NetConfig("projection_discriminator", {"width": self.cfg.width})

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Codes:
        z = torch.randn(n, self.cfg.z_dim, generator=generator)
        label = torch.randint(10, (n,), generator=generator)
        return {"z": z.to(self.device), "label": label.to(self.device)}

    def discriminate(self, x: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        return self.D(x, label)

    def fake_label(self, codes: Codes) -> torch.Tensor | None:
        return codes["label"]

    def codes_for_digits(self, codes: Codes, num_digits: int) -> Codes:
        n = codes["z"].shape[0]
        return {
            "z": codes["z"].repeat(num_digits, 1),  # (D * n, z_dim)
            "label": torch.arange(num_digits, device=self.device).repeat_interleave(n),  # (D * n,)
        }

    @classmethod
    def manifest_conditioning(
        cls, cfg: TrainConfig, g_config: GeneratorConfig, evaluation: dict[str, Any], class_names: tuple[str, ...]
    ) -> dict[str, Any]:
        return {"kind": "class", "class_names": class_names[: g_config.num_classes]}
