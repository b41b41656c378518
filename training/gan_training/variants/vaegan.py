"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, "Autoencoding beyond
pixels using a learned similarity metric", ICML 2016), Algorithm 1.

Three nets: encoder E(x) -> (mu, log sigma^2), decoder = generator G, and a
discriminator D that also exposes a hidden layer Dis_l(x). Per batch x:

    z ~ q(z|x) = N(mu, sigma^2) (reparametrised), x~ = G(z), x^ = G(z_p), z_p ~ N(0, I)
    L_prior = KL(q(z|x) || N(0, I))
    L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2      (--recon feature; --recon pixel: ||x - x~||^2)
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x^))

    E  <- minimise L_prior + L_llike
    G  <- minimise gamma * L_llike - L_GAN  (the GAN part in its non-saturating
          form: -log D(x~) - log D(x^); --gamma weighs reconstruction vs GAN)
    D  <- maximise L_GAN (tell x from both x~ and x^)

Each net is updated from its own forward pass (D first, then E, then G with
z from the E pass, detached), so each backward touches one loss: exact
per-net gradients, and DistributedDataParallel-friendly. The exported
encoder (encoder.onnx) maps images to mu.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import losses
from ..models import NetConfig
from .base import optimizer_step, register
from .common import ExtVariant


@register
class VAEGAN(ExtVariant):
    name = "vaegan"
    ddp_modules = ("G", "D", "E")
    ddp_find_unused = True  # E's step reads D's features only, not its head
    defaults = {"gamma": 1e-2}
    point_defaults = {"gamma": 1.0}

    def discriminator_net_config(self, **_) -> NetConfig:
        return super().discriminator_net_config(norm="batch", features=True)

    def build_extra_nets(self) -> None:
        out = 2 * self.cfg.z_dim  # [mu, log sigma^2]
        if self.mlp:
            config = NetConfig(
                "mlp_encoder",
                {
                    "in_shape": tuple(self.info.sample_shape),
                    "hidden": self.cfg.mlp_hidden,
                    "layers": self.mlp_layers(),
                    "out_dim": out,
                },
            )
        else:
            config = NetConfig("conv_encoder", {"width": self.cfg.width, "out_dim": out})
        self.E = self.add_net("encoder", config)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().build_optimizers(), "opt_e": self.adam(self.E.parameters(), self.cfg.lr_g)}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.E(x).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dis_l(x) (or the pixels): one D forward for the whole batch."""
        if self.cfg.recon == "pixel":
            return x.flatten(1)
        return self.D(x)[1]

    def llike(self, real: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """L_llike from one D pass over [x, x~] (shared BatchNorm statistics)."""
        b = real.shape[0]
        feats = self.features(torch.cat([real, recon]))
        return losses.half_sq_error(feats[:b].detach(), feats[b:])

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
        b = real.shape[0]
        z_p = self.sample_codes(b)["z"]

        # (1) D: x real; x~ (reconstructions) and x^ (prior samples) fake
        with torch.no_grad():
            mu, logvar = self.encode(real)
            x_tilde = self.G(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
            x_hat = self.G(z_p)
        loss_d = losses.d_loss_bce(self.D(real)[0], self.D(x_tilde)[0]) + F.softplus(self.D(x_hat)[0]).mean()
        optimizer_step(self.opt_d, loss_d)

        # (2) E: prior + reconstruction
        mu, logvar = self.encode(real)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        prior = losses.kl_normal(mu, logvar)
        llike = self.llike(real, self.G(z))
        optimizer_step(self.opt_e, prior + llike)

        # (3) G: gamma * reconstruction + fool D with x~ and x^
        x_tilde = self.G(z.detach())
        llike_g = self.llike(real, x_tilde)
        gan_g = losses.g_loss_nonsaturating(self.D(x_tilde)[0]) + losses.g_loss_nonsaturating(self.D(self.G(z_p))[0])
        loss_g = self.cfg.gamma * llike_g + gan_g
        optimizer_step(self.opt_g, loss_g)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "loss_prior": prior.item(),
            "loss_llike": llike.item(),
        }

    @property
    def opt_e(self) -> torch.optim.Optimizer:
        return self.optimizers["opt_e"]
