"""Energy-based GAN (Zhao, Mathieu & LeCun, "Energy-based Generative
Adversarial Network", ICLR 2017).

D is an autoencoder; the energy of x is its reconstruction error
D(x) = ||Dec(Enc(x)) - x||^2 (per-sample mean squared error here). Their Eq. 1-2:

    L_D = D(x) + [m - D(G(z))]^+       (the fake energy hinged at margin m, --margin)
    L_G = D(G(z)) + lambda_PT f_PT(S)  (optional pulling-away term on the
                                        encoder's codes S of the fakes, --pt-weight)

Convolutional autoencoder on images, MLP autoencoder on point data;
Adam(2e-4, 0.5). Default margin m = 1 for the per-pixel MSE energy.
"""

from __future__ import annotations

import torch

from .. import losses
from ..models import NetConfig
from .base import optimizer_step, register
from .common import ExtVariant


@register
class EBGAN(ExtVariant):
    name = "ebgan"
    defaults = {"margin": 1.0}
    code_dim_images = 32
    code_dim_points = 2

    def discriminator_net_config(self, **_) -> NetConfig:
        if self.points:
            return NetConfig(
                "mlp_autoencoder",
                {
                    "in_shape": tuple(self.info.sample_shape),
                    "hidden": self.cfg.mlp_hidden,
                    "layers": self.mlp_layers(),
                    "code_dim": self.code_dim_points,
                },
            )
        return NetConfig("conv_autoencoder", {"width": self.cfg.width, "code_dim": self.code_dim_images})

    def energy(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reconstruction, code = self.D(x)
        return losses.energy_mse(x, reconstruction), code

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
        codes = self.sample_codes(real.shape[0])
        fake = self.G(**codes)

        # (1) D: low energy on real data, at least m on fakes
        e_real, _ = self.energy(real)
        e_fake, _ = self.energy(fake.detach())
        loss_d = losses.d_loss_ebgan(e_real, e_fake, self.cfg.margin)
        optimizer_step(self.opt_d, loss_d)

        # (2) G: low energy on its samples (+ pulling-away term)
        e_g, code = self.energy(fake)
        loss_g = e_g.mean()
        metrics = {}
        if self.cfg.pt_weight > 0:
            pt = losses.pulling_away(code)
            loss_g = loss_g + self.cfg.pt_weight * pt
            metrics["pulling_away"] = pt.item()
        optimizer_step(self.opt_g, loss_g)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "energy_real": e_real.mean().item(),
            "energy_fake": e_fake.mean().item(),
            **metrics,
        }
