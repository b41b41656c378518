"""Networks honour the serving contract; every variant takes a real step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from gan_contract.manifest import load_manifest
from gan_training.data import load_dataset
from gan_training.export import export_run
from gan_training.models import GeneratorConfig, build_generator, count_parameters
from gan_training.trainer import build_variant, fit, load_checkpoint
from gan_training.variants import VARIANTS, get_variant

from .conftest import tiny_config


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_registry_knows_the_variants_and_rejects_others() -> None:
    assert {"dcgan", "cgan", "infogan"} <= set(VARIANTS)
    with pytest.raises(ValueError) as err:
        get_variant("stylegan")
    message = str(err.value)
    assert "stylegan" in message and all(known in message for known in ("dcgan", "cgan", "infogan"))


@pytest.mark.parametrize(
    "cfg, args",
    [
        (GeneratorConfig("none", z_dim=100), lambda n: (torch.randn(n, 100),)),
        (GeneratorConfig("class", z_dim=100), lambda n: (torch.randn(n, 100), torch.arange(n) % 10)),
        (
            GeneratorConfig("infogan", z_dim=62),
            lambda n: (torch.randn(n, 62), torch.eye(10)[torch.arange(n) % 10], torch.rand(n, 2) * 2 - 1),
        ),
    ],
)
def test_generator_signature_and_output(cfg: GeneratorConfig, args) -> None:
    g = build_generator(cfg).eval()
    out = g(*args(5))
    assert out.shape == (5, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    # The ONNX file stores float32 weights: stay near 1-3 MB at the default width.
    assert count_parameters(build_generator(GeneratorConfig(cfg.conditioning, z_dim=cfg.z_dim, width=32))) < 800_000


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(
    "name, extra",
    [
        ("dcgan", {}),
        ("cgan", {}),
        ("infogan", {}),
        ("infogan", {"labelled_fraction": 0.05}),
        ("infogan", {"labelled_fraction": 0.05, "q_fake_cat_weight": 0.0, "q_trains_body": False}),
        ("infogan", {"q_fixed_variance": True, "augment_labelled": False, "g_ema": 0.99}),
    ],
)
def test_one_real_training_step(mnist, tmp_path: Path, name: str, extra: dict) -> None:
    torch.manual_seed(0)
    cfg, variant = build_variant(tiny_config(name, tmp_path, **extra), torch.device("cpu"))
    variant.setup(mnist)
    g0, d0 = _params(variant.G), _params(variant.D)
    idx = torch.randperm(len(mnist))[:16]
    losses = variant.train_step(mnist.images[idx], mnist.labels[idx])
    assert {"loss_d", "loss_g"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, variant.G.parameters())), "G did not move"
    assert any(not torch.equal(a, b) for a, b in zip(d0, variant.D.parameters())), "D did not move"
    if name == "infogan":
        assert {"loss_info_cat", "loss_info_cont"} <= set(losses)
        assert ("loss_sup" in losses) == (extra.get("labelled_fraction", 0) > 0)


def test_weight_average_follows_g_and_is_what_generate_uses(mnist, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg, variant = build_variant(tiny_config("cgan", tmp_path, g_ema=0.5), torch.device("cpu"))
    variant.setup(mnist)
    assert variant.G_ema is not None
    before = _params(variant.G_ema)
    variant.train_step(mnist.images[:16], mnist.labels[:16])
    assert all(torch.equal(a, b) for a, b in zip(before, variant.G_ema.parameters())), "moved before after_step"
    variant.after_step()
    # First update: decay min(0.5, 2/11) = 2/11, so ema = 2/11 * old + 9/11 * new.
    for old, new, ema in zip(before, variant.G.parameters(), variant.G_ema.parameters()):
        assert torch.allclose(ema, old * 2 / 11 + new.detach() * 9 / 11, atol=1e-6)
    codes = variant.sample_codes(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(variant.generate(codes), variant.G_ema(**codes))
        assert not torch.allclose(variant.generate(codes), variant.G.eval()(**codes))


def test_weight_average_moves_once_per_generator_update(mnist, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg, variant = build_variant(tiny_config("wgan", tmp_path, g_ema=0.9, critic_warmup=False), torch.device("cpu"))
    assert cfg.d_steps == 5  # n_critic: G updates on every fifth step
    start = {k: v.clone() for k, v in variant.state_dict()["generator_ema"].items()}
    for step in range(1, 11):
        variant.train_step(mnist.images[:16], mnist.labels[:16])
        variant.after_step()
        assert variant.ema_updates == step // 5, f"step {step}"
        ema = variant.state_dict()["generator_ema"]
        assert all(torch.equal(ema[k], start[k]) for k in start) == (step < 5), f"step {step}"


def test_q_head_only_keeps_info_loss_out_of_the_body(mnist, tmp_path: Path) -> None:
    from gan_training import losses

    cfg, variant = build_variant(tiny_config("infogan", tmp_path), torch.device("cpu"))
    codes = variant.sample_codes(8, torch.Generator().manual_seed(0))
    fake = variant.G(**codes).detach()
    for detached, body_gets_grad in ((True, False), (False, True)):
        variant.D.zero_grad(set_to_none=True)
        out = variant.D(fake, q_detached=detached)
        losses.categorical_nll(out.cat_logits, codes["category"].argmax(1)).backward()
        assert (variant.D.body.conv1.weight.grad is not None) == body_gets_grad
        assert variant.D.q_head[0].weight.grad is not None


def test_semi_supervised_loss_reaches_q_from_labelled_reals(mnist, tmp_path: Path) -> None:
    """With only the supervised term, Q's categorical head must get gradient."""
    from gan_training import losses

    cfg, variant = build_variant(tiny_config("infogan", tmp_path, labelled_fraction=0.05), torch.device("cpu"))
    variant.setup(mnist)
    assert len(variant.labelled_y) == 250
    out = variant.D(variant.labelled_x[:8])
    losses.categorical_nll(out.cat_logits, variant.labelled_y[:8]).backward()
    grad = variant.D.q_head[-1].weight.grad
    assert grad is not None and grad[:10].abs().sum() > 0


def test_fixed_variance_ignores_q_logvar(tmp_path: Path) -> None:
    from gan_training.models import InfoOutput

    targets = {"category": torch.eye(10)[:4], "continuous": torch.full((4, 2), 0.5)}
    mean = torch.zeros(4, 2)

    def cont_loss(fixed: bool, logvar: float) -> float:
        _, variant = build_variant(tiny_config("infogan", tmp_path, q_fixed_variance=fixed), torch.device("cpu"))
        out = InfoOutput(torch.zeros(4), torch.zeros(4, 10), mean, torch.full((4, 2), logvar))
        return variant.info_loss(out, targets)[1].item()

    assert cont_loss(True, -3.0) == cont_loss(True, 2.0)
    assert cont_loss(False, -3.0) != cont_loss(False, 2.0)


# --------------------------------------------------------------------------
# Adding a variant (training/README.md): one small file on the base class

NEW_VARIANT = '''
"""R1-regularised GAN (Mescheder, Geiger & Nowozin, ICML 2018): D's loss gets
(gamma / 2) E[||grad_x D(x)||^2] on real data."""

import torch

from gan_training.variants import Variant, register


@register
class R1GAN(Variant):
    name = "r1-gan"
    loss_names = ("nonsaturating", "hinge")
    loss_option = "g_loss"
    gamma = 10.0

    def d_penalty(self, real, fake):
        real = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
        return 0.5 * self.gamma * grad.flatten(1).pow(2).sum(1).mean()
'''


@pytest.fixture
def new_variant(tmp_path: Path):
    """The module above, written to a file and imported (which registers it)."""
    path = tmp_path / "r1gan.py"
    path.write_text(NEW_VARIANT)
    spec = importlib.util.spec_from_file_location("r1gan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.R1GAN
    VARIANTS.pop("r1-gan", None)


def test_a_new_variant_is_one_small_file(new_variant, mnist, tmp_path: Path) -> None:
    assert get_variant("r1-gan") is new_variant
    # one real step: the base step with the variant's penalty and loss
    torch.manual_seed(0)
    cfg, variant = build_variant(tiny_config("r1-gan", tmp_path, g_loss="hinge"), torch.device("cpu"))
    g0, d0 = _params(variant.G), _params(variant.D)
    logged = variant.train_step(mnist.images[:16], mnist.labels[:16])
    assert {"loss_d", "loss_g", "penalty"} <= set(logged) and logged["penalty"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(g0, variant.G.parameters())), "G did not move"
    assert any(not torch.equal(a, b) for a, b in zip(d0, variant.D.parameters())), "D did not move"
    with pytest.raises(ValueError, match="known: nonsaturating, hinge"):
        build_variant(tiny_config("r1-gan", tmp_path, g_loss="minimax"), torch.device("cpu"))
    # a short fit, on images and on 2-D points (MLP nets), and an export
    for dataset in ("mnist", "ring8"):
        run = fit(tiny_config("r1-gan", tmp_path / dataset, dataset=dataset, epochs=1, limit=64), progress=False)
        ckpt = load_checkpoint(run)
        assert (
            ckpt["variant"] == "r1-gan"
            and ckpt["epoch"] == 1
            and set(ckpt["losses"]) == {"loss_d", "loss_g", "penalty"}
        )
    version = export_run(tmp_path / "ring8", repo=tmp_path / "models", name="r1", torch_export=False)
    manifest = load_manifest(version)
    assert manifest.variant == "r1-gan" and manifest.training["d_steps"] == 1
