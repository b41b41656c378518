"""Energy-based GAN (Zhao, Mathieu & LeCun, "Energy-based Generative
Adversarial Network", ICLR 2017).

D is an autoencoder; the energy of x is its reconstruction error
D(x) = ||Dec(Enc(x)) - x||^2 (per-sample mean squared error here). Their Eq. 1-2:

    L_D = D(x) + [m - D(G(z))]^+       (the fake energy hinged at margin m, --margin)
    L_G = D(G(z)) + lambda_PT f_PT(S)  (pulling-away term on the encoder's
                                        codes S of the fakes, --pt-weight)

Convolutional autoencoder on images, MLP autoencoder on point data;
Adam(2e-4, 0.5). The pulling-away term is on (lambda_PT = 0.1, the paper's
EBGAN-PT setting).

The margin. The energy is a per-pixel mean, so its scale is that of the
data's squared error: an untrained autoencoder sits near 0.9 on MNIST and a
trained one far below, where a fixed m = 1 asks D to push every fake
further than any real digit ever was and G's gradient says little about
what real digits look like. Without ``--margin`` the margin follows the real
energy as in MAGAN (Wang, Cully, Chang & Demiris, "MAGAN: Margin Adaptation
for Generative Adversarial Networks", 2017, Algorithm 1):

* before training, D is trained as an autoencoder on real data alone for
  ``MARGIN_PRETRAIN_EPOCHS`` = 2 passes (capped like an epoch by
  --steps-per-epoch), and m starts as the mean real energy of the last pass;
* after each epoch, m becomes that epoch's mean real energy S_real if
  S_real < m, S_real < S_fake (the epoch's mean fake energy) and S_fake did
  not fall since the previous epoch: the margin only shrinks, and only while
  D still tells the fakes apart.

``--margin M`` fixes m = M (no pre-training, no adaptation), as in the paper.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import losses
from ..config import TrainConfig
from ..data import Dataset
from ..models import NetConfig
from .base import Codes, Logged, Variant, register

_PRETRAIN_SEED_OFFSET = 3_000_017  # the pre-training's batch order: its own stream


@register
class EBGAN(Variant):
    name = "ebgan"
    defaults = {"pt_weight": 0.1}
    code_dim_images = 32
    supports_pack = False
    pack_refusal = "its D is an autoencoder: the energy is each sample's own reconstruction error"
    code_dim_points = 2
    manifest_hyperparameters = ("margin", "pt_weight")
    MARGIN_PRETRAIN_EPOCHS = 2

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.margin: float | None = cfg.margin  # None until measured (setup, or the first batch)
        self.margin_initial: float | None = cfg.margin
        self.prev_fake_energy = math.inf

    @property
    def adaptive_margin(self) -> bool:
        return self.cfg.margin is None

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

    def setup(self, dataset: Dataset) -> None:
        """MAGAN's start: pre-train D as an autoencoder of the real data and
        take its mean real energy as the first margin."""
        super().setup(dataset)
        if not self.adaptive_margin:
            return
        cfg = self.cfg
        n = len(dataset)
        per_pass = max(1, n // cfg.batch_size)
        if cfg.steps_per_epoch:
            per_pass = min(per_pass, cfg.steps_per_epoch)
        gen = torch.Generator().manual_seed(cfg.seed + _PRETRAIN_SEED_OFFSET)
        opt = self.adam(self.D.parameters(), cfg.lr_d)  # its own moments: opt_d starts fresh
        energies: list[float] = []
        for _ in range(self.MARGIN_PRETRAIN_EPOCHS):
            energies = []
            perm = torch.randperm(n, generator=gen)
            for i in range(per_pass):
                real = dataset.images[perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]].to(self.device)
                e_real, _ = self.energy(real)
                opt.zero_grad(set_to_none=True)
                e_real.mean().backward()
                opt.step()
                energies.append(e_real.mean().item())
        self.margin = self.margin_initial = sum(energies) / len(energies)

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # Low energy on real data, at least m on fakes
        e_real, _ = self.energy(real)
        e_fake, _ = self.energy(fake)
        if self.margin is None:  # never set up (no data): the first batch's real energy
            self.margin = self.margin_initial = e_real.mean().item()
        logged = {"energy_real": e_real.mean().item(), "energy_fake": e_fake.mean().item()}
        return losses.d_loss_ebgan(e_real, e_fake, self.margin), logged

    def g_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # Low energy on G's samples (+ pulling-away term)
        e_g, code = self.energy(fake)
        if self.cfg.pt_weight <= 0:
            return e_g.mean(), {}
        pt = losses.pulling_away(code)
        return e_g.mean() + self.cfg.pt_weight * pt, {"pulling_away": pt.item()}

    def end_epoch(self, mean_losses: Logged) -> dict[str, Any]:
        """MAGAN's margin update from the epoch's mean energies (see the module docstring)."""
        if self.adaptive_margin and "energy_real" in mean_losses and "energy_fake" in mean_losses:
            s_real, s_fake = mean_losses["energy_real"], mean_losses["energy_fake"]
            if self.margin is not None and s_real < self.margin and s_real < s_fake and self.prev_fake_energy < s_fake:
                self.margin = s_real
            self.prev_fake_energy = s_fake
        return {"margin": self.margin}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "margin": self.margin,
            "margin_initial": self.margin_initial,
            "prev_fake_energy": self.prev_fake_energy,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "margin" in state:
            self.margin, self.margin_initial = state["margin"], state["margin_initial"]
            self.prev_fake_energy = float(state["prev_fake_energy"])

    @classmethod
    def manifest_training(cls, cfg: TrainConfig) -> dict[str, Any]:
        record = super().manifest_training(cfg)
        if cfg.margin is None:
            record["margin"] = "adaptive"  # MAGAN's rule; the values: manifest_progress
        return record

    @classmethod
    def manifest_progress(cls, state: dict[str, Any]) -> dict[str, Any]:
        facts = super().manifest_progress(state)
        if state.get("margin") is not None:
            facts.update(margin_initial=state["margin_initial"], margin_final=state["margin"])
        return facts
