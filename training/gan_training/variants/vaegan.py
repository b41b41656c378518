"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, "Autoencoding beyond
pixels using a learned similarity metric", ICML 2016), Algorithm 1.

Three nets: encoder E(x) -> (mu, log sigma^2), decoder = generator G, and a
discriminator D that also exposes a hidden layer Dis_l(x). Per batch x:

    z ~ q(z|x) = N(mu, sigma^2) (reparametrised), x~ = G(z), x^ = G(z_p), z_p ~ N(0, I)
    L_prior = KL(q(z|x) || N(0, I))
    L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2      (--recon feature; --recon pixel: ||x - x~||^2)
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x^))

    D  <- maximise L_GAN (tell x from both x~ and x^)
    E  <- minimise L_prior + L_llike
    G  <- minimise gamma * L_llike - L_GAN  (the GAN part in its non-saturating
          form: -log D(x~) - log D(x^); --gamma weighs reconstruction vs GAN)

D is updated as in every variant (with --d-steps K, K D updates per E and G
update); then E, then G with z from the E pass, detached. Each net is updated
from its own forward pass, so each backward touches one loss: exact per-net
gradients, and DistributedDataParallel-friendly. The exported encoder
(encoder.onnx) maps images to mu.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import losses
from ..config import TrainConfig
from .base import Codes, Logged, Variant, optimizer_step, register

RECON_SPACES = ("feature", "pixel")


@register
class VAEGAN(Variant):
    name = "vaegan"
    ddp_modules = ("G", "D", "E")
    ddp_find_unused = True  # E's step reads D's features only, not its head
    has_encoder = True
    supports_pack = False
    pack_refusal = "D's features of each sample are that sample's reconstruction target"
    defaults = {"gamma": 1e-2}
    point_defaults = {"gamma": 1.0}
    d_features = True
    manifest_hyperparameters = ("gamma", "recon")

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        if cfg.recon not in RECON_SPACES:
            raise ValueError(f"unknown recon {cfg.recon!r}; known: {', '.join(RECON_SPACES)}")
        return super().resolve(cfg)

    def build_extra_nets(self) -> None:
        self.E = self.add_net("encoder", self.encoder_config(2 * self.cfg.z_dim))  # [mu, log sigma^2]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().build_optimizers(), "opt_e": self.adam(self.E.parameters(), self.cfg.lr_g)}

    @property
    def opt_e(self) -> torch.optim.Optimizer:
        return self.optimizers["opt_e"]

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

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # x real; x~ (reconstructions) and x^ = ``fake`` (prior samples) fake
        with torch.no_grad():
            mu, logvar = self.encode(real)
            x_tilde = self.G(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
        errD = losses.d_loss_bce(self.D(real)[0], self.D(x_tilde)[0]) + F.softplus(self.D(fake)[0]).mean()
        return errD, {}

    def update_g(self, real: torch.Tensor, label: torch.Tensor) -> Logged:
        # (2) Update E: minimise L_prior + L_llike
        mu, logvar = self.encode(real)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        prior = losses.kl_normal(mu, logvar)
        llike = self.llike(real, self.G(z))
        optimizer_step(self.opt_e, prior + llike)

        # (3) Update G: gamma * L_llike, and fool D with x~ and x^ (z_p fresh noise)
        z_p = self.sample_codes(real.shape[0])["z"]
        x_tilde = self.G(z.detach())
        gan_g = losses.g_loss_nonsaturating(self.D(x_tilde)[0]) + losses.g_loss_nonsaturating(self.D(self.G(z_p))[0])
        errG = self.cfg.gamma * self.llike(real, x_tilde) + gan_g
        optimizer_step(self.opt_g, errG)
        return {"loss_g": errG.item(), "loss_prior": prior.item(), "loss_llike": llike.item()}
