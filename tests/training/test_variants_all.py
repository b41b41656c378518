"""The twelve variants: registry, one short epoch + export with ONNX parity
for each of the nine classic ones (dcgan/cgan/infogan: test_export.py),
encoder.onnx for BiGAN/VAE-GAN, the update rules that define each variant,
and exports the server can load (2-D points, Fashion-MNIST class names)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from gan_contract.manifest import expected_inputs, load_manifest
from gan_contract.request import SampleSpec
from gan_server.repository import ModelRepository
from gan_training.data import FASHION_CLASS_NAMES, FASHION_MNIST_DIR, load_dataset
from gan_training.export import example_inputs, export_run, load_encoder, load_generator
from gan_training.models import GeneratorConfig, has_parametrizations
from gan_training.trainer import build_variant, fit, load_checkpoint
from gan_training.variants import VARIANTS, get_variant

from .conftest import tiny_config

ALL = ["dcgan", "cgan", "infogan", "gan", "fgan", "wgan", "wgan-gp", "sngan", "lsgan", "ebgan", "vaegan", "bigan"]
NEW = ALL[3:]
ENCODERS = ("bigan", "vaegan")
# lsgan's generator on MNIST is dcgan's (exported by test_export.py); on ring8
# it is the MLP for points, so the fixture covers the 2-D export too.
DATASET = {"lsgan": "ring8"}


def test_registry_has_the_twelve_and_names_them_on_a_typo() -> None:
    assert set(VARIANTS) == set(ALL)
    with pytest.raises(ValueError) as err:
        get_variant("wgan_gp")
    assert all(name in str(err.value) for name in ALL)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """variant -> (run dir, version dir): one short epoch on 64 MNIST digits
    (lsgan: 64 ring8 points), exported."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for name in NEW:
        dataset = DATASET.get(name, "mnist")
        cfg = tiny_config(name, root / "runs" / name, dataset=dataset, epochs=1, limit=64, mlp_hidden=32)
        run = fit(cfg, progress=False)
        # evaluate=True on points: export must skip the digit judge by itself
        out[name] = (run, export_run(run, repo=root / "models", name=name, evaluate=dataset != "mnist"))
    return out


@pytest.mark.parametrize("name", NEW)
def test_every_variant_trains_and_exports_with_onnx_parity(exported, name: str) -> None:
    run, version_dir = exported[name]
    ckpt = load_checkpoint(run)  # torch.load(weights_only=True) inside
    assert ckpt["epoch"] == 1 and ckpt["dataset_size"] == 64 and ckpt["variant"] == name
    manifest = load_manifest(version_dir)  # verifies every sha256
    assert manifest.variant == name and manifest.inputs == expected_inputs(manifest.latent, manifest.conditioning)
    want_files = {"onnx", "torchscript", "torch_export"} | ({"encoder_onnx"} if name in ENCODERS else set())
    assert set(manifest.files) == want_files
    assert manifest.metrics["onnx_parity"]["max_abs_diff"] <= 1e-4

    generator = load_generator(ckpt)
    assert not has_parametrizations(generator)  # no spectral norm (or other) left on an exported G
    g_cfg = GeneratorConfig(**ckpt["generator_config"])
    shape = (1, 2, 1) if DATASET.get(name) == "ring8" else (1, 28, 28)
    assert tuple(ckpt["sample_shape"]) == shape
    session = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        (z,) = example_inputs(g_cfg, batch, seed=batch)
        got = session.run(["images"], {"z": z.numpy()})[0]
        with torch.no_grad():
            want = generator(z).numpy()
        assert got.shape == (batch, *shape) and np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_onnx_maps_images_to_the_latent(exported, name: str) -> None:
    run, version_dir = exported[name]
    ckpt = load_checkpoint(run)
    manifest = load_manifest(version_dir)
    assert manifest.files["encoder_onnx"].path == "encoder.onnx"
    assert manifest.metrics["encoder_onnx_parity"]["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(version_dir / "encoder.onnx"), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("images", "tensor(float)", [1, 28, 28])
    assert outp.name == "z" and outp.shape[1] == manifest.latent.dim
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1
    got = session.run(["z"], {"images": images.numpy()})[0]
    encoder = load_encoder(ckpt)
    with torch.no_grad():
        want = encoder(images).numpy()
        full = encoder.encoder(images)  # the trained net's raw output
    assert got.shape == (5, manifest.latent.dim) and np.abs(got - want).max() <= 1e-4
    if name == "vaegan":  # [mu, log sigma^2]: the served z is mu
        assert full.shape[1] == 2 * manifest.latent.dim
        assert np.abs(got - full[:, : manifest.latent.dim].numpy()).max() <= 1e-4
    # The server loads the encoder and encodes its own samples.
    model = ModelRepository(version_dir.parent.parent).load_version(version_dir)
    sample = model.generate(model.plan(SampleSpec(count=3, seed=1)), 0, 3)
    latents = model.encode(sample.images)
    assert latents.shape == (3, manifest.latent.dim) and np.isfinite(latents).all()


# --------------------------------------------------------------------------
# What makes each variant itself


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def _step(variant, data, n: int = 1, batch: int = 16) -> list[dict[str, float]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        idx = torch.randint(len(data), (batch,), generator=gen)
        out.append(variant.train_step(data.images[idx], data.labels[idx]))
    return out


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _moved(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_wgan_clips_the_critic_and_updates_g_every_fifth_step(mnist, tmp_path: Path) -> None:
    # n_critic = 5 without the warm-up's 100 critic steps (test_budget.py)
    cfg, v = build_variant(tiny_config("wgan", tmp_path, critic_warmup=False), torch.device("cpu"))
    assert (cfg.d_steps, cfg.clip, cfg.lr_g, cfg.lr_d) == (5, 0.01, 5e-5, 5e-5)
    assert isinstance(v.opt_d, torch.optim.RMSprop) and isinstance(v.opt_g, torch.optim.RMSprop)
    for step in range(1, 11):
        g0 = _snapshot(v.G)
        _step(v, mnist)
        assert _moved(g0, v.G) == (step % 5 == 0), f"step {step}"
        assert max(p.abs().max().item() for p in v.D.parameters()) <= 0.01 + 1e-7


def test_gan_d_steps_and_generator_losses(tmp_path: Path) -> None:
    ring = load_dataset("ring8")
    cfg, v = build_variant(
        tiny_config("gan", tmp_path, dataset="ring8", d_steps=3, g_loss="minimax"), torch.device("cpu")
    )
    assert cfg.z_dim == 2 and v.g_config.arch == "mlp" and v.g_config.out_activation == "linear"
    moved = []
    for _ in range(6):
        g0 = _snapshot(v.G)
        losses = _step(v, ring)[0]
        moved.append(_moved(g0, v.G))
    assert moved == [False, False, True, False, False, True]
    assert losses["loss_g"] < 0  # minimax: log(1 - D(G(z))) < 0
    _, mnist_gan = build_variant(tiny_config("gan", tmp_path), torch.device("cpu"))
    assert mnist_gan.g_config.arch == "mlp" and mnist_gan.g_config.out_activation == "tanh"  # MLPs on images too
    with pytest.raises(ValueError, match="known: nonsaturating, minimax"):
        build_variant(tiny_config("gan", tmp_path, g_loss="wasserstein"), torch.device("cpu"))


def test_wgan_gp_critic_has_no_batchnorm_and_its_adam_settings(mnist, tmp_path: Path) -> None:
    cfg, v = build_variant(tiny_config("wgan-gp", tmp_path), torch.device("cpu"))
    assert (cfg.lr_d, cfg.beta1, cfg.beta2, cfg.d_steps, cfg.gp_weight) == (1e-4, 0.5, 0.9, 5, 10.0)
    assert v.opt_d.param_groups[0]["betas"] == (0.5, 0.9)
    kinds = {type(m).__name__ for m in v.D.modules()}
    assert "LayerNorm" in kinds and not any("BatchNorm" in k for k in kinds)
    assert "penalty" in _step(v, mnist)[0]


def test_sngan_normalises_every_d_weight_and_not_g(mnist, tmp_path: Path) -> None:
    _, v = build_variant(tiny_config("sngan", tmp_path), torch.device("cpu"))
    from torch.nn.utils import parametrize

    weighted = [m for m in v.D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert weighted and all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not has_parametrizations(v.G)
    assert not any("BatchNorm" in type(m).__name__ for m in v.D.modules())
    _step(v, mnist, n=3)
    for m in weighted:  # after a few power iterations the normalised weight has sigma ~ 1
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert 0.8 < sigma < 1.2
    cfg, _ = build_variant(tiny_config("sngan", tmp_path, sn_loss="nonsaturating"), torch.device("cpu"))
    assert cfg.sn_loss == "nonsaturating"


@pytest.mark.parametrize("divergence", ["kl", "reverse-kl", "pearson", "squared-hellinger", "js", "gan"])
def test_fgan_runs_every_divergence(tmp_path: Path, divergence: str) -> None:
    ring = load_dataset("ring8")
    _, v = build_variant(tiny_config("fgan", tmp_path, dataset="ring8", divergence=divergence), torch.device("cpu"))
    for losses in _step(v, ring, n=3):
        assert all(np.isfinite(x) for x in losses.values())


def test_fgan_rejects_an_unknown_divergence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: kl, reverse-kl, pearson, squared-hellinger, js, gan"):
        build_variant(tiny_config("fgan", tmp_path, divergence="tv"), torch.device("cpu"))


def test_ebgan_autoencoder_energy_and_pulling_away(mnist, tmp_path: Path) -> None:
    cfg, v = build_variant(tiny_config("ebgan", tmp_path, pt_weight=0.1, margin=2.0), torch.device("cpu"))
    recon, code = v.D(mnist.images[:4])
    assert recon.shape == (4, 1, 28, 28) and code.shape[0] == 4
    losses = _step(v, mnist)[0]
    assert {"energy_real", "energy_fake", "pulling_away"} <= set(losses)
    # L_D = E_real + [m - E_fake]^+ on the step's (pre-update) energies
    assert losses["loss_d"] == pytest.approx(losses["energy_real"] + max(0.0, 2.0 - losses["energy_fake"]), rel=0.05)


def test_vaegan_and_bigan_update_their_encoders(mnist, tmp_path: Path) -> None:
    for name in ENCODERS:
        _, v = build_variant(tiny_config(name, tmp_path), torch.device("cpu"))
        e0, g0, d0 = _snapshot(v.E), _snapshot(v.G), _snapshot(v.D)
        losses = _step(v, mnist)[0]
        assert _moved(e0, v.E) and _moved(g0, v.G) and _moved(d0, v.D), name
        state = v.state_dict()
        assert {"generator", "discriminator", "encoder", "encoder_config"} <= set(state)
        in_opt_g = {id(p) for group in v.opt_g.param_groups for p in group["params"]}
        if name == "bigan":  # E and G fool D together: one optimiser
            assert {id(p) for p in v.E.parameters()} <= in_opt_g
        else:  # VAE-GAN: E has its own update (prior + reconstruction)
            assert {"loss_prior", "loss_llike"} <= set(losses)
            assert not {id(p) for p in v.E.parameters()} & in_opt_g


def _count_steps(opt: torch.optim.Optimizer) -> list[int]:
    """A list that grows by one at every ``opt.step()``."""
    calls: list[int] = []
    step = opt.step

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    opt.step = counted
    return calls


@pytest.mark.parametrize("name", ALL)
def test_every_variant_honours_d_steps(mnist, tmp_path: Path, name: str) -> None:
    """k = --d-steps D updates, each on its own trainer step's batch, per G update."""
    no_warmup = {"critic_warmup": False} if name == "wgan" else {}  # WGAN's warm-up: test_budget.py
    _, v = build_variant(tiny_config(name, tmp_path, d_steps=2, **no_warmup), torch.device("cpu"))
    d_calls, g_calls = _count_steps(v.opt_d), _count_steps(v.opt_g)
    e_calls = _count_steps(v.opt_e) if name == "vaegan" else None
    for step in range(1, 5):
        logged = _step(v, mnist)[0]
        assert (len(d_calls), len(g_calls)) == (step, step // 2), f"{name}, step {step}"
        assert ("loss_g" in logged) == (step % 2 == 0)  # loss_g: from the steps that update G
        if e_calls is not None:
            assert len(e_calls) == step // 2
    with pytest.raises(ValueError, match="d_steps must be >= 1"):
        build_variant(tiny_config(name, tmp_path, d_steps=0), torch.device("cpu"))


@pytest.mark.parametrize("name", ALL)
def test_default_update_counts(mnist, tmp_path: Path, name: str) -> None:
    """A default run: one G update per D update, but n_critic = 5 for the WGANs,
    and WGAN's critic warm-up takes 100 critic steps before its first G update."""
    cfg, v = build_variant(tiny_config(name, tmp_path), torch.device("cpu"))
    k = 5 if name in ("wgan", "wgan-gp") else 1
    d_calls, g_calls = _count_steps(v.opt_d), _count_steps(v.opt_g)
    _step(v, mnist, n=5)
    assert (len(d_calls), len(g_calls)) == (5, 0 if name == "wgan" else 5 // k)
    assert cfg.d_steps == k and cfg.critic_warmup == (name == "wgan")


def test_a_variant_that_cannot_make_the_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"generates samples of shape \(1, 28, 28\) but dataset 'ring8' has \(1, 2, 1\)"
    ):
        fit(tiny_config("dcgan", tmp_path / "run", dataset="ring8"), progress=False)


def test_resume_reproduces_a_run_with_critic_steps(tmp_path: Path) -> None:
    """7 steps per epoch against n_critic = 5: the step counter must survive resume."""
    extra = dict(dataset="ring8", steps_per_epoch=7, eval_every=0, critic_warmup=False)
    fit(tiny_config("wgan", tmp_path / "straight", **extra), progress=False)
    fit(tiny_config("wgan", tmp_path / "split", epochs=1, **extra), progress=False)
    fit(tiny_config("wgan", tmp_path / "split", **extra), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight")["state"], load_checkpoint(tmp_path / "split")["state"]
    assert a["step_count"] == b["step_count"] == 14 and a["g_updates"] == b["g_updates"] == 2
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])


@pytest.mark.parametrize("name", ALL)
def test_each_variant_tells_export_what_its_manifest_holds(tmp_path: Path, name: str) -> None:
    cls = get_variant(name)
    cfg = cls.resolve(tiny_config(name, tmp_path, labelled_fraction=0.1 if name == "infogan" else 0.0))
    own = {
        "gan": ["g_loss", "d_dropout"],
        "fgan": ["divergence"],
        "wgan": ["clip", "critic_warmup"],
        "wgan-gp": ["gp_weight", "critic_warmup"],
        "sngan": ["sn_loss"],
        "ebgan": ["margin", "pt_weight"],
        "vaegan": ["gamma", "recon"],
        "infogan": ["lr_q", "lambda_cat", "lambda_cont", "labelled_fraction", "lambda_sup", "augment_labelled"]
        + ["q_fake_cat_weight", "q_trains_body", "q_fixed_variance"],
    }.get(name, [])
    assert list(cls.manifest_training(cfg)) == ["d_steps", *own]
    assert cls.has_encoder == (name in ENCODERS)
    g_cfg = GeneratorConfig(conditioning=cls.conditioning)
    if name == "infogan":  # the category -> digit map comes from the last evaluation
        with pytest.raises(ValueError, match="no category->digit evaluation"):
            cls.manifest_conditioning(cfg, g_cfg, {}, tuple("0123456789"))
    else:
        cond = cls.manifest_conditioning(cfg, g_cfg, {}, tuple("0123456789"))
        want = {"kind": "class", "class_names": tuple("0123456789")} if name == "cgan" else {"kind": "none"}
        assert cond == want


# --------------------------------------------------------------------------
# Exports the server can load


def test_a_2d_point_model_exports_and_serves(exported) -> None:
    run, version_dir = exported["lsgan"]  # trained on ring8
    manifest = load_manifest(version_dir)
    assert (manifest.image.channels, manifest.image.height, manifest.image.width) == (1, 2, 1)
    assert manifest.image.value_range == (-1.5, 1.5) and manifest.dataset == "ring8"
    assert manifest.output.shape == (-1, 1, 2, 1) and "eval" not in manifest.metrics  # no digit judge
    session = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((9, manifest.latent.dim)).astype(np.float32)
    points = session.run(["images"], {"z": z})[0]
    with torch.no_grad():
        want = load_generator(load_checkpoint(run))(torch.from_numpy(z)).numpy()
    assert points.shape == (9, 1, 2, 1) and np.abs(points - want).max() <= 1e-4
    model = ModelRepository(version_dir.parent.parent).load_version(version_dir)
    out = model.generate(model.plan(SampleSpec(count=4, seed=2)), 0, 4)
    assert out.images.shape == (4, 2, 1, 1) and out.images.dtype == np.uint8  # coordinates mapped to 0..255


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_class_names_reach_the_manifest_and_the_server(tmp_path: Path) -> None:
    cfg = tiny_config("cgan", tmp_path / "run", dataset="fashion-mnist", epochs=1, limit=64)
    run = fit(cfg, progress=False)
    version_dir = export_run(run, repo=tmp_path / "models", name="fashion")
    manifest = load_manifest(version_dir)
    assert manifest.conditioning.class_names == FASHION_CLASS_NAMES and manifest.dataset == "fashion-mnist"
    model = ModelRepository(tmp_path / "models").load_version(version_dir)
    plan = model.plan(SampleSpec(count=2, label="sneaker"))
    assert plan.fixed_class == 7
    assert list(itertools.islice(FASHION_CLASS_NAMES, 10))[plan.fixed_class] == "sneaker"
