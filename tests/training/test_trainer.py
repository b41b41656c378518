"""The shared loop: run artefacts, weights_only checkpoints, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gan_training.trainer import CHECKPOINT_NAME, fit, load_checkpoint
from PIL import Image

from .conftest import tiny_config


def test_fit_writes_checkpoint_grids_and_metrics(tmp_path: Path) -> None:
    run = fit(tiny_config("cgan", tmp_path / "run"), progress=False)
    ckpt = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["variant"] == "cgan"
    assert ckpt["generator_config"]["conditioning"] == "class"
    assert ckpt["train_config"]["lr_g"] == 2e-4  # variant default resolved and recorded
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert all(set(r["losses"]) == {"loss_d", "loss_g"} for r in lines)
    # eval_every=0 still judges the last epoch (export needs it).
    assert "eval" not in lines[0] and set(lines[1]["eval"]["per_digit_accuracy"]) == {str(d) for d in range(10)}
    for epoch in (1, 2):
        grid = Image.open(run / "samples" / f"epoch_{epoch:03d}.png")
        assert grid.size[0] > 280 and grid.size[1] > 280  # 10 x 10 digits of 28 px


def _state(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run)["state"]
    return {
        **state["generator"],
        **{f"D.{k}": v for k, v in state["discriminator"].items()},
        **{f"ema.{k}": v for k, v in state.get("generator_ema", {}).items()},
    }


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    # The variant with the most state and randomness: labelled batches,
    # augmentation, a weight average.
    extra = {"labelled_fraction": 0.05, "g_ema": 0.9, "q_fake_cat_weight": 0.0}
    fit(tiny_config("infogan", tmp_path / "straight", **extra), progress=False)
    fit(tiny_config("infogan", tmp_path / "split", epochs=1, **extra), progress=False)
    fit(tiny_config("infogan", tmp_path / "split", epochs=2, **extra), resume=True, progress=False)
    straight, split = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert any(k.startswith("ema.") for k in straight)
    assert straight.keys() == split.keys()
    assert all(torch.equal(straight[k], split[k]) for k in straight)
    assert len((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) == 2

    fit(tiny_config("infogan", tmp_path / "other-seed", seed=7, **extra), progress=False)
    other = _state(tmp_path / "other-seed")
    assert not all(torch.equal(straight[k], other[k]) for k in straight)


def test_learning_rate_decay_schedule_reaches_the_optimisers(tmp_path: Path) -> None:
    from gan_training.trainer import build_variant, lr_scale

    cfg = tiny_config("infogan", tmp_path, epochs=10, lr_decay_start=0.6)
    assert [lr_scale(cfg, e) for e in range(1, 11)] == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert {lr_scale(tiny_config("dcgan", tmp_path), e) for e in (1, 2)} == {1.0}
    cfg, variant = build_variant(cfg, torch.device("cpu"))
    variant.set_lr_scale(0.5)
    assert variant.opt_g.param_groups[0]["lr"] == cfg.lr_g / 2
    assert [g["lr"] for g in variant.opt_d.param_groups] == [cfg.lr_d / 2, cfg.lr_q / 2]
    variant.set_lr_scale(1.0)  # scales the initial rate, not the current one
    assert variant.opt_g.param_groups[0]["lr"] == cfg.lr_g


@pytest.mark.parametrize("name", ["vaegan", "bigan", "infogan", "wgan"])
def test_learning_rate_decay_reaches_every_optimiser(tmp_path: Path, name: str) -> None:
    from gan_training.trainer import build_variant

    cfg, variant = build_variant(tiny_config(name, tmp_path), torch.device("cpu"))
    initial = {k: [g["lr"] for g in opt.param_groups] for k, opt in variant.optimizers.items()}
    variant.set_lr_scale(0.25)
    for key, opt in variant.optimizers.items():  # VAE-GAN's encoder too (opt_e)
        assert [g["lr"] for g in opt.param_groups] == [lr * 0.25 for lr in initial[key]], key


def test_refuses_to_overwrite_and_to_resume_nothing(tmp_path: Path) -> None:
    cfg = tiny_config("dcgan", tmp_path / "run", epochs=1)
    fit(cfg, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        fit(cfg, progress=False)
    with pytest.raises(FileNotFoundError):
        fit(tiny_config("dcgan", tmp_path / "empty"), resume=True, progress=False)
    with pytest.raises(ValueError, match="dcgan"):
        fit(tiny_config("cgan", tmp_path / "run"), resume=True, progress=False)
