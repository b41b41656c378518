"""BiGAN (Donahue, Krähenbühl & Darrell, "Adversarial Feature Learning",
ICLR 2017; the same model is ALI, Dumoulin et al. 2017).

An encoder E: x -> z next to G: z -> x; D judges (x, z) pairs:

    min_{G,E} max_D  E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]

D learns (x, E(x)) real vs (G(z), z) fake; E and G are updated together
(one Adam) to fool it, with the labels flipped (the non-saturating form the
paper uses). At the optimum E inverts G. Convolutional nets on images, MLPs
on point data. The exported encoder (encoder.onnx) maps images to z.
"""

from __future__ import annotations

import itertools

import torch

from ..models import NetConfig
from .base import Codes, Logged, Variant, register


@register
class BiGAN(Variant):
    name = "bigan"
    ddp_modules = ("G", "D", "E")
    has_encoder = True
    supports_pack = False
    pack_refusal = "its D judges (x, z) pairs, each x with its own code"
    joint_hidden_images = 512

    def discriminator_config(self) -> NetConfig:
        params = {
            "in_shape": tuple(self.info.sample_shape),
            "z_dim": self.cfg.z_dim,
            "width": self.cfg.width,
            "hidden": self.cfg.mlp_hidden if self.mlp else self.joint_hidden_images,
            "conv": not self.mlp,
        }
        return NetConfig("joint_discriminator", self.with_d_dropout(params))

    def build_extra_nets(self) -> None:
        self.E = self.add_net("encoder", self.encoder_config(self.cfg.z_dim))

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "opt_g": self.adam(itertools.chain(self.G.parameters(), self.E.parameters()), self.cfg.lr_g),
            "opt_d": self.adam(self.D.parameters(), self.cfg.lr_d),
        }

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # (x, E(x)) real, (G(z), z) fake
        with torch.no_grad():
            z_real = self.E(real)
        return self.objective.d(self.D(real, z_real), self.D(fake, codes["z"])), {}

    def g_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # E and G: the same game with the labels swapped
        return self.objective.d(self.D(fake, codes["z"]), self.D(real, self.E(real))), {}
