"""The request rules on torch tensors agree with numpy: codes, graph inputs for
every conditioning kind, stacked chunks of several requests, and pixels.

CPU always; the same checks on CUDA are marked ``gpu``. Tolerances, from the
scheme's definition (gan_contract/counter_rng.py): integer words, categories,
continuous codes, one-hot and every override bit for bit; the normals within
one float32 ulp (only ``log`` may differ in its last float64 bit between
libraries). Pixels from the same floats: bit for bit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from gan_contract.counter_rng import draw_codes_v2
from gan_contract.images import to_uint8
from gan_contract.manifest import Manifest, load_manifest
from gan_contract.request import (
    SampleSpec,
    batch_inputs,
    draw,
    draw_many,
    inputs_from_codes,
    model_inputs,
    plan_request,
)

torch = pytest.importorskip("torch")

from gan_contract.counter_rng_torch import TorchCodes, draw_codes_torch, draw_rows_torch  # noqa: E402
from gan_contract.images import to_uint8_torch  # noqa: E402

VECTORISED = "philox4x32-vectorised"
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
    ),
]


@pytest.fixture(scope="module")
def manifests(bundled_models: Path) -> dict[str, Manifest]:
    out = {}
    for name in ("dcgan", "cgan", "infogan"):
        m = load_manifest(bundled_models / name / "1", verify_files=False)
        out[name] = m
        out[f"{name}-v"] = dataclasses.replace(m, latent_scheme=VECTORISED)
    return out


def _host(x) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


def _assert_feeds_agree(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), what
    for name in want:
        g, w = _host(got[name]), want[name]
        assert g.dtype == w.dtype and g.shape == w.shape, f"{what}: {name} {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if name == "z":
            np.testing.assert_array_max_ulp(g, w, maxulp=1)
        else:
            assert g.tobytes() == w.tobytes(), f"{what}: {name}"


# -- codes ------------------------------------------------------------------------

RUNS = [(5, 11, 9), (2**64 - 1, 2**64 - 3, 3), (0, 2**32 - 2, 5), (7, 0, 1)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dim", "k", "c"), [(62, 10, 2), (100, 0, 0), (7, 3, 5), (0, 4, 0)])
def test_rows_of_mixed_requests_are_their_own_draws(device: str, dim: int, k: int, c: int) -> None:
    seeds = np.concatenate([np.full(n, s, np.uint64) for s, _, n in RUNS])
    indices = np.concatenate([np.arange(n, dtype=np.uint64) + np.uint64(st) for _, st, n in RUNS])
    got = draw_rows_torch(seeds, indices, dim, k, c, (-1.5, 0.5), device=device)
    want = [draw_codes_v2(s, st, n, dim, k, c, (-1.5, 0.5)) for s, st, n in RUNS]
    assert got.z.device.type == device
    np.testing.assert_array_max_ulp(got.z.cpu().numpy(), np.concatenate([w.z for w in want]), maxulp=1)
    assert got.category.cpu().numpy().tobytes() == np.concatenate([w.category for w in want]).tobytes()
    assert got.continuous.cpu().numpy().tobytes() == np.concatenate([w.continuous for w in want]).tobytes()
    # a row is the row of a one-image draw
    single = draw_codes_torch(int(seeds[4]), int(indices[4]), 1, dim, k, c, (-1.5, 0.5), device=device)
    assert torch.equal(single.z[0], got.z[4]) and torch.equal(single.category[0], got.category[4])


def test_rows_refuse_mismatched_lengths_and_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        draw_rows_torch([1, 2], [0], 4)
    with pytest.raises(OverflowError):
        draw_rows_torch([2**64], [0], 4)
    assert draw_rows_torch([], [], 4).z.shape == (0, 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan", "dcgan-v", "cgan-v", "infogan-v"])
def test_draw_on_a_device_is_the_numpy_draw(manifests: dict[str, Manifest], device: str, name: str) -> None:
    m = manifests[name]
    got = draw_many(m, RUNS, device=device)
    assert isinstance(got, TorchCodes) and got.z.device.type == device
    want = draw_many(m, RUNS)
    parts = [draw(m, *run) for run in RUNS]
    np.testing.assert_array_equal(want.z, np.concatenate([p.z for p in parts]))
    _assert_feeds_agree(
        {"z": got.z, "category": got.category, "continuous": got.continuous},
        {"z": want.z, "category": want.category, "continuous": want.continuous},
        name,
    )
    one = draw(m, *RUNS[0], device=device)
    np.testing.assert_array_max_ulp(one.z.cpu().numpy(), parts[0].z, maxulp=1)


# -- graph inputs -------------------------------------------------------------------

SPECS = {
    "dcgan": [
        SampleSpec(count=6, seed=3),
        SampleSpec(count=2, seed=2**64 - 1, first_index=7),
        SampleSpec(count=3, latents=np.arange(300, dtype=np.float32).reshape(3, 100) / 300),
    ],
    "cgan": [SampleSpec(count=6, seed=3), SampleSpec(count=4, seed=3, digit=7), SampleSpec(count=3, label="2")],
    "infogan": [
        SampleSpec(count=6, seed=3),
        SampleSpec(count=4, seed=3, digit=7),
        SampleSpec(count=2, seed=5, category=2, continuous=(0.5, -1.0)),
        SampleSpec(count=3, seed=9, continuous=(0.25, 0.75)),
        SampleSpec(count=2, latents=np.full((2, 62), 0.5, np.float32), category=4),
    ],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan", "dcgan-v", "cgan-v", "infogan-v"])
def test_inputs_from_codes_agree_for_every_conditioning_and_override(
    manifests: dict[str, Manifest], device: str, name: str
) -> None:
    m = manifests[name]
    codes = draw(m, 4, 10, 5)
    tcodes = TorchCodes(*(torch.from_numpy(getattr(codes, f.name)).to(device) for f in dataclasses.fields(codes)))
    overrides = [
        {},
        {"classes": np.array([1, 0, 1, 0, 1])},
        {"z": np.ones((5, m.latent.dim), np.float32)},
    ]
    if m.conditioning.kind == "infogan":
        overrides += [{"continuous": (0.5, -0.25)}, {"classes": np.arange(5), "continuous": (1.0, 0.0)}]
    for kw in overrides:
        want_feeds, want_classes = inputs_from_codes(m, codes, **kw)
        got_feeds, got_classes = inputs_from_codes(m, tcodes, **kw)
        assert all(isinstance(v, torch.Tensor) and v.device.type == device for v in got_feeds.values())
        _assert_feeds_agree(got_feeds, want_feeds, f"{name} {sorted(kw)}")
        assert _host(got_classes).tobytes() == want_classes.tobytes()


@pytest.mark.parametrize("device", [None, *DEVICES])
@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan", "dcgan-v", "cgan-v", "infogan-v"])
def test_stacked_chunks_are_each_chunks_own_inputs(manifests: dict[str, Manifest], device, name: str) -> None:
    m = manifests[name]
    plans = [plan_request(m, spec) for spec in SPECS[name.removesuffix("-v")]]
    chunks = [(plans[0], 0, 4), (plans[1], 1, 1), (plans[0], 4, 2), *[(p, 0, p.spec.count) for p in plans[1:]]]
    parts = [model_inputs(m, plan, start, count) for plan, start, count in chunks]
    want = {k: np.concatenate([f[k] for f, _ in parts]) for k in parts[0][0]}
    want_classes = np.concatenate([c for _, c in parts])
    feeds, classes = batch_inputs(m, chunks, device=device)
    _assert_feeds_agree(feeds, want, name)
    assert _host(classes).tobytes() == want_classes.tobytes()
    # one chunk, and chunks that fix nothing (drawn together in one pass)
    plain = [(plans[0], 0, 3), (plans[0], 3, 3)]
    whole, _ = model_inputs(m, plans[0], 0, 6, device=device)
    stacked, _ = batch_inputs(m, plain, device=device)
    _assert_feeds_agree(stacked, {k: _host(v) for k, v in whole.items()}, name)


# -- pixels -----------------------------------------------------------------------

RANGES = [(-1.0, 1.0), (0.0, 1.0), (-0.5, 1.5), (0.0, 127.5), (-3.0, 2.0)]


def _pixel_cases(value_range: tuple[float, float]) -> list[np.ndarray]:
    low, high = value_range
    rng = np.random.default_rng(int(high * 10))
    scale = 255.0 / (high - low)
    cases = [rng.uniform(low - 0.3, high + 0.3, (16, 3, 9, 7)).astype(np.float32)]
    # values whose scaled float32 is (near) k + 0.5: ties to even, and their neighbours
    k = rng.integers(-2, 258, (16, 1, 8, 8))
    tie = ((k + 0.5) / scale + low).astype(np.float32)
    cases += [tie, np.nextafter(tie, np.float32(np.inf)), np.nextafter(tie, np.float32(-np.inf))]
    cases.append(np.array([np.inf, -np.inf, 0.0, -0.0, low, high], np.float32).reshape(1, 6, 1, 1))
    return cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("value_range", RANGES)
def test_to_uint8_torch_is_to_uint8(device: str, value_range: tuple[float, float]) -> None:
    ties = 0
    for x in _pixel_cases(value_range):
        low, high = value_range
        scaled = (x - np.float32(low)) * np.float32(255.0 / (high - low))
        ties += int(np.count_nonzero(scaled[np.isfinite(scaled)] % 1 == 0.5))
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            t = torch.from_numpy(x).to(device=device, dtype=dtype)
            got = to_uint8_torch(t, value_range)
            assert got.dtype == torch.uint8 and got.is_contiguous() and got.device.type == device
            want = to_uint8(t.float().cpu().numpy(), value_range)  # the same (rounded) floats
            assert got.cpu().numpy().tobytes() == want.tobytes(), (value_range, dtype)
    if value_range == (0.0, 127.5):  # an exact scale (2): the ties really are ties
        assert ties > 100
