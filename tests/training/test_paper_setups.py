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
    with pytest.raises(ValueError, match="dcgan.*--d-dropout"):
        build_variant(tiny_config("dcgan", tmp_path, d_dropout=0.5), torch.device("cpu"))
