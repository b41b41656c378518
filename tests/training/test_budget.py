"""Training for a number of G updates (--g-steps) and WGAN's critic warm-up
(100 critic steps for the first 25 G updates and every 500th, as in
Arjovsky et al.'s reference code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gan_contract.manifest import load_manifest
from gan_training import trainer
from gan_training.export import export_run
from gan_training.trainer import build_variant, fit, load_checkpoint
from gan_training.variants import get_variant

from .conftest import tiny_config


def _hooked(monkeypatch) -> dict[str, list[str]]:
    """Record, in order, every G ("g") and D ("d") optimiser step of the
    variant that the next fit() builds (torch's optimizer step hooks)."""
    seen: dict[str, list[str]] = {"order": []}
    build = trainer.build_variant

    def build_and_hook(cfg, device):
        cfg, variant = build(cfg, device)
        variant.opt_g.register_step_post_hook(lambda *_: seen["order"].append("g"))
        variant.opt_d.register_step_post_hook(lambda *_: seen["order"].append("d"))
        return cfg, variant

    monkeypatch.setattr(trainer, "build_variant", build_and_hook)
    return seen


def _critic_runs(order: list[str]) -> list[int]:
    """D steps before each G step."""
    runs, count = [], 0
    for what in order:
        if what == "d":
            count += 1
        else:
            runs.append(count)
            count = 0
    return runs


def test_g_steps_budget_counts_g_updates_across_epochs(tmp_path: Path, monkeypatch) -> None:
    # 4 D steps per epoch against k = 3: G updates straddle epoch ends, and
    # the budget (7 G updates = 21 critic batches) ends mid-epoch, overriding epochs.
    seen = _hooked(monkeypatch)
    cfg = tiny_config("gan", tmp_path / "run", dataset="ring8", d_steps=3, g_steps=7, epochs=1, steps_per_epoch=4)
    run = fit(cfg, progress=False)
    assert seen["order"].count("g") == 7 and seen["order"].count("d") == 21
    assert _critic_runs(seen["order"]) == [3] * 7 and seen["order"][-1] == "g"
    ckpt = load_checkpoint(run)
    assert ckpt["g_updates"] == 7 and ckpt["state"]["g_updates"] == 7 and ckpt["state"]["step_count"] == 21
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5, 6]  # 21 steps: five full epochs of 4 and one of 1
    assert [r["g_updates"] for r in lines] == [1, 2, 4, 5, 6, 7]
    assert lines[-1]["steps"] == 21 and "eval" in lines[-1]  # the last epoch is judged
    manifest = load_manifest(export_run(run, repo=tmp_path / "models", name="budget", torch_export=False))
    assert manifest.training["g_updates"] == 7 and manifest.training["d_updates"] == 21
    assert manifest.training["g_steps"] == 7 and manifest.training["epochs"] == 6


def test_g_steps_resume_continues_to_the_budget(tmp_path: Path) -> None:
    # 2 G updates per epoch: the first budget ends with epoch 1, where a
    # checkpoint is saved (a budget that ends mid-epoch resumes with the next epoch).
    extra = dict(dataset="ring8", d_steps=2, steps_per_epoch=4)
    fit(tiny_config("gan", tmp_path / "straight", g_steps=5, **extra), progress=False)
    fit(tiny_config("gan", tmp_path / "split", g_steps=2, **extra), progress=False)
    fit(tiny_config("gan", tmp_path / "split", g_steps=5, **extra), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a["g_updates"] == b["g_updates"] == 5
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a["state"][net][k], b["state"][net][k]) for k in a["state"][net])


def test_critic_warmup_schedule_follows_the_reference_code() -> None:
    """main.py of martinarjovsky/WassersteinGAN: Diters = 100 if gen_iterations
    < 25 or gen_iterations % 500 == 0, else n_critic."""
    wgan = get_variant("wgan")
    schedule = [wgan.warmup_critic_steps(g, 5) for g in range(1002)]
    assert schedule[:25] == [100] * 25 and schedule[25:500] == [5] * 475
    assert schedule[500] == 100 and schedule[501:1000] == [5] * 499 and schedule[1000] == 100


def test_critic_warmup_is_on_for_wgan_and_off_for_wgan_gp(tmp_path: Path) -> None:
    cfg_w, _ = build_variant(tiny_config("wgan", tmp_path), torch.device("cpu"))
    cfg_gp, _ = build_variant(tiny_config("wgan-gp", tmp_path), torch.device("cpu"))
    assert cfg_w.critic_warmup is True and cfg_gp.critic_warmup is False
    cfg_gp, _ = build_variant(tiny_config("wgan-gp", tmp_path, critic_warmup=True), torch.device("cpu"))
    assert cfg_gp.critic_warmup is True
    with pytest.raises(ValueError, match="dcgan.*--critic-warmup"):
        build_variant(tiny_config("dcgan", tmp_path, critic_warmup=True), torch.device("cpu"))


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_critic_warmup_takes_100_critic_steps_before_the_first_g_updates(
    tmp_path: Path, monkeypatch, name: str
) -> None:
    seen = _hooked(monkeypatch)
    cfg = tiny_config(name, tmp_path / "run", dataset="ring8", g_steps=2, critic_warmup=True, steps_per_epoch=64)
    fit(cfg, progress=False)
    assert _critic_runs(seen["order"]) == [100, 100]


def test_critic_warmup_with_small_constants(tmp_path: Path, monkeypatch) -> None:
    """The same schedule with its constants made small: 4 critic steps before
    G updates 1..2 and before every 5th, else n_critic = 5 ... here d_steps 1."""
    wgan = get_variant("wgan")
    monkeypatch.setattr(wgan, "WARMUP_CRITIC_STEPS", 4)
    monkeypatch.setattr(wgan, "WARMUP_G_UPDATES", 2)
    monkeypatch.setattr(wgan, "WARMUP_EVERY", 5)
    seen = _hooked(monkeypatch)
    fit(tiny_config("wgan", tmp_path / "run", dataset="ring8", d_steps=1, g_steps=11), progress=False)
    assert _critic_runs(seen["order"]) == [4, 4, 1, 1, 1, 4, 1, 1, 1, 1, 4]
