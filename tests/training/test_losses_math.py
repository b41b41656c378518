"""Every loss on hand-made inputs with a known answer, and the f-GAN table
(g_f, f*) checked against the convex conjugate's definition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from gan_training import losses
from gan_training.divergences import DIVERGENCES, get_divergence

T = torch.tensor
LOG2 = math.log(2.0)


def _d(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


# --------------------------------------------------------------------------
# Original GAN: minimax vs non-saturating


def test_bce_discriminator_loss_and_value_at_known_logits() -> None:
    # D(x) = sigmoid(0) = 1/2 everywhere: -V = log 2 + log 2.
    assert losses.d_loss_bce(T([0.0, 0.0]), T([0.0])).item() == pytest.approx(2 * LOG2)
    assert losses.gan_value(T([0.0]), T([0.0])).item() == pytest.approx(-math.log(4))
    # A confident, correct D: D(x) = sigmoid(20), D(G(z)) = sigmoid(-20): V ~ 0.
    assert losses.gan_value(T([20.0]), T([-20.0])).item() == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("logit", [-3.0, -0.5, 0.0, 1.0, 4.0])
def test_minimax_and_nonsaturating_generator_losses(logit: float) -> None:
    d = torch.sigmoid(T(logit))
    assert losses.g_loss_minimax(T([logit])).item() == pytest.approx(math.log(1 - d.item()), rel=1e-5)
    assert losses.g_loss_nonsaturating(T([logit])).item() == pytest.approx(-math.log(d.item()), rel=1e-5)


def test_minimax_saturates_where_nonsaturating_does_not() -> None:
    """Early on D rejects fakes (logit -10): log(1 - D) gives G almost no
    gradient, -log D a strong one (Goodfellow et al. 2014, Section 3)."""
    grads = {}
    for name, fn in (("minimax", losses.g_loss_minimax), ("nonsaturating", losses.g_loss_nonsaturating)):
        logit = T([-10.0], requires_grad=True)
        fn(logit).backward()
        grads[name] = logit.grad.item()
    assert grads["minimax"] == pytest.approx(-torch.sigmoid(T(-10.0)).item(), rel=1e-4)  # -4.5e-5
    assert grads["nonsaturating"] == pytest.approx(-(1 - torch.sigmoid(T(-10.0)).item()), rel=1e-4)  # ~ -1
    assert abs(grads["nonsaturating"]) > 1e4 * abs(grads["minimax"])


# --------------------------------------------------------------------------
# LSGAN, WGAN, hinge


def test_lsgan_losses_on_fixed_outputs() -> None:
    assert losses.d_loss_lsgan(T([1.0, 1.0]), T([0.0, 0.0])).item() == 0.0  # perfect D
    assert losses.d_loss_lsgan(T([0.0]), T([1.0])).item() == pytest.approx(1.0)  # 1/2 + 1/2
    assert losses.d_loss_lsgan(T([0.5, 1.5]), T([0.5])).item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.25)
    assert losses.g_loss_lsgan(T([1.0, 1.0])).item() == 0.0
    assert losses.g_loss_lsgan(T([0.0, 3.0])).item() == pytest.approx(0.5 * (1 + 4) / 2)


def test_wgan_losses_on_fixed_outputs() -> None:
    real, fake = T([1.0, 2.0, 3.0]), T([0.0, 0.0, 3.0])
    assert losses.critic_loss_wgan(real, fake).item() == pytest.approx(1.0 - 2.0)
    assert losses.g_loss_wgan(fake).item() == pytest.approx(-1.0)


def test_hinge_loss_on_fixed_outputs() -> None:
    # real: relu(1 - 2) = 0, relu(1 - 0.5) = 0.5; fake: relu(1 - 2) = 0, relu(1 + 0) = 1
    assert losses.d_loss_hinge(T([2.0, 0.5]), T([-2.0, 0.0])).item() == pytest.approx(0.25 + 0.5)


def test_losses_by_name_pair_the_d_and_g_losses() -> None:
    real, fake = T([0.3, -1.2, 2.0]), T([0.5, -0.7])
    pairs = {
        "nonsaturating": (losses.d_loss_bce, losses.g_loss_nonsaturating),
        "minimax": (losses.d_loss_bce, losses.g_loss_minimax),
        "hinge": (losses.d_loss_hinge, losses.g_loss_wgan),
        "wasserstein": (losses.critic_loss_wgan, losses.g_loss_wgan),
        "least-squares": (losses.d_loss_lsgan, losses.g_loss_lsgan),
    }
    assert set(losses.LOSSES) == set(pairs)
    for name, (d, g) in pairs.items():
        loss = losses.get_loss(name)
        assert loss.d(real, fake).item() == d(real, fake).item() and loss.g(fake).item() == g(fake).item(), name
    f_js = losses.fgan_loss("js")
    assert f_js.d(real, fake).item() == losses.d_loss_fgan(real, fake, "js").item()


def test_an_unknown_loss_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: nonsaturating, minimax, hinge, wasserstein, least-squares"):
        losses.get_loss("relativistic")
    with pytest.raises(ValueError, match="unknown loss 'hinge'; known: nonsaturating, minimax$"):
        losses.get_loss("hinge", known=("nonsaturating", "minimax"))
    with pytest.raises(ValueError, match="known: kl, reverse-kl"):
        losses.fgan_loss("tv")


# --------------------------------------------------------------------------
# WGAN-GP


@pytest.mark.parametrize("norm", [0.25, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic(norm: float) -> None:
    """D(x) = <w, x> + b has gradient w everywhere: the penalty is
    lambda * (||w|| - 1)^2 whatever the interpolates."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 2, 2)
    w = w / w.norm() * norm
    critic = lambda x: (x * w).flatten(1).sum(1) + 0.7  # noqa: E731
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    penalty = losses.gradient_penalty(critic, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (norm - 1) ** 2, abs=1e-5)


def test_gradient_penalty_uses_interpolates_and_reaches_the_critic_weights() -> None:
    """A quadratic critic D(x) = sum(x^2) has gradient 2x: at eps = 1/2 the
    interpolate of x and -x is 0, so the gradient is 0 and the penalty
    lambda * 1; at eps = 1 it is evaluated at x itself."""
    x = torch.full((2, 1, 1, 2), 0.5)
    critic = lambda v: (v**2).flatten(1).sum(1)  # noqa: E731
    mid = losses.gradient_penalty(critic, x, -x, weight=2.0, eps=T([0.5, 0.5]))
    assert mid.item() == pytest.approx(2.0)
    at_real = losses.gradient_penalty(critic, x, -x, weight=1.0, eps=T([1.0, 1.0]))
    assert at_real.item() == pytest.approx((math.sqrt(2) - 1) ** 2)  # grad 2x = (1, 1), norm sqrt(2)
    # The penalty is differentiable w.r.t. the critic's weights (create_graph).
    lin = torch.nn.Linear(4, 1)
    pen = losses.gradient_penalty(
        lambda v: lin(v.flatten(1)).squeeze(1), torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    )
    pen.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# EBGAN, VAE-GAN


def test_ebgan_energy_margin_and_pulling_away() -> None:
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    assert losses.energy_mse(x, recon).tolist() == [0.0, 4.0]
    # L_D = D(x) + [m - D(G(z))]^+ with m = 1: 0.1 + mean(0.7, 0)
    assert losses.d_loss_ebgan(T([0.1]), T([0.3, 2.0]), margin=1.0).item() == pytest.approx(0.45)
    assert losses.pulling_away(torch.eye(4)).item() == pytest.approx(0.0)  # orthogonal codes
    assert losses.pulling_away(torch.ones(3, 5)).item() == pytest.approx(1.0)  # identical codes
    # two codes at 60 degrees: cos^2 = 1/4, both ordered pairs count, N(N-1) = 2
    s = T([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert losses.pulling_away(s).item() == pytest.approx(0.25)


def test_kl_to_standard_normal_and_gaussian_reconstruction() -> None:
    assert losses.kl_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    assert losses.kl_normal(T([[1.0, 2.0]]), torch.zeros(1, 2)).item() == pytest.approx(2.5)
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    want = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert losses.kl_normal(mu, logvar).item() == pytest.approx(want.item(), rel=1e-5)
    assert losses.half_sq_error(torch.zeros(2, 3), T([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])).item() == pytest.approx(
        (1.0 + 2.0) / 2
    )


# --------------------------------------------------------------------------
# f-GAN: Nowozin et al. (2016), Table 2


# Closed forms of D_f(P||Q) for discrete P, Q (the paper's Table 1 column "D_f").
def _closed_form(name: str, p: torch.Tensor, q: torch.Tensor) -> float:
    m = (p + q) / 2
    jsd = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    return {
        "kl": (p * (p / q).log()).sum(),
        "reverse-kl": (q * (q / p).log()).sum(),
        "pearson": ((p - q) ** 2 / q).sum(),
        "squared-hellinger": ((p.sqrt() - q.sqrt()) ** 2).sum(),
        "js": 2 * jsd,
        "gan": 2 * jsd - math.log(4),
    }[name].item()


P = _d([0.1, 0.2, 0.3, 0.4])
Q = _d([0.25, 0.25, 0.35, 0.15])


def test_the_table_has_the_six_divergences() -> None:
    assert set(DIVERGENCES) == {"kl", "reverse-kl", "pearson", "squared-hellinger", "js", "gan"}
    with pytest.raises(ValueError, match="known: kl"):
        get_divergence("wasserstein")


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_generator_function_is_normalised_convex_and_matches_the_closed_form(name: str) -> None:
    div = get_divergence(name)
    # f(1) = 0, except the paper's "gan" f, shifted by -log 4 (D_f = 2 JSD - log 4)
    assert div.f(_d(1.0)).item() == pytest.approx(-math.log(4) if name == "gan" else 0.0, abs=1e-12)
    assert div.f_prime(_d(1.0)).item() == pytest.approx(div.f_prime_at_1, abs=1e-12)
    u = torch.linspace(0.05, 8, 200, dtype=torch.float64)
    assert (div.f(u[:-2]) - 2 * div.f(u[1:-1]) + div.f(u[2:]) >= -1e-12).all()  # convex
    # f' is the derivative of f
    u = torch.tensor([0.2, 0.7, 1.3, 4.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(div.f(u).sum(), u)
    assert torch.allclose(grad, div.f_prime(u.detach()), atol=1e-9)
    assert div.divergence(P, Q).item() == pytest.approx(_closed_form(name, P, Q), rel=1e-9)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_conjugate_is_the_legendre_transform_of_f(name: str) -> None:
    """f*(t) = sup_u {u t - f(u)}, by brute force over a fine grid of u, at
    t = f'(u0) (where the sup is attained at u0 inside the grid)."""
    div = get_divergence(name)
    u = torch.logspace(-4, 3, 400_001, dtype=torch.float64)
    for u0 in (0.1, 0.5, 1.0, 2.0, 5.0):
        t = div.f_prime(_d(u0))
        brute = (u * t - div.f(u)).max()
        assert div.conjugate(t).item() == pytest.approx(brute.item(), abs=1e-6)
        # Fenchel-Young with equality at t = f'(u0): f*(f'(u0)) = u0 f'(u0) - f(u0)
        assert div.conjugate(t).item() == pytest.approx((u0 * t - div.f(_d(u0))).item(), abs=1e-12)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_activation_lands_in_the_conjugate_domain_and_the_stable_composition_agrees(name: str) -> None:
    div = get_divergence(name)
    v = torch.linspace(-30, 30, 601, dtype=torch.float64)
    t = div.activation(v)
    low, high = div.domain
    assert ((t > low) & (t < high)).all()
    assert torch.isfinite(div.fstar_of_g(v.float())).all()  # float32 stays finite too
    moderate = v.abs() <= 8
    assert torch.allclose(div.fstar_of_g(v[moderate]), div.conjugate(t[moderate]), rtol=1e-9, atol=1e-9)
    # T at P = Q, f'(1), is reachable: some v maps onto it.
    assert t.min() <= div.f_prime_at_1 <= t.max()


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_variational_bound_is_tight_at_the_optimal_critic(name: str) -> None:
    """E_P[T] - E_Q[f*(T)] <= D_f(P||Q), with equality at T* = f'(p/q)."""
    div = get_divergence(name)
    t_star = div.f_prime(P / Q)
    bound_at_optimum = (P * t_star).sum() - (Q * div.conjugate(t_star)).sum()
    assert bound_at_optimum.item() == pytest.approx(_closed_form(name, P, Q), rel=1e-9, abs=1e-12)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        t = t_star + 0.1 * torch.randn(4, generator=gen, dtype=torch.float64)
        if div.domain[1] < math.inf:
            t = t.clamp(max=div.domain[1] - 1e-3)
        assert ((P * t).sum() - (Q * div.conjugate(t)).sum()).item() <= bound_at_optimum.item() + 1e-12


def test_fgan_losses_on_fixed_logits() -> None:
    real, fake = T([0.3, -1.2, 2.0]), T([0.5, -0.7])
    # "gan": g_f = log sigmoid, f*(g_f(v)) = softplus(v): exactly the BCE D loss
    # and the non-saturating G loss.
    assert losses.d_loss_fgan(real, fake, "gan").item() == pytest.approx(losses.d_loss_bce(real, fake).item(), rel=1e-6)
    assert losses.g_loss_fgan(fake, "gan").item() == pytest.approx(losses.g_loss_nonsaturating(fake).item(), rel=1e-6)
    # "kl": g_f(v) = v, f*(t) = exp(t - 1)
    assert losses.d_loss_fgan(T([0.0, 1.0]), T([0.0]), "kl").item() == pytest.approx(-(0.5 - math.exp(-1)))
    assert losses.g_loss_fgan(T([2.0]), "kl").item() == pytest.approx(-2.0)
    # "pearson": g_f(v) = v, f*(t) = t^2 / 4 + t
    assert losses.d_loss_fgan(T([1.0]), T([2.0]), "pearson").item() == pytest.approx(-(1.0 - (1.0 + 2.0)))
    # "js": T = log 2 - softplus(-v); at v = 0, T = 0 and f*(0) = -log(2 - 1) = 0
    assert losses.d_loss_fgan(T([0.0]), T([0.0]), "js").item() == pytest.approx(0.0, abs=1e-7)
    # "reverse-kl": g_f(0) = -1, f*(-1) = -1 - log 1 = -1: loss = -(-1 - (-1)) = 0
    assert losses.d_loss_fgan(T([0.0]), T([0.0]), "reverse-kl").item() == pytest.approx(0.0, abs=1e-7)
    # "squared-hellinger": g_f(0) = 0, f*(0) = 0
    assert losses.d_loss_fgan(T([0.0]), T([0.0]), "squared-hellinger").item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(losses.d_loss_fgan(T([40.0]), T([40.0]), "squared-hellinger"))
    assert F.softplus(T(0.0)).item() == pytest.approx(LOG2)
