"""Settings that follow the papers: the original GAN's dropout in D,
EBGAN's margin on the scale of its energies and its pulling-away term,
InfoGAN's MNIST architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gan_training.data import load_dataset
from gan_training.trainer import build_variant

from .conftest import tiny_config


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


# --------------------------------------------------------------------------
# gan: dropout in the MLP discriminator (Goodfellow et al. 2014, MNIST)


def test_gan_on_images_has_dropout_after_every_hidden_layer_of_d(tmp_path: Path) -> None:
    cfg, v = build_variant(tiny_config("gan", tmp_path), torch.device("cpu"))
    assert cfg.d_dropout == 0.5
    layers = list(v.D.body)
    acts = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == v.mlp_layers() == 2
    for i in acts:  # Linear, LeakyReLU, Dropout(0.5) per hidden layer
        assert isinstance(layers[i + 1], torch.nn.Dropout) and layers[i + 1].p == 0.5
    assert sum(isinstance(m, torch.nn.Dropout) for m in v.D.modules()) == 2
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    v.D.train()
    assert not torch.equal(v.D(x), v.D(x))  # a fresh mask each forward
    v.D.eval()
    assert torch.equal(v.D(x), v.D(x))


def test_dropout_is_off_on_points_and_elsewhere_unless_asked(tmp_path: Path) -> None:
    for name, dataset in (("gan", "ring8"), ("lsgan", "ring8"), ("dcgan", "mnist")):
        cfg, v = build_variant(tiny_config(name, tmp_path, dataset=dataset), torch.device("cpu"))
        assert cfg.d_dropout == 0.0 and not any(isinstance(m, torch.nn.Dropout) for m in v.D.modules()), name
        assert "dropout" not in v.d_config.params  # the net (and its checkpoint config) as before
    cfg, v = build_variant(tiny_config("lsgan", tmp_path, dataset="ring8", d_dropout=0.2), torch.device("cpu"))
    assert [m.p for m in v.D.modules() if isinstance(m, torch.nn.Dropout)] == [0.2] * 3
    cfg, v = build_variant(tiny_config("gan", tmp_path, d_dropout=0.0), torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.Dropout) for m in v.D.modules())
    with pytest.raises(ValueError, match="cgan.*--d-dropout.*projection_discriminator"):
        build_variant(tiny_config("cgan", tmp_path, d_dropout=0.5), torch.device("cpu"))


def test_convolutional_d_drops_whole_feature_maps_when_asked(tmp_path: Path) -> None:
    """--d-dropout on a convolutional D: Dropout2d(p) after each of its two
    convolutions (the common DCGAN examples' D), recorded in the net config
    and the manifest's training record."""
    for name in ("dcgan", "lsgan", "fgan", "sngan"):
        cfg, v = build_variant(tiny_config(name, tmp_path, d_dropout=0.25), torch.device("cpu"))
        drops = [m for m in v.D.modules() if isinstance(m, torch.nn.Dropout2d)]
        assert len(drops) == 1 and drops[0].p == 0.25, name  # one module, applied after each convolution
        assert v.d_config.params["dropout"] == 0.25
        assert type(v).manifest_training(cfg)["d_dropout"] == 0.25
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    # The mask is per feature map: with p = 0.5 and 8 maps at 14x14, a map
    # zeroed whole shows up as a (sample, channel) slice of exact zeros after
    # conv1's activation; element-wise dropout would almost never zero all
    # 196 values of a map (0.5 ** 196).
    _, v = build_variant(tiny_config("dcgan", tmp_path, d_dropout=0.5), torch.device("cpu"))
    v.D.train()
    h = v.D.body.drop(torch.nn.functional.leaky_relu(v.D.body.conv1(x), 0.2))
    zero_maps = (h.flatten(2).abs().amax(2) == 0).float().mean().item()
    assert 0.3 < zero_maps < 0.7  # 64 maps at p = 0.5: 0.5 +- 0.06 (1 sd)
    assert not torch.equal(v.D(x), v.D(x))  # a fresh mask each forward
    v.D.eval()
    assert torch.equal(v.D(x), v.D(x))


def test_bigan_joint_d_takes_dropout_in_every_layer(tmp_path: Path) -> None:
    """--d-dropout on bigan's joint D(x, z), as ALI puts dropout in every
    layer of D: Dropout2d in the image body, Dropout after the z layer and the
    joint hidden layer; without it the net (and its state-dict keys) are as
    before."""
    cfg, v = build_variant(tiny_config("bigan", tmp_path), torch.device("cpu"))
    plain_keys = set(v.D.state_dict())
    assert not any(isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)) for m in v.D.modules())
    assert "dropout" not in v.d_config.params
    cfg, v = build_variant(tiny_config("bigan", tmp_path, d_dropout=0.2), torch.device("cpu"))
    assert [m.p for m in v.D.modules() if isinstance(m, torch.nn.Dropout2d)] == [0.2]
    assert [m.p for m in v.D.modules() if type(m) is torch.nn.Dropout] == [0.2, 0.2]
    assert v.d_config.params["dropout"] == 0.2
    assert type(v).manifest_training(cfg)["d_dropout"] == 0.2
    # Dropout has no parameters, but its place in joint shifts the output
    # layer's index: a checkpoint of the plain D must not load into this one.
    assert set(v.D.state_dict()) != plain_keys
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    z = torch.randn(8, cfg.z_dim)
    v.D.train()
    assert not torch.equal(v.D(x, z), v.D(x, z))  # a fresh mask each forward
    v.D.eval()
    assert torch.equal(v.D(x, z), v.D(x, z))
    # Points: Dropout after each of the joint MLP's three hidden layers.
    _, v = build_variant(tiny_config("bigan", tmp_path, dataset="ring8", d_dropout=0.3), torch.device("cpu"))
    assert [m.p for m in v.D.modules() if isinstance(m, torch.nn.Dropout)] == [0.3] * 3


# --------------------------------------------------------------------------
# ebgan: a margin on the scale of the energies (MAGAN), the pulling-away term


def _real_energy(v, data, n: int = 256) -> float:
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(5))[:n]
    with torch.no_grad():
        return v.energy(data.images[idx])[0].mean().item()


def test_ebgan_defaults_to_pulling_away_and_an_adaptive_margin(mnist, tmp_path: Path) -> None:
    # A quick learner (lr_d 2e-3) pre-trained as an autoencoder for 2 x 60 steps:
    # its energies on real digits fall well below the old fixed margin of 1.
    cfg, v = build_variant(tiny_config("ebgan", tmp_path, lr_d=2e-3, steps_per_epoch=60), torch.device("cpu"))
    assert cfg.pt_weight == 0.1 and cfg.margin is None
    v.setup(mnist)
    energy = _real_energy(v, mnist)
    assert 0.5 <= v.margin / energy <= 5, (v.margin, energy)
    assert 1.0 / energy > 5  # where the old default sat
    assert v.state_dict()["margin"] == v.margin


def test_ebgan_margin_follows_magans_rule(mnist, tmp_path: Path) -> None:
    """Wang et al. (2017), Algorithm 1: after an epoch, m <- its mean real
    energy if that is below m, below the mean fake energy, and the fake
    energy did not fall since the epoch before."""
    _, v = build_variant(tiny_config("ebgan", tmp_path), torch.device("cpu"))
    v.margin = 0.5
    epochs = [(0.3, 0.6), (0.25, 0.7), (0.2, 0.65), (0.1, 0.08), (0.15, 0.9), (0.2, 1.0)]
    margins = [v.end_epoch({"energy_real": r, "energy_fake": f})["margin"] for r, f in epochs]
    # no previous epoch; fake rose; fake fell; fake below real; fake rose; real above m
    assert margins == [0.5, 0.25, 0.25, 0.25, 0.15, 0.15]


def test_ebgan_given_margin_stays_fixed(mnist, tmp_path: Path) -> None:
    _, v = build_variant(tiny_config("ebgan", tmp_path, margin=2.0, pt_weight=0.0), torch.device("cpu"))
    d0 = [p.detach().clone() for p in v.D.parameters()]
    v.setup(mnist)  # no pre-training
    assert all(torch.equal(a, b) for a, b in zip(d0, v.D.parameters()))
    assert v.end_epoch({"energy_real": 0.1, "energy_fake": 3.0})["margin"] == 2.0 == v.margin


def test_ebgan_run_records_its_margin(tmp_path: Path) -> None:
    import json

    from gan_training.trainer import fit
    from gan_training.variants import get_variant

    run = fit(tiny_config("ebgan", tmp_path / "run", epochs=3), progress=False)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["margin"] < 1 for r in lines)
    from gan_training.trainer import load_checkpoint

    state = load_checkpoint(run)["state"]
    facts = get_variant("ebgan").manifest_progress(state)
    assert facts["margin_final"] == lines[-1]["margin"] and facts["margin_initial"] >= facts["margin_final"]
    cfg = get_variant("ebgan").resolve(tiny_config("ebgan", tmp_path))
    assert get_variant("ebgan").manifest_training(cfg)["margin"] == "adaptive"


# --------------------------------------------------------------------------
# Where G's last layer gets no signal it draws the data's mean level, not
# mid-grey (the grey square of the bundled infogan model: docs/training.md)


def _silenced(generator: torch.nn.Module, layer: torch.nn.Module, codes: dict) -> torch.Tensor:
    """G's output with every input of its output layer zeroed: what G draws where its features are silent."""
    hook = layer.register_forward_pre_hook(lambda _, args: (torch.zeros_like(args[0]),))
    try:
        with torch.no_grad():
            return generator.eval()(**codes)
    finally:
        hook.remove()


@pytest.mark.parametrize("name", ["infogan", "dcgan", "gan", "cgan"])
def test_where_g_draws_nothing_it_draws_the_data_mean_not_grey(mnist, tmp_path: Path, name: str) -> None:
    cfg, v = build_variant(tiny_config(name, tmp_path, g_ema=0.9), torch.device("cpu"))
    v.setup(mnist)
    layer = v.G.out if v.g_config.arch == "mlp" else v.G.net.up2
    mean = mnist.images.mean().item()  # -0.74: 81 % of MNIST's pixels are background (-1)
    assert layer.bias.detach().tanh().allclose(torch.tensor(mean), atol=1e-4)
    silent = _silenced(v.G, layer, v.sample_codes(4, torch.Generator().manual_seed(0)))
    assert silent.allclose(torch.tensor(mean), atol=1e-4)  # was tanh(0) = 0, mid-grey
    assert v.G_ema.module.state_dict().keys() == v.G.state_dict().keys()
    ema_layer = v.G_ema.module.out if v.g_config.arch == "mlp" else v.G_ema.module.net.up2
    assert torch.equal(ema_layer.bias, layer.bias)  # the weight average starts from the same G


# --------------------------------------------------------------------------
# infogan: Chen et al.'s MNIST setup, and Q judged on held-out real digits


PAPER = {
    "width": 64,
    "g_hidden": 1024,
    "d_hidden": 1024,
    "q_trains_body": True,
    "q_fixed_variance": True,
    "lambda_cat": 1.0,
    "lambda_cont": 1.0,
}


def test_infogan_paper_flag_builds_the_papers_nets(mnist, tmp_path: Path) -> None:
    """Chen et al. (2016), Table 1 (MNIST): G: FC 1024 - BN - ReLU, FC 7x7x128 -
    BN - ReLU, 4x4 upconv 64 - BN - ReLU, 4x4 upconv 1; D: 4x4 conv 64 - lReLU,
    4x4 conv 128 - BN - lReLU, FC 1024 - BN - lReLU, then D's output and Q
    (FC 128 - BN - lReLU - FC) on that shared layer."""
    # width: the paper's 64 (tiny_config's 8 would be refused as a conflicting choice)
    cfg, v = build_variant(tiny_config("infogan", tmp_path, infogan_paper=True, width=64), torch.device("cpu"))
    assert {k: getattr(cfg, k) for k in PAPER} == PAPER and cfg.labelled_fraction == 0
    g = v.G.net
    assert [type(m) for m in g.mlp] == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU]
    assert (g.mlp[0].in_features, g.mlp[0].out_features) == (62 + 10 + 2, 1024)
    assert (g.fc.in_features, g.fc.out_features) == (1024, 128 * 7 * 7)
    assert (g.up1.in_channels, g.up1.out_channels, g.up2.out_channels) == (128, 64, 1)
    d = v.D
    assert (d.body.conv1.out_channels, d.body.conv2.out_channels) == (64, 128)
    assert isinstance(d.body.norm, torch.nn.BatchNorm2d)
    assert [type(m) for m in d.fc] == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.LeakyReLU]
    assert (d.fc[0].in_features, d.fc[0].out_features) == (128 * 7 * 7, 1024)
    assert d.head.in_features == 1024 and d.q_head[0].in_features == 1024 and d.q_head[0].out_features == 128
    v.setup(mnist)
    losses = v.train_step(mnist.images[:16], mnist.labels[:16])
    assert {"loss_d", "loss_g", "loss_info_cat", "loss_info_cont"} <= set(losses)
    # Q trains the shared body: the info loss on fakes reaches conv1 and the FC-1024 layer
    codes = v.sample_codes(8, torch.Generator().manual_seed(0))
    v.D.zero_grad(set_to_none=True)
    cat, cont = v.info_loss(v.D(v.G(**codes).detach(), q_detached=not cfg.q_trains_body), codes)
    (cat + cont).backward()
    assert v.D.body.conv1.weight.grad is not None and v.D.fc[0].weight.grad is not None


def test_infogan_paper_flag_refuses_settings_it_would_override(tmp_path: Path) -> None:
    for extra, flag in (
        ({"labelled_fraction": 0.1}, "--labelled-fraction"),
        ({"q_trains_body": False}, "--q-trains-body"),
        ({"width": 16}, "--width"),
        ({"lambda_cont": 0.1}, "--lambda-cont"),
    ):
        cfg = tiny_config("infogan", tmp_path, infogan_paper=True, **{"width": 64, **extra})
        with pytest.raises(ValueError, match=f"--infogan-paper.*{flag}"):
            build_variant(cfg, torch.device("cpu"))
    with pytest.raises(ValueError, match="dcgan.*--infogan-paper"):
        build_variant(tiny_config("dcgan", tmp_path, infogan_paper=True), torch.device("cpu"))
    with pytest.raises(ValueError, match="dcgan.*--d-hidden"):
        build_variant(tiny_config("dcgan", tmp_path, d_hidden=64), torch.device("cpu"))
    _, v = build_variant(tiny_config("infogan", tmp_path, d_hidden=32), torch.device("cpu"))  # the layer alone
    assert v.D.fc[0].out_features == 32 and v.D.head.in_features == 32
    _, v = build_variant(tiny_config("infogan", tmp_path), torch.device("cpu"))
    assert isinstance(v.D.fc, torch.nn.Identity) and "hidden" not in v.d_config.params  # as before


@pytest.mark.parametrize("extra", [{}, {"labelled_fraction": 0.1}])
def test_infogan_evaluation_reports_q_on_the_held_out_real_digits(mnist, tmp_path: Path, extra: dict) -> None:
    import numpy as np
    from gan_training.classifier import classify, load_classifier
    from gan_training.data import labelled_subset, stratified_split

    cfg, v = build_variant(tiny_config("infogan", tmp_path, **extra), torch.device("cpu"))
    v.setup(mnist)
    v.train_step(mnist.images[:16], mnist.labels[:16])
    model = load_classifier(device="cpu")
    result = v.evaluate(lambda images: classify(images, model))
    _, held = stratified_split(mnist.labels)  # the classifier's 1,000 held-out digits
    if cfg.labelled_fraction:  # not the digits whose labels Q was given
        held = held[~np.isin(held.numpy(), labelled_subset(mnist.labels, cfg.labelled_fraction, cfg.seed).numpy())]
    assert result["q_held_out_size"] == len(held) and (len(held) == 1000) == (not cfg.labelled_fraction)
    v.D.eval()
    with torch.no_grad():
        category = v.D(mnist.images[held]).cat_logits.argmax(1).numpy()
    digit = np.asarray(result["category_to_digit"])[category]
    assert result["q_held_out_accuracy"] == pytest.approx((digit == mnist.labels[held].numpy()).mean())
    assert "matched_accuracy" in result


def test_upsampling_is_refused_for_an_mlp_generator(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gan: --g-resize upsample.*MLP"):
        build_variant(tiny_config("gan", tmp_path, g_resize="upsample"), torch.device("cpu"))
    _, v = build_variant(tiny_config("dcgan", tmp_path, g_resize="upsample"), torch.device("cpu"))
    assert isinstance(v.G.net.grow, torch.nn.Upsample)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in v.G.modules())
