"""The Triton model repository entry: config structure, graph agreement, client-side latents.

No Triton server runs here (none is installable in CI). The config is parsed
into tritonclient's own ``inference.ModelConfig`` protobuf message (so a
misspelt field or enum fails), and checked against the ONNX graph that Triton
would load. Then the graph is run with ONNX Runtime on exactly the inputs
README.txt tells a Triton client to build, and compared with gan-server's
images for the same seed.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from gan_contract.images import to_uint8
from gan_contract.latents import draw
from gan_contract.manifest import load_manifest
from gan_contract.request import SampleSpec
from gan_contract.request import draw as draw_request_codes
from gan_server.repository import ModelRepository
from gan_training.interop.triton import TritonExportError, write_triton_repo
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from .common import MODELS, latest
from .compare import assert_same_images

ONNX_TO_TRITON = {
    onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
    onnx.TensorProto.INT64: model_config_pb2.TYPE_INT64,
}


@pytest.fixture(scope="module")
def triton_repo(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("triton")
    for name in MODELS:
        assert write_triton_repo(latest(bundled_models, name), out) == out / name
    return out


def parse_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def graph_io(model_path: Path):
    model = onnx.load(str(model_path))
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits], list(model.graph.output)


def dims_of(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", MODELS)
def test_layout_and_onnx_copy(name: str, triton_repo: Path, bundled_models: Path) -> None:
    src = latest(bundled_models, name)
    manifest = load_manifest(src)
    model_dir = triton_repo / name
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "README.txt", "config.pbtxt", "manifest.json"]
    assert [p.name for p in (model_dir / "1").iterdir()] == ["model.onnx"]
    assert (model_dir / "1" / "model.onnx").read_bytes() == (src / manifest.files["onnx"].path).read_bytes()
    assert (model_dir / "manifest.json").read_bytes() == (src / "manifest.json").read_bytes()


@pytest.mark.parametrize("name", MODELS)
def test_config_is_a_valid_model_config(name: str, triton_repo: Path) -> None:
    config = parse_config(triton_repo / name / "config.pbtxt")
    assert config.name == name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 256
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == [64, 256]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert all(b <= config.max_batch_size for b in config.dynamic_batching.preferred_batch_size)
    assert len(config.instance_group) == 1
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_AUTO
    assert config.instance_group[0].count == 1


@pytest.mark.parametrize("name", MODELS)
def test_config_matches_the_onnx_graph(name: str, triton_repo: Path) -> None:
    config = parse_config(triton_repo / name / "config.pbtxt")
    inputs, outputs = graph_io(triton_repo / name / "1" / "model.onnx")
    assert [i.name for i in config.input] == [v.name for v in inputs]
    assert [o.name for o in config.output] == [v.name for v in outputs]
    for tensor, value in [*zip(config.input, inputs), *zip(config.output, outputs)]:
        assert tensor.data_type == ONNX_TO_TRITON[value.type.tensor_type.elem_type], tensor.name
        graph_dims = dims_of(value)
        # the batch axis is dynamic in the graph (Triton adds it; it is not in dims)
        assert graph_dims[0] is None, f"{tensor.name}: batch axis fixed at {graph_dims[0]}"
        if tensor.HasField("reshape"):
            # (N,) in the graph: Triton's (N, 1) reshaped to scalars per item
            assert list(tensor.dims) == [1] and list(tensor.reshape.shape) == [] and len(graph_dims) == 1
            continue
        assert len(tensor.dims) == len(graph_dims) - 1, tensor.name
        for want, got in zip(graph_dims[1:], tensor.dims):
            assert want is None or want == got, f"{tensor.name}: config dims {list(tensor.dims)} vs graph {graph_dims}"
            assert got > 0
    if name == "cgan":
        label = next(t for t in config.input if t.name == "label")
        assert label.data_type == model_config_pb2.TYPE_INT64


def test_options(bundled_models: Path, tmp_path: Path) -> None:
    src = latest(bundled_models, "dcgan")
    model_dir = write_triton_repo(
        src,
        tmp_path,
        model_name="gen",
        max_batch_size=32,
        preferred_batch_sizes=(8, 16),
        max_queue_delay_us=500,
        instance_kind="KIND_GPU",
        instance_count=2,
        triton_version=3,
    )
    assert model_dir == tmp_path / "gen" and (model_dir / "3" / "model.onnx").is_file()
    config = parse_config(model_dir / "config.pbtxt")
    assert (config.name, config.max_batch_size) == ("gen", 32)
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert config.instance_group[0].count == 2
    for bad in (
        {"preferred_batch_sizes": (64, 512)},
        {"max_batch_size": 0},
        {"instance_kind": "KIND_TPU"},
        {"max_queue_delay_us": -1},
    ):
        with pytest.raises(TritonExportError):
            write_triton_repo(src, tmp_path / "bad", **bad)


def test_refuses_a_graph_with_a_fixed_batch_axis(bundled_models: Path, tmp_path: Path) -> None:
    import shutil

    from gan_contract.manifest import FileEntry, sha256_file, write_manifest

    version_dir = tmp_path / "dcgan" / "1"
    shutil.copytree(latest(bundled_models, "dcgan"), version_dir)
    model = onnx.load(str(version_dir / "model.onnx"))
    for v in [*model.graph.input, *model.graph.output]:
        v.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(version_dir / "model.onnx"))
    manifest = load_manifest(version_dir, verify_files=False)
    files = {**manifest.files, "onnx": FileEntry("model.onnx", sha256_file(version_dir / "model.onnx"))}
    write_manifest(version_dir, dataclasses.replace(manifest, files=files))
    with pytest.raises(TritonExportError, match="fixed batch size"):
        write_triton_repo(version_dir, tmp_path / "out")


# -- what a Triton client does, per README.txt ---------------------------------------------


def client_inputs(manifest, n: int, seed: int, fixed: int | None = None) -> dict[str, np.ndarray]:
    """The inputs README.txt tells a client to send, shaped as Triton's config says."""
    cond = manifest.conditioning
    k = len(cond.class_names) if cond.kind == "class" else cond.num_categories if cond.kind == "infogan" else 0
    codes = draw(
        manifest.latent_scheme,
        seed,
        0,
        n,
        manifest.latent.dim,
        num_categories=k,
        num_continuous=cond.num_continuous,
        continuous_range=cond.continuous_range,
    )
    classes = codes.category if fixed is None else np.full(n, fixed, np.int64)
    feeds = {"z": codes.z}
    if cond.kind == "class":
        feeds["label"] = classes.reshape(n, 1)  # dims [1], reshaped by Triton to (n,)
    elif cond.kind == "infogan":
        feeds["category"] = np.eye(cond.num_categories, dtype=np.float32)[classes]
        feeds["continuous"] = codes.continuous
    return feeds


def readme_uint8(x: np.ndarray, low: float, high: float) -> np.ndarray:
    u8 = np.clip(np.rint((x - (low)) * np.float32(255.0 / (high - (low)))), 0, 255)
    return u8.astype(np.uint8).transpose(0, 2, 3, 1)


@pytest.mark.parametrize("name", MODELS)
def test_client_side_latents_give_the_servers_images(name: str, triton_repo: Path, bundled_models: Path) -> None:
    import onnxruntime as ort

    model_dir = triton_repo / name
    manifest = load_manifest(latest(bundled_models, name))
    config = parse_config(model_dir / "config.pbtxt")
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    reference = ModelRepository(bundled_models).load_version(latest(bundled_models, name))  # gan-server, ONNX backend

    cond = manifest.conditioning
    cases = [(None, None)]
    if cond.kind == "class":
        cases.append((7, cond.class_names.index("7")))
    elif cond.kind == "infogan" and 7 in cond.category_to_digit:
        cases.append((7, cond.category_to_digit.index(7)))
    for digit, fixed in cases:
        feeds = client_inputs(manifest, 8, 3, fixed)
        # what Triton hands the backend: each input reshaped per config
        for t in config.input:
            assert feeds[t.name].shape[1:] == tuple(t.dims), t.name
            if t.HasField("reshape"):
                feeds[t.name] = feeds[t.name].reshape(feeds[t.name].shape[0], *t.reshape.shape)
        (out,) = session.run([config.output[0].name], feeds)
        assert out.shape[1:] == tuple(config.output[0].dims)
        got = readme_uint8(out, *manifest.image.value_range)
        np.testing.assert_array_equal(got, to_uint8(out, manifest.image.value_range))
        want = reference.generate(reference.plan(SampleSpec(count=8, seed=3, digit=digit)), 0, 8).images
        assert_same_images(got, want, f"{name} digit={digit}")


@pytest.mark.parametrize("name", MODELS)
def test_readme_states_the_contract(name: str, triton_repo: Path, bundled_models: Path) -> None:
    manifest = load_manifest(latest(bundled_models, name))
    text = (triton_repo / name / "README.txt").read_text()
    img = manifest.image
    assert f'draw("{manifest.latent_scheme}"' in text and f"dim={manifest.latent.dim}" in text
    # The README's own snippet, run as a client would, draws the server planner's codes
    # (the bundled models name both schemes, so this covers each README variant).
    lines = text.splitlines()
    start = lines.index("    from gan_contract.latents import draw")
    snippet = textwrap.dedent("\n".join(lines[start : lines.index("", start)]))
    scope = {"seed": 5, "first_index": 3, "n": 4}
    exec(snippet, scope)
    want = draw_request_codes(manifest, 5, 3, 4)
    np.testing.assert_array_equal(scope["codes"].z, want.z)
    np.testing.assert_array_equal(scope["codes"].category, want.category)
    assert f"FP32 (N, {img.channels}, {img.height}, {img.width})" in text
    kind = manifest.conditioning.kind
    assert ("label" in text) == (kind == "class")
    assert ("one-hot" in text and "continuous" in text) == (kind == "infogan")
