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

from .. import losses
from ..models import NetConfig
from .base import optimizer_step, register
from .common import ExtVariant


@register
class BiGAN(ExtVariant):
    name = "bigan"
    ddp_modules = ("G", "D", "E")
    joint_hidden_images = 512

    def discriminator_net_config(self, **_) -> NetConfig:
        return NetConfig(
            "joint_discriminator",
            {
                "in_shape": tuple(self.info.sample_shape),
                "z_dim": self.cfg.z_dim,
                "width": self.cfg.width,
                "hidden": self.cfg.mlp_hidden if self.mlp else self.joint_hidden_images,
                "conv": not self.mlp,
            },
        )

    def build_extra_nets(self) -> None:
        z = self.cfg.z_dim
        if self.mlp:
            config = NetConfig(
                "mlp_encoder",
                {
                    "in_shape": tuple(self.info.sample_shape),
                    "hidden": self.cfg.mlp_hidden,
                    "layers": self.mlp_layers(),
                    "out_dim": z,
                },
            )
        else:
            config = NetConfig("conv_encoder", {"width": self.cfg.width, "out_dim": z})
        self.E = self.add_net("encoder", config)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "opt_g": self.adam(itertools.chain(self.G.parameters(), self.E.parameters()), self.cfg.lr_g),
            "opt_d": self.adam(self.D.parameters(), self.cfg.lr_d),
        }

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
        z = self.sample_codes(real.shape[0])["z"]
        fake = self.G(z)
        z_real = self.E(real)

        # (1) D: (x, E(x)) real, (G(z), z) fake
        loss_d = losses.d_loss_bce(self.D(real, z_real.detach()), self.D(fake.detach(), z))
        optimizer_step(self.opt_d, loss_d)

        # (2) E and G: the same game with the labels swapped
        loss_eg = losses.d_loss_bce(self.D(fake, z), self.D(real, z_real))
        optimizer_step(self.opt_g, loss_eg)
        return {"loss_d": loss_d.item(), "loss_g": loss_eg.item()}
