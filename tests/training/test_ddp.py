"""DistributedDataParallel on CPU: two processes under torchrun with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gan_training.ddp import DistContext, epoch_indices, per_rank
from gan_training.trainer import load_checkpoint

WORKER = Path(__file__).with_name("_ddp_worker.py")


def test_each_rank_gets_a_disjoint_seeded_share_of_every_epoch() -> None:
    shares = [epoch_indices(100, 3, seed=5, ctx=DistContext(rank=r, world_size=2)) for r in (0, 1)]
    assert [len(s) for s in shares] == [50, 50] == [per_rank(100, DistContext(rank=r, world_size=2)) for r in (0, 1)]
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    assert torch.equal(shares[0], epoch_indices(100, 3, seed=5, ctx=DistContext(rank=0, world_size=2)))
    assert not torch.equal(shares[0], epoch_indices(100, 4, seed=5, ctx=DistContext(rank=0, world_size=2)))
    assert per_rank(101, DistContext(rank=0, world_size=2)) == 50  # drop_last: equal steps on every rank


@pytest.mark.timeout(180)
def test_two_process_torchrun_gloo_fit(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Loopback only: gloo would otherwise pick the interface the hostname resolves to.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(WORKER), str(tmp_path),
        "fit", "--variant", "wgan-gp", "--dataset", "mnist", "--limit", "256", "--epochs", "2",
        "--batch-size", "16", "--width", "8", "--device", "cpu", "--threads", "1", "--eval-every", "0",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("run saved in") == 1  # rank 0 alone reports

    # The replica check sees a 1e-3 difference and no difference alike.
    for rank in (0, 1):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report == {"world_size": 2, "same": True, "different": False}

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # written once, by rank 0
    for r in records:
        assert r["ddp"] == {"world_size": 2, "backend": "gloo", "params_in_sync": True}
    ckpt = load_checkpoint(out)  # torch.load(weights_only=True)
    assert ckpt["epoch"] == 2
    assert ckpt["steps_per_epoch"] == 256 // 2 // 16  # each rank trained on half the data
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (out / "losses.csv").read_text().count("\n") == 1 + 2 * 8
