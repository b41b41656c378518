"""Data-parallel training over several processes (GPUs, hosts) with torchrun.

    torchrun --standalone --nproc-per-node 4 -m gan_training.cli fit --variant dcgan --out runs/ddp
    torchrun --nnodes 2 --node-rank R --rdzv-endpoint HOST:29500 --nproc-per-node 8 -m gan_training.cli fit ...

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE > 1 the
trainer (trainer.fit) then

* joins the process group (NCCL on CUDA, gloo on CPU); each process uses the
  GPU of its LOCAL_RANK;
* wraps the variant's nets (``variant.ddp_modules``: G and D, plus E for
  BiGAN/VAE-GAN) in DistributedDataParallel, so gradients are averaged
  across processes at every backward and the replicas stay identical;
* splits every epoch with a DistributedSampler (seeded by --seed and the
  epoch, drop_last): each process sees 1/WORLD_SIZE of the data, with
  --batch-size per process (global batch = WORLD_SIZE x --batch-size);
* draws its noise from its own stream (seed + 7919 * rank);
* logs, draws sample grids, evaluates and writes checkpoints on rank 0 only
  (through the unwrapped nets), and reports epoch losses averaged over all
  processes;
* checks at every epoch that the replicas' weights agree, recorded in
  metrics.jsonl as ``ddp.params_in_sync``.

A single process (no torchrun) takes none of these paths: its results are
bit-identical to the single-process trainer's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

RANK_SEED_STRIDE = 7919


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def to_dict(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group if launched by torchrun with WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(), device
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend), device


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class _DDP(DistributedDataParallel):
    """DistributedDataParallel that still answers the wrapped net's own
    attributes (e.g. InfoGAN's ``D.q_head``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    # The net's own keys (no "module." prefix): checkpoints, exports and
    # weight averages (Variant.after_step) see the same state as without DDP.
    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.load_state_dict(*args, **kwargs)


def wrap(variant: Any, ctx: DistContext, device: torch.device, seed: int) -> None:
    """Wrap ``variant``'s trainable nets in DDP and give each rank its own noise."""
    if not ctx.distributed:
        return
    for name in getattr(variant, "ddp_modules", ("G", "D")):
        module = getattr(variant, name)
        if isinstance(module, DistributedDataParallel) or not any(p.requires_grad for p in module.parameters()):
            continue
        setattr(
            variant,
            name,
            _DDP(
                module,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=getattr(variant, "ddp_find_unused", False),
            ),
        )
    if ctx.rank:
        torch.manual_seed(seed + RANK_SEED_STRIDE * ctx.rank)


def epoch_indices(n: int, epoch: int, seed: int, ctx: DistContext) -> torch.Tensor:
    """This rank's shuffled share of range(n) for ``epoch`` (DistributedSampler)."""
    sampler = DistributedSampler(
        range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(iter(sampler)), dtype=torch.int64)


def per_rank(n: int, ctx: DistContext) -> int:
    """How many examples each rank gets per epoch (DistributedSampler, drop_last)."""
    return n // ctx.world_size if ctx.distributed else n


def mean_over_ranks(sums: dict[str, float], ctx: DistContext) -> dict[str, float]:
    if not ctx.distributed:
        return sums
    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}


def params_in_sync(variant: Any, ctx: DistContext, atol: float = 0.0) -> bool:
    """Whether every rank holds the same weights (a collective: all ranks call it)."""
    nets = [getattr(variant, name) for name in getattr(variant, "ddp_modules", ("G", "D"))]
    flat = torch.cat([p.detach().double().flatten().cpu() for net in nets for p in net.parameters()])
    summary = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(len(flat), dtype=torch.float64)).sum()])
    if ctx.backend == "nccl":
        summary = summary.to(torch.device("cuda", torch.cuda.current_device()))
    gathered = [torch.zeros_like(summary) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, summary)
    return all(torch.allclose(g, gathered[0], rtol=0, atol=atol) for g in gathered[1:])


def unwrap(variant: Any) -> dict[str, Any]:
    """Swap ``variant``'s DDP wrappers for their nets; returns what ``rewrap``
    puts back (nothing outside torchrun)."""
    saved = {}
    for name in getattr(variant, "ddp_modules", ("G", "D")):
        module = getattr(variant, name, None)
        if isinstance(module, DistributedDataParallel):
            saved[name] = module
            setattr(variant, name, module.module)
    return saved


def rewrap(variant: Any, saved: dict[str, Any]) -> None:
    for name, module in saved.items():
        setattr(variant, name, module)
