"""The torchscript backend's device path (codes, inputs, generator and uint8
pixels all on the backend's device) against the host path it replaces.

On CPU torch the device path gives the host path's bytes exactly: the same
TorchScript file on the same inputs (numpy codes for the per-image scheme;
for the vectorised scheme torch's codes, which equal numpy's here), the same
float32 pixel steps. Marked ``gpu`` (skipped without CUDA): CUDA against CPU
within docs/deploy.md's tolerance for different kernels, at most one uint8
level on at most 0.1 % of the pixels in fp32; latents and classes as numpy
draws them (classes exactly, latents within one float32 ulp).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gan_client import AsyncGanClient, GanClient
from gan_contract.images import to_uint8
from gan_contract.request import SampleSpec, model_inputs
from gan_server.backends import BackendError, TorchScriptBackend
from gan_server.repository import ModelRepository
from gan_server.sampling import LoadedModel

from .. import conftest
from ..conftest import BIN, start_server, stop_server

torch = pytest.importorskip("torch")

VECTORISED = "philox4x32-vectorised"
MODELS = ("dcgan", "cgan", "infogan")
NAMES = (*MODELS, *(f"{m}-v" for m in MODELS))
# docs/deploy.md: across numerical paths, one level on at most 0.1 % of the pixels
MAX_DIFFERENT_FRACTION = 0.001


@pytest.fixture(scope="module", autouse=True)
def gan_server_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``gan-server``, or where the tree is used uninstalled (bench/gpu.sh sets PYTHONPATH) a
    stand-in that runs ``python -m gan_server``, for conftest.start_server too."""
    if (BIN / "gan-server").exists():
        yield [str(BIN / "gan-server")]
        return
    shim = tmp_path_factory.mktemp("bin")
    (shim / "gan-server").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gan_server "$@"\n')
    (shim / "gan-server").chmod(0o755)
    saved, conftest.BIN = conftest.BIN, shim
    try:
        yield [str(shim / "gan-server")]
    finally:
        conftest.BIN = saved


@pytest.fixture(scope="module")
def repo_root(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dcgan, cgan, infogan and a copy of each under the vectorised scheme (``<name>-v``)."""
    root = tmp_path_factory.mktemp("device-models")
    for name in MODELS:
        shutil.copytree(bundled_models / name / "1", root / name / "1")
        dest = root / f"{name}-v" / "1"
        shutil.copytree(bundled_models / name / "1", dest)
        data = json.loads((dest / "manifest.json").read_text())
        data["latent_scheme"] = VECTORISED
        data["name"] = f"{name}-v"
        (dest / "manifest.json").write_text(json.dumps(data, indent=2))
    return root


def _load(root: Path, name: str, device: str = "cpu", precision: str = "fp32") -> LoadedModel:
    repo = ModelRepository(root, backend="torchscript", device=device, precision=precision)
    return repo.load_version(root / name / "1")


@pytest.fixture(scope="module")
def models(repo_root: Path) -> dict[str, LoadedModel]:
    return {name: _load(repo_root, name) for name in NAMES}


def _specs(name: str) -> list[SampleSpec]:
    base = name.removesuffix("-v")
    dim = {"dcgan": 100, "cgan": 100, "infogan": 62}[base]
    specs = [
        SampleSpec(count=5, seed=3, return_latents=True),
        SampleSpec(count=3, seed=2**64 - 1, first_index=2**64 - 4),
        SampleSpec(count=2, latents=np.linspace(-2, 2, 2 * dim, dtype=np.float32).reshape(2, dim)),
    ]
    if base != "dcgan":
        specs += [SampleSpec(count=4, seed=1, digit=7, return_latents=True), SampleSpec(count=2, seed=8, label="3")]
    if base == "infogan":
        specs += [
            SampleSpec(count=3, seed=9, category=2, continuous=(0.5, -1.0)),
            SampleSpec(count=2, seed=4, continuous=(0.25, 0.75), return_latents=True),
        ]
    return specs


def _chunks(model: LoadedModel) -> list[tuple]:
    plans = [model.plan(spec) for spec in _specs(model.name)]
    # several requests, one split in two, as the batcher stacks them
    return [(plans[0], 0, 2), *[(p, 0, p.spec.count) for p in plans[1:]], (plans[0], 2, 3)]


def _host_path(model: LoadedModel, chunks: list[tuple]) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
    """The torchscript host path as it was: numpy inputs, stacked, the graph, numpy pixels."""
    prepared = [model_inputs(model.manifest, plan, start, count) for plan, start, count in chunks]
    stacked = {name: np.concatenate([feeds[name] for feeds, _ in prepared]) for name in prepared[0][0]}
    images = to_uint8(model.backend.run(stacked), model.manifest.image.value_range)
    out, offset = [], 0
    for (plan, _, count), (feeds, classes) in zip(chunks, prepared):
        o = model.output(plan, feeds, classes, images[offset : offset + count])
        out.append((o.images, o.latents, o.classes))
        offset += count
    return out


@pytest.mark.parametrize("name", NAMES)
def test_device_path_on_cpu_is_the_host_path_byte_for_byte(models: dict[str, LoadedModel], name: str) -> None:
    model = models[name]
    chunks = _chunks(model)
    got = model.run_chunks(chunks)
    want = _host_path(model, chunks)
    assert len(got) == len(want)
    for (plan, _, _), out, (images, latents, classes) in zip(chunks, got, want):
        assert out.images.dtype == np.uint8 and out.images.shape == images.shape
        assert out.images.tobytes() == images.tobytes(), plan.spec
        assert out.classes.dtype == np.int32 and out.classes.tolist() == classes.tolist(), plan.spec
        if plan.spec.return_latents:
            assert out.latents.tobytes() == latents.tobytes()
        else:
            assert out.latents is None
    # a request alone gives the bytes it gives in a stack
    (plan, start, count) = chunks[-1]
    alone = model.generate(plan, start, count)
    assert alone.images.tobytes() == got[-1].images.tobytes()


def test_only_what_a_request_asked_for_comes_back(models: dict[str, LoadedModel]) -> None:
    infogan = models["infogan-v"]
    fixed = infogan.plan(SampleSpec(count=3, digit=2))
    drawn = infogan.plan(SampleSpec(count=2, return_latents=True))
    images, latents, classes = infogan.backend.sample(infogan.manifest, [(fixed, 0, 3)])
    assert images.shape == (3, 28, 28, 1) and latents == [None] and classes is None  # classes known on the host
    images, latents, classes = infogan.backend.sample(infogan.manifest, [(fixed, 0, 3), (drawn, 0, 2)])
    assert latents[0] is None and latents[1].shape == (2, 62) and classes.shape == (5,)
    assert classes[:3].tolist() == [2, 2, 2]
    dcgan = models["dcgan"]
    _, latents, classes = dcgan.backend.sample(dcgan.manifest, [(dcgan.plan(SampleSpec(count=4)), 0, 4)])
    assert latents == [None] and classes is None
    assert dcgan.generate(dcgan.plan(SampleSpec(count=4)), 0, 4).classes.tolist() == [-1] * 4


# Lower precisions against fp32, (most levels apart, mean levels apart). Measured on
# CPU torch 2.13 (512 images of dcgan, cgan, infogan): fp16 1 level on 1-2 % of the
# pixels (mean 0.018), bf16 up to 7 levels on 9-13 % (mean 0.14); with room for
# other kernels. TF32 (CUDA only) keeps fp16's 10-bit mantissa for the products.
CLOSE = {"tf32": (2, 0.05), "fp16": (2, 0.05), "bf16": (12, 0.3)}


@pytest.mark.parametrize("precision", ["tf32", "fp16", "bf16"])
def test_other_precisions_run_close_to_fp32(repo_root: Path, models: dict[str, LoadedModel], precision: str) -> None:
    model = _load(repo_root, "cgan-v", precision=precision)
    plan = model.plan(SampleSpec(count=32, seed=5))
    got = model.generate(plan, 0, 32).images.astype(int)
    want = models["cgan-v"].generate(plan, 0, 32).images.astype(int)
    diff = np.abs(got - want)
    if precision == "tf32":  # TF32 is a CUDA setting: on the CPU this is fp32
        assert diff.max() == 0
    else:
        most, mean = CLOSE[precision]
        assert diff.max() <= most and diff.mean() < mean, (precision, diff.max(), diff.mean())


def _conv_tf32_flags(backend: TorchScriptBackend) -> list[bool]:
    flags = []
    for sub in backend.module.modules():
        try:
            graph = sub.graph
        except (AttributeError, RuntimeError):
            continue
        flags += [list(n.inputs())[12].toIValue() for n in graph.findAllNodes("aten::_convolution")]
    return flags


@pytest.mark.parametrize("name", MODELS)
def test_traced_convolutions_follow_the_precision_not_the_tracer(repo_root: Path, name: str) -> None:
    """The traced graphs say allow_tf32=True; fp32 must not run in TF32 on CUDA."""
    raw = torch.jit.load(str(repo_root / name / "1" / "model.ts"))
    traced = [
        list(n.inputs())[12].toIValue() for s in raw.modules() for n in s.graph.findAllNodes("aten::_convolution")
    ]
    assert traced and all(traced)
    assert _conv_tf32_flags(_load(repo_root, name).backend) == [False] * len(traced)
    assert _conv_tf32_flags(_load(repo_root, name, precision="tf32").backend) == [True] * len(traced)


def test_precision_is_checked(repo_root: Path, gan_server_command: list[str]) -> None:
    with pytest.raises(BackendError, match="unknown precision 'fp8'"):
        TorchScriptBackend(repo_root / "dcgan" / "1" / "model.ts", ["z"], precision="fp8")
    with pytest.raises(ValueError, match="--precision fp16 needs --backend torchscript"):
        ModelRepository(repo_root, precision="fp16")
    out = subprocess.run(
        [*gan_server_command, "--models", str(repo_root), "--port", "0", "--precision", "fp16"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "--precision fp16 needs --backend torchscript" in out.stderr


def test_server_on_the_device_path_serves_the_host_paths_bytes(
    repo_root: Path, models: dict[str, LoadedModel], tmp_path: Path
) -> None:
    """Concurrent requests, batched by the server, each get their own images, latents and classes."""
    srv = start_server(repo_root, tmp_path / "server.log", "--backend", "torchscript", "--batch-delay-ms", "20")
    asks = [("infogan-v", dict(n=5, seed=s, return_latents=True)) for s in range(6)]
    asks += [("infogan-v", dict(n=3, seed=7, digit=4)), ("cgan-v", dict(n=4, seed=2)), ("dcgan", dict(n=2, seed=1))]

    async def many() -> list:
        async with AsyncGanClient(srv.address) as client:
            return await asyncio.gather(*(client.sample(name, **kw) for name, kw in asks))

    try:
        results = asyncio.run(many())
    finally:
        assert stop_server(srv) == 0
    for (name, kw), result in zip(asks, results):
        model = models[name]
        spec = SampleSpec(
            count=kw["n"], seed=kw["seed"], digit=kw.get("digit"), return_latents=kw.get("return_latents", False)
        )
        ((images, latents, classes),) = _host_path(model, [(model.plan(spec), 0, spec.count)])
        assert result.images.tobytes() == images.tobytes(), (name, kw)
        assert list(result.classes) == classes.tolist()
        if spec.return_latents:
            assert np.asarray(result.latents, np.float32).tobytes() == latents.tobytes()


# -- CUDA ----------------------------------------------------------------------------


def _assert_close_images(got: np.ndarray, want: np.ndarray, max_levels: int, max_fraction: float, what: str) -> None:
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert got.shape == want.shape, what
    assert diff.max(initial=0) <= max_levels, f"{what}: a pixel differs by {diff.max()} levels"
    changed = np.count_nonzero(diff) / diff.size
    assert changed <= max_fraction, f"{what}: {changed:.3%} of the pixels differ"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_path_agrees_with_cpu(repo_root: Path, models: dict[str, LoadedModel], name: str) -> None:
    cuda = _load(repo_root, name, device="cuda")
    chunks = _chunks(cuda)
    got = cuda.run_chunks(chunks)
    want = models[name].run_chunks(chunks)
    for (plan, _, _), g, w in zip(chunks, got, want):
        _assert_close_images(g.images, w.images, 1, MAX_DIFFERENT_FRACTION, f"{name} {plan.spec}")
        assert g.classes.tolist() == w.classes.tolist()
        if plan.spec.return_latents:
            np.testing.assert_array_max_ulp(g.latents, w.latents, maxulp=1)
        else:
            assert g.latents is None
    # large batches too (other kernels), and image i alone vs within the batch
    plan = cuda.plan(SampleSpec(count=4096, seed=11, return_latents=True))
    big = cuda.generate(plan, 0, 4096)
    ref = models[name].generate(plan, 0, 4096)
    _assert_close_images(big.images, ref.images, 1, MAX_DIFFERENT_FRACTION, f"{name} batch 4096")
    np.testing.assert_array_max_ulp(big.latents, ref.latents, maxulp=1)
    one = cuda.generate(plan, 100, 1)
    _assert_close_images(one.images, big.images[100:101], 1, MAX_DIFFERENT_FRACTION, f"{name} image 100 alone")


@pytest.mark.parametrize("precision", ["fp16", "bf16", "tf32"])
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_lower_precisions_stay_close(repo_root: Path, models: dict[str, LoadedModel], precision: str) -> None:
    cuda = _load(repo_root, "infogan-v", device="cuda", precision=precision)
    plan = cuda.plan(SampleSpec(count=512, seed=2))
    got = cuda.generate(plan, 0, 512).images.astype(int)
    want = models["infogan-v"].generate(plan, 0, 512).images.astype(int)
    diff = np.abs(got - want)
    most, mean = CLOSE[precision]
    assert diff.max() <= most and diff.mean() < mean, (precision, diff.max(), diff.mean())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_server_serves(repo_root: Path, models: dict[str, LoadedModel], tmp_path: Path) -> None:
    srv = start_server(
        repo_root, tmp_path / "server.log", "--backend", "torchscript", "--device", "cuda", "--max-batch", "1024"
    )
    try:
        with GanClient(srv.address) as client:
            got = client.sample("infogan-v", n=1000, seed=3, return_latents=True)
    finally:
        assert stop_server(srv) == 0
    plan = models["infogan-v"].plan(SampleSpec(count=1000, seed=3, return_latents=True))
    want = models["infogan-v"].generate(plan, 0, 1000)
    _assert_close_images(got.images, want.images, 1, MAX_DIFFERENT_FRACTION, "through gan-server")
    assert list(got.classes) == want.classes.tolist()
    np.testing.assert_array_max_ulp(np.asarray(got.latents, np.float32), want.latents, maxulp=1)
