"""In-process backend compute for each bundled generator.

    .venv/bin/python bench/backends.py --models models --rounds 5

For batch 1, 64 and 256 it times, interleaved round by round (A B C D A B C
D ...): eager PyTorch (the torch.export program's module, `model.pt2`),
TorchScript (`model.ts`), ONNX Runtime as the server configures it, and ONNX
Runtime tuned (threads = cores, spinning allowed, sequential execution).
It reports images/s (median and min–max over rounds) and the achieved
GFLOP/s against the machine's FP32 peak. FLOPs are counted from the ONNX
graph (2 per multiply-add of Conv, ConvTranspose, Gemm and MatMul; the rest
is negligible here).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper, shape_inference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_contract.manifest import load_manifest  # noqa: E402
from gan_contract.request import SampleSpec  # noqa: E402
from gan_server.sampling import LoadedModel  # noqa: E402

BATCHES = (1, 64, 256)


def onnx_flops_per_image(path: Path) -> float:
    """Multiply-adds × 2 of the heavy ops at batch 1, from shape inference."""
    model = onnx.load(str(path))
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and (dims[0].dim_param or dims[0].dim_value in (0, -1)):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    flops = 0.0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(node.input[1])
            out = shapes.get(node.output[0])
            if not w or not out:
                continue
            # Conv: out elems × (Cin/g × kh × kw); ConvTranspose: in elems × (Cout/g × kh × kw)
            if node.op_type == "Conv":
                flops += 2 * np.prod(out[1:]) * np.prod(w[1:])
            else:
                inp = shapes.get(node.input[0])
                if inp:
                    flops += 2 * np.prod(inp[1:]) * np.prod(w[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
            if a and b:
                k = a[-1]
                n = (
                    b[0]
                    if (node.op_type == "Gemm" and any(at.name == "transB" and at.i for at in node.attribute))
                    else b[-1]
                )
                flops += 2 * np.prod(a[:-1]) * k * n
    return float(flops)


def peak_gflops() -> tuple[float, str]:
    """FP32 peak: cores × GHz × FLOPs/cycle (FMA: 2 × vector width × 2 units)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    ghz = (max(mhz) / 1000) if mhz else 2.0
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    per_cycle = 2 * lanes * 2  # FMA counts 2, two FMA ports
    cores = os.cpu_count() or 1
    return cores * ghz * per_cycle, f"{cores} cores × {ghz:.2f} GHz × {per_cycle} FLOP/cycle"


def rate(run, batch: int, seconds: float) -> float:
    for _ in range(5):  # TorchScript's profiling executor optimises after a few calls
        run()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run()
        n += batch
    return n / (time.perf_counter() - t0)


def runners(version_dir: Path, batch: int) -> dict[str, callable]:
    manifest = load_manifest(version_dir)
    from gan_server.backends import OnnxBackend

    served = LoadedModel(manifest, OnnxBackend(version_dir / manifest.files["onnx"].path), version_dir)
    plan = served.plan(SampleSpec(count=batch, seed=1))
    feeds, _ = served.feeds(plan, 0, batch)
    torch_args = [torch.from_numpy(feeds[t.name]) for t in manifest.inputs]

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    tuned = ort.InferenceSession(
        str(version_dir / manifest.files["onnx"].path), opts, providers=["CPUExecutionProvider"]
    )

    out: dict[str, callable] = {}
    if "torch_export" in manifest.files:
        program = torch.export.load(str(version_dir / manifest.files["torch_export"].path)).module()

        def eager():
            with torch.inference_mode():
                program(*torch_args)

        out["eager PyTorch (torch.export)"] = eager
    if "torchscript" in manifest.files:
        scripted = torch.jit.load(str(version_dir / manifest.files["torchscript"].path)).eval()

        def ts():
            with torch.inference_mode():
                scripted(*torch_args)

        out["TorchScript"] = ts
    out["ONNX Runtime (as served)"] = lambda: served.backend.run(feeds)
    out["ONNX Runtime (tuned)"] = lambda: tuned.run(None, feeds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--only", nargs="*", default=None, help="model names (default: all)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    peak, peak_how = peak_gflops()
    print(f"### Backend compute, in process — {date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {peak_how} ≈ {peak:.0f} GFLOP/s FP32 peak; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}. Command: `python bench/backends.py --rounds {args.rounds} "
        f"--seconds {args.seconds}`. Images/s, median (min–max) over {args.rounds} interleaved rounds.\n"
    )
    print("| model | MFLOP/image | batch | backend | images/s | GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|")
    dirs = sorted(p.parent for p in args.models.glob("*/*/manifest.json"))
    for version_dir in dirs:
        name = version_dir.parent.name
        if args.only and name not in args.only:
            continue
        manifest = load_manifest(version_dir)
        flops = onnx_flops_per_image(version_dir / manifest.files["onnx"].path)
        for batch in BATCHES:
            runs = runners(version_dir, batch)
            results: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(args.rounds):
                for label, fn in runs.items():
                    results[label].append(rate(fn, batch, args.seconds))
            for label, xs in results.items():
                med = statistics.median(xs)
                gfs = med * flops / 1e9
                print(
                    f"| {name} | {flops / 1e6:.1f} | {batch} | {label} | {med:,.0f} ({min(xs):,.0f}–{max(xs):,.0f}) "
                    f"| {gfs:.1f} | {100 * gfs / peak:.1f} |"
                )


if __name__ == "__main__":
    main()
