"""Latent-code draws: the per-image numpy scheme against the vectorised one.

    taskset -c 0 .venv/bin/python bench/latents.py --rounds 7

For 4096 codes of 100-d z, and InfoGAN-like codes (62-d z, 10 categories, 2
continuous), it times ``latents.draw_codes`` under "philox4x64-per-image"
(one numpy Generator per image), ``counter_rng.draw_codes_v2``
("philox4x32-vectorised", numpy) and ``counter_rng_torch.draw_codes_torch``
(torch CPU with ``--threads`` threads, and CUDA when present), interleaved
round by round, and prints the median and minimum of the rounds in ms. It
then splits the numpy time into the Philox rounds and the Box-Muller step.
numpy runs on one core; pin the process (taskset) for steadier numbers.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

from gan_contract import counter_rng  # noqa: E402
from gan_contract.latents import draw_codes  # noqa: E402

try:
    import torch
    from gan_contract import counter_rng_torch
except ImportError:
    torch = counter_rng_torch = None

CASES = {
    "z 100": dict(dim=100),
    "infogan 62+10+2": dict(dim=62, num_categories=10, num_continuous=2),
}


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:8.2f} ({min(samples) * 1e3:7.2f})"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def runners(count: int, case: dict) -> dict[str, callable]:
    run = {
        "old numpy": lambda: draw_codes(1, 0, count, **case),
        "new numpy": lambda: counter_rng.draw_codes_v2(1, 0, count, **case),
    }
    if torch is not None:
        run["new torch cpu"] = lambda: counter_rng_torch.draw_codes_torch(1, 0, count, **case)
        if torch.cuda.is_available():

            def cuda() -> None:
                counter_rng_torch.draw_codes_torch(1, 0, count, **case, device="cuda")
                torch.cuda.synchronize()

            run["new torch cuda"] = cuda
    return run


def stages(count: int, dim: int, rounds: int) -> tuple[float, float]:
    """Minimum seconds of the Philox rounds and of Box-Muller, summed over
    the chunks of one numpy draw of ``count`` x ``dim``."""
    j, tag = counter_rng.block_layout(dim, 0, 0)
    bz = j.size
    rows = max(1, min(count, counter_rng.CHUNK_BLOCKS // bz))
    ws = counter_rng._workspace(bz)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        spent = [0.0, 0.0]
        for first in range(0, count, rows):
            st = ws.state(min(rows, count - first), bz)
            spent[0] += _timed(lambda st=st, first=first: counter_rng._philox_start(st, first, j, tag, (1, 0)))
            spent[0] += _timed(lambda st=st: counter_rng._philox_inplace(st, (1, 0), skip=1))
            sti = st.view(np.int64)
            spent[1] += _timed(lambda sti=sti: ws.normals(sti[0::2], sti[1::2]))
        best = [min(b, s) for b, s in zip(best, spent)]
    return best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)

    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}", end="")
    print(f", torch {torch.__version__} ({args.threads} thread(s))" if torch is not None else ", no torch")
    print(f"# {args.count} codes; ms: median (min) of {args.rounds} rounds")
    for name, case in CASES.items():
        run = runners(args.count, case)
        for fn in run.values():  # warm up: imports, workspaces, CUDA context
            fn()
        samples: dict[str, list[float]] = {k: [] for k in run}
        for _ in range(args.rounds):
            for k, fn in run.items():
                samples[k].append(_timed(fn))
        old = statistics.median(samples["old numpy"])
        print(f"\n{name}")
        print(f"  {'':16} {'ms':>18} {'x old':>7}")
        for k, s in samples.items():
            print(f"  {k:16} {_ms(s)} {old / statistics.median(s):7.1f}")

    philox, box_muller = stages(args.count, 100, args.rounds)
    print(f"\nnew numpy, z 100, by stage (min ms): Philox4x32-10 {philox * 1e3:.2f}, Box-Muller {box_muller * 1e3:.2f}")


if __name__ == "__main__":
    main()
