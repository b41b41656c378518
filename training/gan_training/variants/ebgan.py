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
from .base import Codes, Logged, Variant, register


@register
class EBGAN(Variant):
    name = "ebgan"
    defaults = {"margin": 1.0}
    code_dim_images = 32
    code_dim_points = 2
    manifest_hyperparameters = ("margin", "pt_weight")

    def discriminator_config(self) -> NetConfig:
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
        """Per-sample energies (B,) and the autoencoder's codes (B, code_dim)."""
        reconstruction, code = self.D(x)
        return losses.energy_mse(x, reconstruction), code

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # Low energy on real data, at least m on fakes
        e_real, _ = self.energy(real)
        e_fake, _ = self.energy(fake)
        logged = {"energy_real": e_real.mean().item(), "energy_fake": e_fake.mean().item()}
        return losses.d_loss_ebgan(e_real, e_fake, self.cfg.margin), logged

    def g_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # Low energy on G's samples (+ pulling-away term)
        e_g, code = self.energy(fake)
        if self.cfg.pt_weight <= 0:
            return e_g.mean(), {}
        pt = losses.pulling_away(code)
        return e_g.mean() + self.cfg.pt_weight * pt, {"pulling_away": pt.item()}
