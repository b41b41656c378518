"""The design documents' theory (000: Goodfellow et al. 2014, Prop. 1 and
Theorem 1), checked numerically on fixed 1-D densities.

For a fixed generator density p_g, the discriminator maximising

    V(D) = E_{p_data}[log D(x)] + E_{p_g}[log(1 - D(x))]

is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and V(D*) = -log 4 + 2 JSD(p_data || p_g).

p_data = N(0, 1) and p_g = N(2, 1.5^2) on a 401-point grid over [-8, 8];
expectations are quadratures on the grid (weights normalised to sum to 1), so
the only error left is the optimiser's. A small MLP discriminator (1-32-32-1,
tanh) trained for 1,000 full-batch Adam steps on V must match D*:

* within 0.03 (max |D - D*|) where p_data + p_g >= 5% of its peak
  (x in about [-2.4, 5.2]; further out the densities weigh too little in V
  for any finite training to pin D down),
* within 0.005 on average weighted by (p_data + p_g) / 2,

and its V must reach -log 4 + 2 JSD within 1e-3 nats (V(D) <= V(D*) always).
The same discriminator after a handful of steps must not: the check can fail.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from gan_training import losses

D_TOLERANCE = 0.03  # max |D - D*| where p_data + p_g >= 5% of its max
D_MEAN_TOLERANCE = 0.005  # mass-weighted mean |D - D*|
V_TOLERANCE = 1e-3  # |V(D) - (-log 4 + 2 JSD)| in nats


def _normal(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


@pytest.fixture(scope="module")
def densities() -> dict[str, torch.Tensor]:
    x = torch.linspace(-8, 8, 401, dtype=torch.float64)
    p_data, p_g = _normal(x, 0.0, 1.0), _normal(x, 2.0, 1.5)
    return {"x": x, "w_data": p_data / p_data.sum(), "w_g": p_g / p_g.sum(), "p_data": p_data, "p_g": p_g}


def value(logits: torch.Tensor, w_data: torch.Tensor, w_g: torch.Tensor) -> torch.Tensor:
    """V(D) with D = sigmoid(logits), expectations as quadratures."""
    return (w_data * F.logsigmoid(logits)).sum() + (w_g * F.logsigmoid(-logits)).sum()


def jsd(w_p: torch.Tensor, w_q: torch.Tensor) -> float:
    m = (w_p + w_q) / 2
    return float(0.5 * (w_p * (w_p / m).log()).sum() + 0.5 * (w_q * (w_q / m).log()).sum())


def train_discriminator(d: dict[str, torch.Tensor], steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)
    ).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    inputs = (d["x"] / 4).unsqueeze(1)
    for _ in range(steps):
        loss = -value(net(inputs).squeeze(1), d["w_data"], d["w_g"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net


def _errors(net: torch.nn.Module, d: dict[str, torch.Tensor]) -> tuple[float, float, float]:
    with torch.no_grad():
        logits = net((d["x"] / 4).unsqueeze(1)).squeeze(1)
    d_star = d["p_data"] / (d["p_data"] + d["p_g"])
    mass = d["p_data"] + d["p_g"]
    region = mass >= 0.05 * mass.max()
    err = (torch.sigmoid(logits) - d_star).abs()
    d_max = float(err[region].max())
    d_mean = float((err * (d["w_data"] + d["w_g"]) / 2).sum())
    v_err = abs(float(value(logits, d["w_data"], d["w_g"])) - (-math.log(4) + 2 * jsd(d["w_data"], d["w_g"])))
    return d_max, d_mean, v_err


def test_the_optimal_discriminator_attains_minus_log4_plus_2jsd(densities) -> None:
    d = densities
    d_star_logits = (d["p_data"] / d["p_g"]).log()  # D* = sigmoid(log p_data/p_g)
    target = -math.log(4) + 2 * jsd(d["w_data"], d["w_g"])
    assert float(value(d_star_logits, d["w_data"], d["w_g"])) == pytest.approx(target, abs=1e-9)
    # the project's loss is -V for equal-weight samples: same numbers on a uniform "grid"
    logits = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    w = torch.full((3,), 1 / 3, dtype=torch.float64)
    assert float(losses.gan_value(logits, logits)) == pytest.approx(float(value(logits, w, w)), abs=1e-12)
    # p_g = p_data: D* = 1/2 and V = -log 4, the global minimum of C(G)
    assert float(value(torch.zeros_like(d["x"]), d["w_data"], d["w_data"])) == pytest.approx(-math.log(4), abs=1e-9)
    assert jsd(d["w_data"], d["w_data"]) == pytest.approx(0.0, abs=1e-12)
    assert 0.1 < jsd(d["w_data"], d["w_g"]) < math.log(2)


def test_a_trained_discriminator_converges_to_d_star(densities) -> None:
    d_max, d_mean, v_err = _errors(train_discriminator(densities, 1000), densities)
    assert d_max <= D_TOLERANCE, f"max |D - D*| = {d_max:.4f}"
    assert d_mean <= D_MEAN_TOLERANCE, f"mean |D - D*| = {d_mean:.4f}"
    assert v_err <= V_TOLERANCE, f"|V - (-log 4 + 2 JSD)| = {v_err:.2e}"


def test_an_undertrained_discriminator_fails_the_same_check(densities) -> None:
    d_max, d_mean, v_err = _errors(train_discriminator(densities, 5), densities)
    assert d_max > D_TOLERANCE and d_mean > D_MEAN_TOLERANCE and v_err > V_TOLERANCE
