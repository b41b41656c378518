"""GAN losses as pure functions of logits and codes: no modules, no state.

All adversarial losses take raw discriminator logits; the log-sigmoid forms
below are the numerically stable spellings of log D and log(1 - D).

A variant picks its adversarial loss (what D and G minimise) by name from
``LOSSES`` (``get_loss``); the CLI's choices are those names.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .divergences import get_divergence


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(x) + log(1 - D(G(z))); this is its negation.

    -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """G maximises log D(G(z)) (Goodfellow et al.'s non-saturating form):
    log(1 - D(G(z))) has vanishing gradients exactly when G is worst."""
    return F.softplus(-fake_logits).mean()


def categorical_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of Q(c | x) against the categorical code index (B,).

    For InfoGAN this is -E[log Q(c|x)], the part of the mutual-information
    lower bound that depends on G and Q (H(c) is a constant).
    """
    return F.cross_entropy(logits, target)


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log N(target; mean, exp(logvar)), summed over codes, averaged over
    the batch. Learning the variance lets Q say how sure it is of each code
    instead of forcing a fixed-variance (plain MSE) fit."""
    nll = 0.5 * (logvar + (target - mean) ** 2 * torch.exp(-logvar) + math.log(2 * math.pi))
    return nll.sum(1).mean()


# --------------------------------------------------------------------------
# Losses of the variants in variants/{gan,fgan,wgan,wgan_gp,sngan,lsgan,
# ebgan,vaegan,bigan}.py. Each is the quantity its network *minimises*.


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Goodfellow et al. (2014), Eq. 1 as written: G minimises
    E[log(1 - D(G(z)))] = -E[softplus(l)]. Saturates (gradient -> 0) when D
    confidently rejects the fakes, which is why the non-saturating form exists."""
    return -F.softplus(fake_logits).mean()


def gan_value(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))], the value D maximises;
    at the optimal D it equals -log 4 + 2 JSD(p_data || p_g)."""
    return -d_loss_bce(real_logits, fake_logits)


def d_loss_lsgan(real_out: torch.Tensor, fake_out: torch.Tensor, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    """Mao et al. (2017), Eq. 2 with a = 0 (fake), b = 1 (real):
    1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] on raw outputs."""
    return 0.5 * ((real_out - b) ** 2).mean() + 0.5 * ((fake_out - a) ** 2).mean()


def g_loss_lsgan(fake_out: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Mao et al. (2017): G minimises 1/2 E[(D(G(z)) - c)^2], c = 1."""
    return 0.5 * ((fake_out - c) ** 2).mean()


def critic_loss_wgan(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Arjovsky et al. (2017): the critic maximises E[D(x)] - E[D(G(z))],
    the Kantorovich-Rubinstein estimate of W1; this is its negation."""
    return fake_out.mean() - real_out.mean()


def g_loss_wgan(fake_out: torch.Tensor) -> torch.Tensor:
    """G minimises -E[D(G(z))] (WGAN, WGAN-GP, and SNGAN's hinge variant)."""
    return -fake_out.mean()


def d_loss_hinge(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, Eq. 16):
    E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gulrajani et al. (2017), Algorithm 1: weight * E[(||grad_x D(x_hat)||_2 - 1)^2]
    at x_hat = eps x + (1 - eps) x_fake, eps ~ U[0, 1] per sample.

    ``create_graph`` keeps the penalty differentiable w.r.t. the critic's
    weights. ``eps`` (B,) may be given (tests); otherwise drawn.
    """
    b = real.shape[0]
    if eps is None:
        eps = torch.rand(b, device=real.device, dtype=real.dtype)
    eps = eps.view(b, *([1] * (real.dim() - 1)))
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return weight * ((norm - 1) ** 2).mean()


def energy_mse(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """EBGAN's energy D(x) = ||Dec(Enc(x)) - x||^2, per sample (B,), as the
    mean over the sample's elements (so the margin does not scale with the
    image size)."""
    return ((reconstruction - x) ** 2).flatten(1).mean(1)


def d_loss_ebgan(real_energy: torch.Tensor, fake_energy: torch.Tensor, margin: float) -> torch.Tensor:
    """Zhao et al. (2017), Eq. 1: L_D = D(x) + [m - D(G(z))]^+."""
    return real_energy.mean() + F.relu(margin - fake_energy).mean()


def pulling_away(embeddings: torch.Tensor) -> torch.Tensor:
    """Zhao et al. (2017), Eq. 5: f_PT(S) = 1/(N(N-1)) sum_{i != j}
    (S_i . S_j / (|S_i| |S_j|))^2 over the batch's encoder embeddings S (N, d).
    Orthogonal embeddings give 0, identical ones give 1."""
    n = embeddings.shape[0]
    s = F.normalize(embeddings.flatten(1), dim=1)
    cos2 = (s @ s.t()) ** 2
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over latent dims,
    averaged over the batch (Kingma & Welling 2014, Appendix B):
    -1/2 sum(1 + logvar - mu^2 - exp(logvar))."""
    return (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()


def half_sq_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1/2 ||a - b||^2 per sample, averaged over the batch: the negative
    log-likelihood (up to a constant) of a unit-variance Gaussian, VAE-GAN's
    L_llike (Larsen et al. 2016, Eq. 7) on D's features or on pixels."""
    return 0.5 * ((a - b) ** 2).flatten(1).sum(1).mean()


def d_loss_fgan(real_out: torch.Tensor, fake_out: torch.Tensor, divergence: str) -> torch.Tensor:
    """f-GAN (Nowozin et al. 2016), Eq. 6 negated: D minimises
    -(E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))]). See divergences.py."""
    div = get_divergence(divergence)
    return -(div.activation(real_out).mean() - div.fstar_of_g(fake_out).mean())


def g_loss_fgan(fake_out: torch.Tensor, divergence: str) -> torch.Tensor:
    """f-GAN's generator objective (their Section 3.2): maximise
    E_Q[g_f(V(G(z)))]; this is its negation."""
    return -get_divergence(divergence).activation(fake_out).mean()


# --------------------------------------------------------------------------
# Adversarial losses by name


@dataclass(frozen=True)
class AdversarialLoss:
    """What D and G minimise, from D's raw outputs: ``d(D(x), D(G(z)))`` and ``g(D(G(z)))``."""

    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


LOSSES: dict[str, AdversarialLoss] = {
    # Goodfellow et al. (2014): D's cross-entropy; G maximises log D(G(z)) (their Section 3)
    "nonsaturating": AdversarialLoss(d_loss_bce, g_loss_nonsaturating),
    # ... or minimises log(1 - D(G(z))), their Eq. 1 as written
    "minimax": AdversarialLoss(d_loss_bce, g_loss_minimax),
    # Lim & Ye (2017); Miyato et al. (2018), Eq. 16
    "hinge": AdversarialLoss(d_loss_hinge, g_loss_wgan),
    # Arjovsky et al. (2017): the critic's estimate of W1 (needs a Lipschitz critic)
    "wasserstein": AdversarialLoss(critic_loss_wgan, g_loss_wgan),
    # Mao et al. (2017), the 0-1 coding
    "least-squares": AdversarialLoss(d_loss_lsgan, g_loss_lsgan),
}


def get_loss(name: str, known: Sequence[str] | None = None) -> AdversarialLoss:
    """The loss called ``name``. ``known`` (default: all of ``LOSSES``) is the
    names a caller accepts, e.g. one variant's choices; any other name is a
    ValueError that lists them."""
    known = tuple(LOSSES) if known is None else tuple(known)
    if name not in known or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(known)}")
    return LOSSES[name]


def fgan_loss(divergence: str) -> AdversarialLoss:
    """f-GAN's pair for one f-divergence (an unknown name: ValueError listing the known ones)."""
    get_divergence(divergence)
    return AdversarialLoss(
        functools.partial(d_loss_fgan, divergence=divergence), functools.partial(g_loss_fgan, divergence=divergence)
    )
