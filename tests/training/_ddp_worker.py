"""Run under torchrun by test_ddp.py: check that the replica check can fail,
then train through the CLI exactly as ``torchrun -m gan_training.cli fit``.

    torchrun --standalone --nproc-per-node 2 tests/training/_ddp_worker.py REPORT_DIR fit --variant ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from gan_training.cli import main
from gan_training.ddp import DistContext, params_in_sync


class _Replica:
    ddp_modules = ("G",)

    def __init__(self, rank: int, differ: bool) -> None:
        torch.manual_seed(0)
        self.G = torch.nn.Linear(4, 3)
        if differ and rank == 1:
            with torch.no_grad():
                self.G.weight[0, 0] += 1e-3


if __name__ == "__main__":
    report_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    dist.init_process_group("gloo")  # the trainer reuses this group and tears it down
    rank, world = dist.get_rank(), dist.get_world_size()
    ctx = DistContext(rank=rank, world_size=world, backend="gloo")
    checks = {
        "same": params_in_sync(_Replica(rank, differ=False), ctx),
        "different": params_in_sync(_Replica(rank, differ=True), ctx),
    }
    (report_dir / f"rank{rank}.json").write_text(json.dumps({"world_size": world, **checks}))
    main(argv, standalone_mode=False)
