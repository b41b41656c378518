"""PacGAN (Lin, Khetan, Fanti & Oh, NeurIPS 2018): --pack m makes D judge
m samples at once, concatenated along the channels (conv D) or the features
(MLP D); real and fake packs are made of independent samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gan_contract.manifest import load_manifest
from gan_training.data import load_dataset
from gan_training.export import export_run
from gan_training.trainer import build_variant, fit
from gan_training.variants.base import pack_samples

from .conftest import tiny_config


@pytest.fixture(scope="module")
def data():
    return {"mnist": load_dataset("mnist"), "ring8": load_dataset("ring8")}


def _first_layer(net: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


@pytest.mark.parametrize(
    "name, dataset, attr, single",
    [("dcgan", "mnist", "in_channels", 1), ("gan", "mnist", "in_features", 784), ("gan", "ring8", "in_features", 2)],
)
def test_pack_multiplies_what_the_first_layer_of_d_takes(tmp_path: Path, name, dataset, attr, single) -> None:
    _, one = build_variant(tiny_config(name, tmp_path, dataset=dataset), torch.device("cpu"))
    _, two = build_variant(tiny_config(name, tmp_path, dataset=dataset, pack=2), torch.device("cpu"))
    assert getattr(_first_layer(one.D), attr) == single and getattr(_first_layer(two.D), attr) == 2 * single
    # pack=1: the net and its checkpoint config exactly as without packing
    _, default = build_variant(tiny_config(name, tmp_path, dataset=dataset, pack=1), torch.device("cpu"))
    assert default.d_config == one.d_config
    assert {k: v.shape for k, v in default.D.state_dict().items()} == {
        k: v.shape for k, v in one.D.state_dict().items()
    }


def test_packs_are_consecutive_samples_side_by_side() -> None:
    x = torch.arange(4 * 3, dtype=torch.float32).view(4, 1, 3, 1)  # four 3-D points
    packed = pack_samples(x, 2)
    assert packed.shape == (2, 2, 3, 1)
    assert torch.equal(packed[0, 0], x[0, 0]) and torch.equal(packed[0, 1], x[1, 0])
    assert torch.equal(packed[1, 0], x[2, 0]) and torch.equal(packed[1, 1], x[3, 0])
    assert pack_samples(x, 1) is x


@pytest.mark.parametrize(
    "name, dataset",
    [
        ("dcgan", "mnist"),
        ("gan", "mnist"),
        ("gan", "ring8"),
        ("wgan-gp", "ring8"),
        ("wgan", "mnist"),
        ("sngan", "mnist"),
    ]
    + [("lsgan", "ring8"), ("fgan", "ring8")],
)
def test_a_packed_training_step(data, tmp_path: Path, name: str, dataset: str) -> None:
    torch.manual_seed(0)
    extra = {"critic_warmup": False, "d_steps": 1} if name in ("wgan", "wgan-gp") else {}
    _, v = build_variant(tiny_config(name, tmp_path, dataset=dataset, pack=2, **extra), torch.device("cpu"))
    seen: list[tuple[int, ...]] = []
    v.D.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    g0, d0 = [p.detach().clone() for p in v.G.parameters()], [p.detach().clone() for p in v.D.parameters()]
    ds = data[dataset]
    logged = v.train_step(ds.images[:16], ds.labels[:16])
    assert all(np.isfinite(x) for x in logged.values()) and "loss_g" in logged
    assert seen and all(shape[0] == 8 and shape[1] == 2 for shape in seen)  # 16 samples -> 8 packs of 2
    assert any(not torch.equal(a, b) for a, b in zip(g0, v.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, v.D.parameters()))
    assert v.discriminator_probability(ds.images[:4]) is None  # D judges packs, not points


def test_a_batch_that_is_not_whole_packs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--batch-size 15 is not a multiple of --pack 2"):
        build_variant(tiny_config("gan", tmp_path, dataset="ring8", batch_size=15, pack=2), torch.device("cpu"))
    build_variant(tiny_config("gan", tmp_path, dataset="ring8", batch_size=15, pack=3), torch.device("cpu"))


@pytest.mark.parametrize("name", ["cgan", "infogan", "bigan", "vaegan", "ebgan"])
def test_variants_whose_d_judges_single_samples_refuse_to_pack(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: --pack 2 "):
        build_variant(tiny_config(name, tmp_path, pack=2), torch.device("cpu"))
    build_variant(tiny_config(name, tmp_path, pack=1), torch.device("cpu"))


def test_a_packed_run_trains_and_exports(tmp_path: Path) -> None:
    run = fit(tiny_config("gan", tmp_path / "run", dataset="ring8", pack=4, epochs=1), progress=False)
    manifest = load_manifest(export_run(run, repo=tmp_path / "models", name="pac", torch_export=False))
    assert manifest.training["pack"] == 4 and manifest.output.shape == (-1, 1, 2, 1)  # G is unchanged
