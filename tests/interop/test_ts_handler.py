"""The TorchServe handler and archive, in process (no Java): fast, in the default suite.

The handler runs from a staged copy of exactly what build_mar puts into the
archive, with TorchServe's own Context class, and is compared with the
server's LoadedModel (TorchScript backend) on the same model version:
images, classes and error messages.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ts", reason="torchserve is not installed (pip install torchserve)")
pytest.importorskip("torch")

import gan_contract
from gan_client import make_grid
from gan_contract import manifest as server_manifest
from gan_contract.errors import InvalidArgument
from gan_contract.request import SampleSpec
from gan_server.repository import ModelRepository
from gan_training.interop.torchserve import HANDLER, MarError, build_mar, stage_archive_files

from .common import MODELS, latest
from .compare import assert_images_close, assert_same_images


class _Metrics:
    def add_time(self, *args, **kwargs) -> None:
        pass

    def add_metric(self, *args, **kwargs) -> None:
        pass


@pytest.fixture(scope="module")
def staged(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("staged")
    for name in MODELS:
        stage_archive_files(latest(bundled_models, name), root / name)
    return {name: root / name for name in MODELS}


@pytest.fixture(scope="module")
def handler_module(staged: dict[str, Path]):
    """ts_handler imported from a staged archive directory, as TorchServe's worker imports it."""
    path = str(next(iter(staged.values())))
    sys.modules.pop("ts_handler", None)
    sys.path.insert(0, path)
    try:
        module = importlib.import_module("ts_handler")
    finally:
        sys.path.remove(path)
    yield module
    sys.modules.pop("ts_handler", None)


def make_context(model_dir: Path, n: int = 1):
    from ts.context import Context, RequestProcessor

    mar_manifest = {"model": {"modelName": model_dir.name, "serializedFile": "model.ts", "handler": "ts_handler.py"}}
    ctx = Context(
        model_dir.name, str(model_dir), mar_manifest, n, None, "0.12.0", metrics=_Metrics(), model_yaml_config={}
    )
    ctx.request_processor = [RequestProcessor({}) for _ in range(n)]
    return ctx


@pytest.fixture(scope="module")
def handlers(handler_module, staged: dict[str, Path]):
    out = {}
    for name, directory in staged.items():
        h = handler_module.GanHandler()
        h.initialize(make_context(directory))
        h._test_dir = directory
        out[name] = h
    return out


@pytest.fixture(scope="module")
def reference(bundled_models: Path):
    """The server's LoadedModel for each model, on the TorchScript backend."""
    repo = ModelRepository(bundled_models, backend="torchscript")
    return {name: repo.load_version(latest(bundled_models, name)) for name in MODELS}


def raw(output: bytes) -> np.ndarray:
    assert output[:6] == b"\x93NUMPY", output[:200]
    return np.load(io.BytesIO(output), allow_pickle=False)


def spec_args(body: dict) -> dict:
    args = {"count": body.get("n", 1), "seed": body.get("seed", 0), "first_index": body.get("first_index", 0)}
    for key in ("digit", "label", "category"):
        if key in body:
            args[key] = body[key]
    if "continuous" in body:
        args["continuous"] = tuple(body["continuous"])
    return args


CASES = {
    "dcgan": [{"n": 8, "seed": 3}, {"n": 5, "seed": 2**64 - 1, "first_index": 7}, {"n": 1, "seed": 0}],
    "cgan": [{"n": 8, "seed": 3}, {"n": 8, "seed": 3, "digit": 7}, {"n": 3, "seed": 11, "label": "2"}],
    "infogan": [
        {"n": 8, "seed": 3},
        {"n": 8, "seed": 3, "digit": 7},
        {"n": 4, "seed": 5, "label": "4"},
        {"n": 4, "seed": 5, "category": 2},
        {"n": 6, "seed": 9, "digit": 1, "continuous": [0.5, -1.0]},
    ],
}


# -- the archive ----------------------------------------------------------------------


def test_archive_holds_the_contract_package_verbatim(bundled_models: Path, tmp_path: Path) -> None:
    pytest.importorskip("model_archiver", reason="torch-model-archiver is not installed")
    version_dir = latest(bundled_models, "cgan")
    mar = build_mar(version_dir, tmp_path / "store")
    assert mar == tmp_path / "store" / "cgan.mar"
    manifest = server_manifest.load_manifest(version_dir)
    package = Path(gan_contract.__file__).parent
    modules = sorted(p.relative_to(package.parent).as_posix() for p in package.glob("*.py"))
    assert "gan_contract/request.py" in modules and "gan_contract/latents.py" in modules
    with zipfile.ZipFile(mar) as z:
        names = set(z.namelist())
        assert {"model.ts", "manifest.json", "ts_handler.py", "MAR-INF/MANIFEST.json", *modules} <= names
        for module in modules:
            assert z.read(module) == (package.parent / module).read_bytes(), module
        # no generated gRPC code (the handler needs none) and no stale copies of modules
        assert not [n for n in names if n.startswith("gan_contract/proto") or n.endswith(".pyc")]
        assert not {"gan_latents.py", "gan_manifest.py"} & names
        assert z.read("ts_handler.py") == HANDLER.read_bytes()
        assert z.read("manifest.json") == (version_dir / "manifest.json").read_bytes()
        assert z.read("model.ts") == (version_dir / manifest.files["torchscript"].path).read_bytes()
        mar_manifest = json.loads(z.read("MAR-INF/MANIFEST.json"))
    assert mar_manifest["model"] == {
        "modelName": "cgan",
        "serializedFile": "model.ts",
        "handler": "ts_handler.py",
        "modelVersion": manifest.version,
    }
    # a second build replaces the archive; another name is honoured
    assert build_mar(version_dir, tmp_path / "store").is_file()
    assert build_mar(version_dir, tmp_path / "store", model_name="cgan-ts").name == "cgan-ts.mar"


def test_build_mar_refuses_what_torchserve_could_not_run(bundled_models: Path, tmp_path: Path) -> None:
    import shutil

    version_dir = tmp_path / "dcgan" / "1"
    shutil.copytree(latest(bundled_models, "dcgan"), version_dir)
    with pytest.raises(MarError, match="model name"):
        build_mar(version_dir, tmp_path / "out", model_name="bad name")
    data = json.loads((version_dir / "manifest.json").read_text())
    del data["files"]["torchscript"]
    (version_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(MarError, match="no TorchScript generator"):
        build_mar(version_dir, tmp_path / "out")
    with pytest.raises(server_manifest.ManifestError):
        build_mar(tmp_path / "nowhere", tmp_path / "out")


# -- the staged package is the one a worker imports ----------------------------------


def test_a_worker_imports_the_archived_contract(staged: dict[str, Path]) -> None:
    """TorchServe puts the model directory first on sys.path: the handler must run
    on the archive's copy of gan_contract, not on one the worker happens to have."""
    import subprocess

    directory = staged["cgan"]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ts_handler, gan_contract.request as r; print(r.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip().splitlines()[-1]).resolve() == (directory / "gan_contract" / "request.py").resolve()


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_images_and_classes_equal_the_servers(name: str, handlers, reference) -> None:
    handler, model = handlers[name], reference[name]
    for body in CASES[name]:
        outputs, ctx = run(handler, {**body, "format": "raw"})
        want = model.generate(model.plan(SampleSpec(**spec_args(body))), 0, body["n"])
        assert ctx.get_response_status(0)[0] == 200
        assert_same_images(raw(outputs[0]), want.images, f"{name} {body}")
        headers = ctx.get_response_headers(0)
        assert headers["X-GAN-Classes"] == ",".join(str(c) for c in want.classes), body
        assert headers["X-GAN-Shape"] == ",".join(str(d) for d in want.images.shape)
        assert headers["content-type"] == "application/x-npy"
        assert (headers["X-GAN-Model"], headers["X-GAN-Version"]) == (model.name, model.version)


def test_png_is_the_grid_of_the_images(handlers, reference) -> None:
    from PIL import Image

    model = reference["cgan"]
    outputs, ctx = run(handlers["cgan"], {"n": 8, "seed": 3, "digit": 7})
    assert ctx.get_response_headers(0)["content-type"] == "image/png"
    png = np.asarray(Image.open(io.BytesIO(outputs[0])))
    want = model.generate(model.plan(SampleSpec(count=8, seed=3, digit=7)), 0, 8).images
    np.testing.assert_array_equal(png, make_grid(want)[..., 0])


def test_a_batch_shares_one_forward_pass(handlers, reference) -> None:
    handler, model = handlers["infogan"], reference["infogan"]
    bodies = [
        {"n": 3, "seed": 1, "format": "raw"},
        {"n": 12, "seed": 2, "digit": 5, "format": "raw"},
        {"n": 1, "seed": 3, "format": "raw"},
    ]
    outputs, _ = run(handler, *bodies)
    for i, body in enumerate(bodies):
        want = model.generate(model.plan(SampleSpec(**spec_args(body))), 0, body["n"]).images
        # computed inside a 16-image batch here vs alone in the reference: see compare.py
        assert_images_close(raw(outputs[i]), want, f"request {i} of the batch")


def test_large_requests_run_in_chunks_of_max_batch(handler_module, handlers, reference) -> None:
    handler, model = handlers["dcgan"], reference["dcgan"]
    n = handler_module.MAX_BATCH + 3
    outputs, _ = run(handler, {"n": n, "seed": 4, "format": "raw"})
    got = raw(outputs[0])
    plan = model.plan(SampleSpec(count=n, seed=4))
    # the server also splits at --max-batch 256
    want = np.concatenate([model.generate(plan, 0, 256).images, model.generate(plan, 256, 3).images])
    assert_same_images(got, want)


# -- errors -------------------------------------------------------------------------------

# Requests the server's LoadedModel.plan also refuses: the messages must agree.
PLAN_ERRORS = [
    ("cgan", {"digit": 12}),
    ("cgan", {"digit": -1}),
    ("dcgan", {"digit": 3}),
    ("dcgan", {"label": "3"}),
    ("cgan", {"label": "cat"}),
    ("cgan", {"category": 1}),
    ("infogan", {"category": 10}),
    ("infogan", {"continuous": [0.1]}),
    ("infogan", {"continuous": [0.1, math.nan]}),
    ("cgan", {"continuous": [0.1, 0.2]}),
    ("cgan", {"digit": 3, "label": "3"}),
    ("dcgan", {"seed": -1}),
    ("dcgan", {"seed": 2**64}),
    ("dcgan", {"first_index": 2**64 - 1, "n": 2}),
]

# Requests only the JSON contract can get wrong.
CONTRACT_ERRORS = [
    ({"n": 0}, "n: must be at least 1, got 0"),
    ({"n": 5000}, "n: 5000 exceeds this handler's limit of 4096 images per request"),
    ({"n": 2.5}, "n: must be an integer, got 2.5"),
    ({"seed": "3"}, 'seed: must be an integer, got "3"'),
    ({"digit": True}, "digit: must be an integer, got true"),
    ({"label": 3}, "label: must be a string, got 3"),
    ({"format": "jpeg"}, 'format: must be one of png, raw, got "jpeg"'),
    ({"count": 8}, "count: unknown field; known: n, seed, first_index, digit, label, category, continuous, format"),
    ({"continuous": "0.5"}, "continuous: must be a list of numbers"),
    (b"[1, 2]", "request: the body must be a JSON object, got list"),
    (b'{"n": 8', "request: the body is not valid JSON"),
    (b"\xff\xfe", "request: the body is not UTF-8 JSON"),
]


def server_error(model, body: dict) -> str:
    with pytest.raises(InvalidArgument) as info:
        model.plan(SampleSpec(**{"count": 1, **spec_args(body)}))
    return str(info.value)


@pytest.mark.parametrize(("name", "body"), PLAN_ERRORS, ids=[f"{n}-{json.dumps(b)}" for n, b in PLAN_ERRORS])
def test_errors_are_worded_as_the_servers(name: str, body: dict, handlers, reference) -> None:
    from ts.utils.util import PredictionException

    want = server_error(reference[name], body)
    with pytest.raises(PredictionException) as info:  # a lone request: the whole job fails with 400
        run(handlers[name], body)
    assert info.value.error_code == 400
    got = info.value.message
    # The server also lists the conditional models it serves; the handler knows only its own.
    assert got == want or want.startswith(got + ";"), (got, want)


@pytest.mark.parametrize(("body", "message"), CONTRACT_ERRORS, ids=[str(i) for i in range(len(CONTRACT_ERRORS))])
def test_contract_errors(body, message: str, handlers) -> None:
    from ts.utils.util import PredictionException

    with pytest.raises(PredictionException) as info:
        run(handlers["dcgan"], body)
    assert info.value.error_code == 400
    assert info.value.message.startswith(message), info.value.message


def test_a_bad_request_in_a_batch_fails_alone(handlers, reference) -> None:
    handler, model = handlers["cgan"], reference["cgan"]
    outputs, ctx = run(
        handler,
        {"n": 2, "seed": 1, "format": "raw"},
        {"n": 2, "digit": 12},
        {"n": 2, "seed": 2, "digit": 3, "format": "raw"},
    )
    assert ctx.get_response_status(1)[0] == 400
    assert json.loads(outputs[1]) == {
        "code": 400,
        "type": "InvalidArgument",
        "message": "digit: must be in [0, 9], got 12",
    }
    for i, body in ((0, {"n": 2, "seed": 1}), (2, {"n": 2, "seed": 2, "digit": 3})):
        assert ctx.get_response_status(i)[0] == 200
        want = model.generate(model.plan(SampleSpec(**spec_args(body))), 0, 2).images
        assert_images_close(raw(outputs[i]), want)


def test_a_corrupt_archive_does_not_load(handler_module, staged: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    directory = tmp_path / "dcgan"
    shutil.copytree(staged["dcgan"], directory)
    with open(directory / "model.ts", "ab") as f:
        f.write(b"\0")
    with pytest.raises(RuntimeError, match="sha256"):
        handler_module.GanHandler().initialize(make_context(directory))


def test_the_comparisons_fail_on_different_images() -> None:
    a = np.zeros((8, 28, 28, 1), np.uint8)
    b = a.copy()
    b[3, 4, 5, 0] = 1
    with pytest.raises(AssertionError):
        assert_same_images(a, b)
    assert assert_images_close(a, b) == 1
    b[0, 0, 0, 0] = 2
    with pytest.raises(AssertionError):
        assert_images_close(a, b)
    with pytest.raises(AssertionError):
        assert_images_close(a, np.ones_like(a))  # every pixel one level off: too many


def run(handler, *bodies):
    """handler.handle() on one TorchServe batch of ``bodies`` (dicts are JSON-decoded bodies, bytes raw ones)."""
    ctx = make_context(handler._test_dir, len(bodies))
    return handler.handle([{"body": b} for b in bodies], ctx), ctx
