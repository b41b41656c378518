"""The typed training configuration shared by the trainer and the variants.

A ``None`` hyperparameter means "the variant's default"; the trainer fills
those in (``Variant.resolve``) before training, and the resolved config is
what checkpoints and manifests record.

Each field also carries its ``gan-train fit`` option (help text, flag and
click type, see gan_contract.cli_options), so a default is written once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import click
from gan_contract.cli_options import setting

from .divergences import DIVERGENCES
from .losses import LOSSES


@dataclass(frozen=True)
class TrainConfig:
    variant: str = setting(
        "dcgan",
        "GAN variant: dcgan, cgan, infogan, gan, fgan, wgan, wgan-gp, sngan, lsgan, ebgan, vaegan, bigan.",
    )
    dataset: str = setting(
        "mnist", "mnist (embedded 5k), mnist-idx, fashion-mnist (IDX files), ring8, grid25, gaussian1d (generated)."
    )
    out: str = setting("runs/dcgan", "Run directory.", type=click.Path(file_okay=False), required=True)
    epochs: int = setting(20, type=click.IntRange(min=1))
    seed: int = setting(0)
    batch_size: int = setting(64, type=click.IntRange(min=2))
    device: str = setting("auto", "auto, cpu, cuda or cuda:N.")
    num_threads: int = setting(0, "torch CPU threads (0: torch default).", flag="--threads", type=click.IntRange(min=0))
    # 0 = a full pass over the data; tests set a few steps to stay fast.
    steps_per_epoch: int = setting(0, "Cap steps per epoch (0: full pass).", type=click.IntRange(min=0))
    # A budget in G updates, as GAN papers state theirs (WGAN: "generator
    # iterations"): with --d-steps k that is k x g_steps critic batches (more
    # with --critic-warmup). Epochs then only mark where the loop evaluates,
    # draws and saves; the last one stops at the budget.
    g_steps: int | None = setting(
        None,
        "Train until this many G updates, overriding --epochs (with --d-steps k: k x G_STEPS D batches).",
        type=click.IntRange(min=1),
    )

    # Optimisation (None = variant default)
    lr_g: float | None = setting(None, "Generator learning rate [variant default].", type=float)
    lr_d: float | None = setting(None, "Discriminator learning rate [variant default].", type=float)
    lr_q: float | None = setting(None, "InfoGAN Q-head learning rate [variant default].", type=float)
    # None = the variant's default; 0.5 / 0.999 unless it names others
    # (wgan-gp: 0.5 / 0.9). Filled in by trainer.build_variant.
    # Linear learning-rate decay over the last part of training: from epoch
    # lr_decay_start * epochs on, all rates fall linearly towards 0, so the
    # final weights settle instead of stopping mid-oscillation. 1 = constant.
    lr_decay_start: float = setting(
        1.0,
        "Decay all learning rates linearly to 0 from this fraction of the epochs (or --g-steps) on (1: constant).",
        type=click.FloatRange(0.0, 1.0),
    )
    beta1: float | None = setting(None, "Adam beta1 [variant default: 0.5].", type=float)
    beta2: float | None = setting(None, "Adam beta2 [variant default: 0.999; wgan-gp 0.9].", type=float)

    # Networks (None = variant default)
    z_dim: int | None = setting(None, "Noise dimension [variant default].", type=click.IntRange(min=1))
    # See models.py.
    width: int = setting(32, "Channels at 14x14 in G and D.", type=click.IntRange(min=4))
    # > 0: sample and export an exponential moving average of G's weights
    # with this decay per G update (e.g. 0.999); 0: the raw weights.
    g_ema: float = setting(
        0.0,
        "Export a moving average of G's weights with this per-G-update decay (0: off; e.g. 0.999).",
        type=click.FloatRange(0.0, 1.0, max_open=True),
    )
    # > 0: G maps its code through an MLP layer of this size first.
    g_hidden: int = setting(0, "G: MLP layer before the 7x7 map (0: none).", type=click.IntRange(min=0))
    # How the convolutional G grows 7 -> 14 -> 28 (models.DeconvStack).
    g_resize: str = setting(
        "transposed",
        "Convolutional G: stride-2 transposed convolutions, or nearest upsampling then a 3x3 convolution.",
        type=click.Choice(["transposed", "upsample"]),
    )

    # InfoGAN
    lambda_cat: float | None = setting(None, "InfoGAN categorical info weight [1.0].", type=float)
    lambda_cont: float | None = setting(None, "InfoGAN continuous info weight [0.1].", type=float)
    labelled_fraction: float = setting(
        0.0,
        "InfoGAN: share of real images whose label Q learns (0 = unsupervised).",
        type=click.FloatRange(0.0, 1.0),
    )
    lambda_sup: float = setting(1.0, "InfoGAN: weight of the supervised Q loss.")
    # Small random shifts/rotations of the labelled digits, so Q learns the
    # digits rather than memorising the few labelled images.
    augment_labelled: bool = setting(
        True, "InfoGAN: randomly shift/rotate the labelled digits for Q's supervised loss."
    )
    # Weight of the categorical info loss on fakes in Q's own update. 1 is
    # InfoGAN; semi-supervised runs may lower it so that Q's idea of "digit
    # k" comes from labelled real digits rather than from whatever G draws
    # for category k (which would let G's mistakes confirm themselves).
    q_fake_cat_weight: float = setting(
        1.0,
        "InfoGAN: weight of the categorical loss on fakes in Q's update (1: InfoGAN).",
        type=click.FloatRange(min=0.0),
    )
    # Whether Q's info loss on fakes also trains D's shared conv body (as in
    # Chen et al.), or only the Q head (D's body then learns from the
    # real/fake and supervised losses alone).
    q_trains_body: bool = setting(
        True,
        "InfoGAN: whether Q's info loss on fakes also trains D's shared body.",
        flag="--q-trains-body/--q-head-only",
    )
    q_fixed_variance: bool = setting(
        False, "InfoGAN: Q's Gaussian for the continuous codes has unit variance instead of a learned one."
    )
    # Chen et al.'s MNIST D has a fully connected 1024-unit layer (BatchNorm,
    # LeakyReLU) after its convolutions, which D's output and Q share.
    d_hidden: int = setting(
        0,
        "InfoGAN: a fully connected layer of this size after D's conv body, shared by D and Q (0: none).",
        type=click.IntRange(min=0),
    )
    # One flag for the paper's unsupervised MNIST setup (variants/infogan.py).
    infogan_paper: bool = setting(
        False,
        "InfoGAN: Chen et al.'s MNIST setup: --width 64 --g-hidden 1024 --d-hidden 1024 --q-trains-body "
        "--q-fixed-variance --lambda-cat 1 --lambda-cont 1, unsupervised.",
    )

    # Evaluation with the project classifier, logged to metrics.jsonl
    eval_every: int = setting(1, "Judge samples every N epochs (0: last only).", type=click.IntRange(min=0))
    eval_samples_per_class: int = setting(
        100, "Samples per digit/category when judging.", flag="--eval-samples", type=click.IntRange(min=10)
    )

    # Data (see data.py): where IDX files live, and a training subset
    data_dir: str | None = setting(
        None,
        "Folder of IDX files (mnist-idx; fashion-mnist defaults to /usr/share/datasets/fashion-mnist).",
        type=click.Path(file_okay=False),
    )
    limit: int = setting(0, "Train on a seeded random subset of N examples.", type=click.IntRange(min=0))

    # The variants of variants/{gan,fgan,wgan,wgan_gp,sngan,lsgan,ebgan,vaegan,bigan}.py
    d_steps: int | None = setting(None, "D/critic updates per G update [gan 1, wgan 5].", type=click.IntRange(min=1))
    # Arjovsky et al.'s reference code (martinarjovsky/WassersteinGAN, main.py):
    # 100 critic steps before each of the first 25 G updates and before every
    # 500th, so the critic is near its optimum whenever G learns from it.
    critic_warmup: bool | None = setting(
        None,
        "wgan/wgan-gp: 100 critic steps before the first 25 G updates and every 500th [wgan on, wgan-gp off].",
        flag="--critic-warmup/--no-critic-warmup",
    )
    g_loss: str = setting("nonsaturating", "gan: its loss.", type=click.Choice(list(LOSSES)))
    divergence: str = setting(
        "js",
        "fgan: the f-divergence.",
        type=click.Choice(list(DIVERGENCES)),
    )
    clip: float | None = setting(None, "wgan: clip critic weights to [-c, c] [0.01].", type=float)
    gp_weight: float | None = setting(None, "wgan-gp: gradient penalty weight lambda [10].", type=float)
    sn_loss: str = setting("hinge", "sngan: its loss.", type=click.Choice(list(LOSSES)))
    # None: MAGAN's adaptive margin, on the scale of the real energies (variants/ebgan.py).
    margin: float | None = setting(
        None, "ebgan: fixed margin m on the fake energy [adaptive: the mean real energy, MAGAN].", type=float
    )
    # 0.1: the paper's EBGAN-PT.
    pt_weight: float | None = setting(
        None, "ebgan: pulling-away term weight (0: off) [0.1].", type=click.FloatRange(min=0.0)
    )
    gamma: float | None = setting(None, "vaegan: reconstruction weight in G's loss [0.01; points 1].", type=float)
    # Reconstruction in D's feature space (feature) or in pixels (pixel).
    recon: str = setting("feature", "vaegan: reconstruction space.", type=click.Choice(["feature", "pixel"]))
    # The MLP nets: gan, and every variant on point data.
    mlp_hidden: int | None = setting(None, "Units per MLP layer [images 512, points 128].", type=click.IntRange(min=1))
    # PacGAN (Lin et al., 2018): D judges packs of m samples (variants/base.py).
    pack: int = setting(
        1,
        "PacGAN: D judges packs of this many samples, joined along channels (conv D) or features (MLP D).",
        type=click.IntRange(min=1),
    )
    # Goodfellow et al. (2014) trained their MNIST discriminator with dropout.
    d_dropout: float | None = setting(
        None,
        "Dropout after each hidden layer of the MLP discriminator, or Dropout2d after each convolution "
        "of the convolutional one (bigan: in every layer of its joint D) [gan on images 0.5; otherwise 0].",
        type=click.FloatRange(0.0, 1.0, max_open=True),
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
