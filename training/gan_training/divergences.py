"""f-divergences for f-GAN (Nowozin, Cseke & Tomioka, NeurIPS 2016).

    D_f(P || Q) = ∫ q(x) f(p(x) / q(x)) dx,   f convex, f(1) = 0

has the variational lower bound (their Eq. 4, from Nguyen et al. 2010)

    D_f(P || Q) >= sup_T  E_P[T(x)] - E_Q[f*(T(x))]

with f* the convex conjugate f*(t) = sup_u {u t - f(u)}. The bound is tight
at T*(x) = f'(p(x)/q(x)). f-GAN parametrises T = g_f(V(x)): V is the
discriminator's raw output, g_f an output activation mapping R into the
domain of f*. Their Eq. 6, with a minus sign so that D *minimises* it:

    L_D = -( E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))] )

and the generator, per their Section 3.2, maximises E_Q[g_f(V(G(z)))]
rather than minimising -E_Q[f*(g_f(V))] (same fixed point, stronger
gradients early; for "gan" this is exactly the non-saturating loss).

The table below is the paper's Table 1 (f) with Table 2 (g_f, dom f*,
f*, f'(1)); its Table 6 lists the same six. Each ``fstar_of_g`` is the
composition f*(g_f(v)) simplified analytically so it stays finite for every
v (the naive composition overflows for e.g. Squared-Hellinger at large v):

    name               f(u)                              g_f(v)                  f*(t)               f*(g_f(v))
    kl                 u log u                           v                       exp(t - 1)          exp(v - 1)
    reverse-kl         -log u                            -exp(-v)                -1 - log(-t)        v - 1
    pearson            (u - 1)^2                         v                       t^2/4 + t           v^2/4 + v
    squared-hellinger  (sqrt(u) - 1)^2                   1 - exp(-v)             t / (1 - t)         exp(v) - 1
    js                 -(u+1) log((1+u)/2) + u log u     log 2 - log(1+e^-v)     -log(2 - exp(t))    softplus(v) - log 2
    gan                u log u - (u+1) log(u+1)          -log(1 + e^-v)          -log(1 - exp(t))    softplus(v)

Note the normalisations the paper uses: its "js" f gives
D_f = 2 JSD(P||Q) (JSD with the 1/2 weights, in nats), and "gan" gives
D_f = 2 JSD - log 4, the value of the original GAN game at the optimal
discriminator (Goodfellow et al. 2014, Theorem 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class FDivergence:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]  # generator function, u > 0
    f_prime: Callable[[torch.Tensor], torch.Tensor]  # f'(u)
    activation: Callable[[torch.Tensor], torch.Tensor]  # g_f: R -> dom f*
    conjugate: Callable[[torch.Tensor], torch.Tensor]  # f*(t) on dom f*
    fstar_of_g: Callable[[torch.Tensor], torch.Tensor]  # f*(g_f(v)), numerically stable
    domain: tuple[float, float]  # dom f* as an open interval (low, high)
    f_prime_at_1: float  # f'(1): the value of T at P = Q

    def divergence(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """D_f(P||Q) = sum_x q(x) f(p(x)/q(x)) for discrete p, q > 0 (or a
        density grid times its spacing)."""
        return (q * self.f(p / q)).sum()

    def variational_bound(self, t_p: torch.Tensor, t_q: torch.Tensor) -> torch.Tensor:
        """E_P[T] - E_Q[f*(T)] from T's values on P's and Q's samples."""
        return t_p.mean() - self.conjugate(t_q).mean()


def _xlogx(u: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(u, u)


DIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(
        "kl",
        f=_xlogx,
        f_prime=lambda u: torch.log(u) + 1,
        activation=lambda v: v,
        conjugate=lambda t: torch.exp(t - 1),
        fstar_of_g=lambda v: torch.exp(v - 1),
        domain=(-math.inf, math.inf),
        f_prime_at_1=1.0,
    ),
    "reverse-kl": FDivergence(
        "reverse-kl",
        f=lambda u: -torch.log(u),
        f_prime=lambda u: -1 / u,
        activation=lambda v: -torch.exp(-v),
        conjugate=lambda t: -1 - torch.log(-t),
        fstar_of_g=lambda v: v - 1,
        domain=(-math.inf, 0.0),
        f_prime_at_1=-1.0,
    ),
    "pearson": FDivergence(
        "pearson",
        f=lambda u: (u - 1) ** 2,
        f_prime=lambda u: 2 * (u - 1),
        activation=lambda v: v,
        conjugate=lambda t: t**2 / 4 + t,
        fstar_of_g=lambda v: v**2 / 4 + v,
        domain=(-math.inf, math.inf),
        f_prime_at_1=0.0,
    ),
    "squared-hellinger": FDivergence(
        "squared-hellinger",
        f=lambda u: (torch.sqrt(u) - 1) ** 2,
        f_prime=lambda u: 1 - 1 / torch.sqrt(u),
        activation=lambda v: 1 - torch.exp(-v),
        conjugate=lambda t: t / (1 - t),
        fstar_of_g=lambda v: torch.expm1(v),
        domain=(-math.inf, 1.0),
        f_prime_at_1=0.0,
    ),
    "js": FDivergence(
        "js",
        f=lambda u: -(u + 1) * torch.log((1 + u) / 2) + _xlogx(u),
        f_prime=lambda u: torch.log(2 * u / (1 + u)),
        activation=lambda v: LOG2 - F.softplus(-v),
        conjugate=lambda t: -torch.log(2 - torch.exp(t)),
        fstar_of_g=lambda v: F.softplus(v) - LOG2,
        domain=(-math.inf, LOG2),
        f_prime_at_1=0.0,
    ),
    "gan": FDivergence(
        "gan",
        f=lambda u: _xlogx(u) - (u + 1) * torch.log(u + 1),
        f_prime=lambda u: torch.log(u / (u + 1)),
        activation=lambda v: -F.softplus(-v),
        conjugate=lambda t: -torch.log(1 - torch.exp(t)),
        fstar_of_g=F.softplus,
        domain=(-math.inf, 0.0),
        f_prime_at_1=-LOG2,
    ),
}


def get_divergence(name: str) -> FDivergence:
    try:
        return DIVERGENCES[name]
    except KeyError:
        raise ValueError(f"unknown f-divergence {name!r}; known: {', '.join(DIVERGENCES)}") from None
