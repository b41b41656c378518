"""The typed training configuration shared by the trainer and the variants.

A ``None`` hyperparameter means "the variant's default"; the trainer fills
those in (``Variant.resolve``) before training, and the resolved config is
what checkpoints and manifests record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    variant: str = "dcgan"
    dataset: str = "mnist"
    out: str = "runs/dcgan"
    epochs: int = 20
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    # 0 = a full pass over the data; tests set a few steps to stay fast.
    steps_per_epoch: int = 0

    # Optimisation (None = variant default)
    lr_g: float | None = None
    lr_d: float | None = None
    lr_q: float | None = None  # infogan: the Q head's learning rate
    # None = the variant's default; 0.5 / 0.999 unless it names others
    # (wgan-gp: 0.5 / 0.9). Filled in by trainer.build_variant.
    # Linear learning-rate decay over the last part of training: from epoch
    # lr_decay_start * epochs on, all rates fall linearly towards 0, so the
    # final weights settle instead of stopping mid-oscillation. 1 = constant.
    lr_decay_start: float = 1.0
    beta1: float | None = None
    beta2: float | None = None

    # Networks (None = variant default)
    z_dim: int | None = None
    width: int = 32  # channels at 14x14 in G and D; see models.py
    # > 0: sample and export an exponential moving average of G's weights
    # with this decay per G update (e.g. 0.999); 0: the raw weights.
    g_ema: float = 0.0
    g_hidden: int = 0  # > 0: G maps its code through an MLP layer of this size first

    # InfoGAN
    lambda_cat: float | None = None
    lambda_cont: float | None = None
    labelled_fraction: float = 0.0  # > 0 turns on semi-supervised InfoGAN
    lambda_sup: float = 1.0
    # Small random shifts/rotations of the labelled digits, so Q learns the
    # digits rather than memorising the few labelled images.
    augment_labelled: bool = True
    # Weight of the categorical info loss on fakes in Q's own update. 1 is
    # InfoGAN; semi-supervised runs may lower it so that Q's idea of "digit
    # k" comes from labelled real digits rather than from whatever G draws
    # for category k (which would let G's mistakes confirm themselves).
    q_fake_cat_weight: float = 1.0
    # Whether Q's info loss on fakes also trains D's shared conv body (as in
    # Chen et al.), or only the Q head (D's body then learns from the
    # real/fake and supervised losses alone).
    q_trains_body: bool = True
    # Q's Gaussian for the continuous codes: unit variance instead of learned.
    q_fixed_variance: bool = False

    # Evaluation with the project classifier, logged to metrics.jsonl
    eval_every: int = 1  # epochs; 0 = never
    eval_samples_per_class: int = 100

    # Data (see data.py): where IDX files live, and a training subset
    data_dir: str | None = None  # mnist-idx: required; fashion-mnist: Debian's folder by default
    limit: int = 0  # > 0: train on this many examples (a seeded random subset)

    # The variants of variants/{gan,fgan,wgan,wgan_gp,sngan,lsgan,ebgan,vaegan,bigan}.py
    d_steps: int | None = None  # D/critic updates per G update (gan: 1, wgan/wgan-gp: 5)
    g_loss: str = "nonsaturating"  # gan: its loss, a name in losses.LOSSES
    divergence: str = "js"  # fgan: a name in divergences.DIVERGENCES
    clip: float | None = None  # wgan: weight clipping bound c (0.01)
    gp_weight: float | None = None  # wgan-gp: lambda (10)
    sn_loss: str = "hinge"  # sngan: its loss, a name in losses.LOSSES
    margin: float | None = None  # ebgan: margin m on the fake energy (1.0)
    pt_weight: float = 0.0  # ebgan: pulling-away term weight (0 = off; the paper used 0.1)
    gamma: float | None = None  # vaegan: weight of reconstruction vs GAN loss in the decoder update
    recon: str = "feature"  # vaegan: reconstruction in D's feature space (feature) or pixels (pixel)
    mlp_hidden: int | None = None  # units per hidden layer of the MLP nets (gan; every variant on point data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
