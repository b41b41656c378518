"""Export: ONNX parity with PyTorch, batch independence, manifest contract, eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from gan_contract.manifest import expected_inputs, load_manifest
from gan_training import export as export_mod
from gan_training.cli import main
from gan_training.export import ExportError, example_inputs, export_run, load_generator
from gan_training.models import GeneratorConfig
from gan_training.trainer import fit, load_checkpoint

from .conftest import tiny_config

# The infogan run keeps a weight average: export must ship that, not the raw G.
VARIANTS = {"dcgan": {}, "cgan": {}, "infogan": {"labelled_fraction": 0.05, "g_ema": 0.9}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (run dir, version dir) for one tiny run per variant."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, extra in VARIANTS.items():
        run = fit(tiny_config(name, root / "runs" / name, epochs=1, **extra), progress=False)
        out[name] = (run, export_run(run, repo=root / "models", name=name))
    return out


def _session(version_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])


def _generator(run: Path) -> tuple[torch.nn.Module, GeneratorConfig]:
    ckpt = load_checkpoint(run)
    return load_generator(ckpt), GeneratorConfig(**ckpt["generator_config"])


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("batch", [1, 64])
def test_onnx_runtime_matches_pytorch(exported, name: str, batch: int) -> None:
    run, version_dir = exported[name]
    generator, g_cfg = _generator(run)
    args = example_inputs(g_cfg, batch, seed=999)
    session = _session(version_dir)
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args)}
    got = session.run(["images"], feeds)[0]
    with torch.no_grad():
        want = generator(*args).numpy()
    assert got.shape == (batch, 1, 28, 28) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4


def test_upsampling_generator_exports_and_matches_pytorch(tmp_path: Path) -> None:
    """--g-resize upsample: nearest x2 then a 3x3 convolution in place of
    each transposed convolution. The ONNX graph grows with Resize nodes
    (no ConvTranspose), serves the same images as PyTorch, and the
    manifest records the choice; D's dropout never reaches the export."""
    run = fit(tiny_config("dcgan", tmp_path / "run", epochs=1, g_resize="upsample", d_dropout=0.25), progress=False)
    version_dir = export_run(run, repo=tmp_path / "models", name="dcgan-up")
    ops = {n.op_type for n in onnx.load(str(version_dir / "model.onnx")).graph.node}
    assert "Resize" in ops and "ConvTranspose" not in ops
    generator, g_cfg = _generator(run)
    assert g_cfg.resize == "upsample"
    args = example_inputs(g_cfg, 16, seed=7)
    session = _session(version_dir)
    got = session.run(["images"], {i.name: a.numpy() for i, a in zip(session.get_inputs(), args)})[0]
    with torch.no_grad():
        want = generator(*args).numpy()
    assert got.shape == (16, 1, 28, 28) and np.abs(got - want).max() <= 1e-4
    training = load_manifest(version_dir).training
    assert training["g_resize"] == "upsample" and training["d_dropout"] == 0.25


# Eval-mode BatchNorm uses stored statistics, so each sample is computed
# independently of the others and a latent must give the same image alone or
# in a batch. Exact equality is too strict: convolution and GEMM kernels block
# their float32 sums differently for different batch sizes, which moves
# results by a few ulps (~1e-6 for values in [-1, 1]). 1e-5 leaves a 10x
# margin for that, while any real cross-sample coupling (e.g. train-mode
# BatchNorm, checked below) moves pixels by ~1e-1.
BATCH_TOLERANCE = 1e-5


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_latent_gives_the_same_image_alone_and_in_a_batch(exported, name: str) -> None:
    run, version_dir = exported[name]
    generator, g_cfg = _generator(run)
    batch = example_inputs(g_cfg, 64, seed=5)
    session = _session(version_dir)
    names = [i.name for i in session.get_inputs()]
    full = session.run(["images"], {n: a.numpy() for n, a in zip(names, batch)})[0]
    for row in (0, 17, 63):
        alone = session.run(["images"], {n: a[row : row + 1].numpy() for n, a in zip(names, batch)})[0]
        assert np.abs(alone[0] - full[row]).max() <= BATCH_TOLERANCE
        with torch.no_grad():
            torch_alone = generator(*(a[row : row + 1] for a in batch))[0].numpy()
        assert np.abs(torch_alone - full[row]).max() <= 1e-4
    # The check can fail: a batch-coupled generator is caught by it.
    generator.train()
    with torch.no_grad():
        coupled = generator(*batch)[5] - generator(*(a[:8] for a in batch))[5]
    assert coupled.abs().max().item() > 100 * BATCH_TOLERANCE


@pytest.mark.parametrize("name", list(VARIANTS))
def test_manifest_loads_and_matches_the_graph(exported, name: str) -> None:
    run, version_dir = exported[name]
    manifest = load_manifest(version_dir)  # also verifies every sha256
    assert (manifest.name, manifest.version, manifest.variant) == (name, "1", name)
    assert set(manifest.files) == {"onnx", "torchscript", "torch_export"}
    assert manifest.inputs == expected_inputs(manifest.latent, manifest.conditioning)
    assert manifest.training["epochs"] == 1 and manifest.training["dataset_size"] == 5000
    assert manifest.training["onnx_exporter"] == "dynamo"
    model = onnx.load(str(version_dir / "model.onnx"), load_external_data=False)
    assert [i.name for i in model.graph.input] == [t.name for t in manifest.inputs]
    assert [o.name for o in model.graph.output] == ["images"]
    for graph_input in model.graph.input:  # the batch axis is symbolic
        assert graph_input.type.tensor_type.shape.dim[0].dim_param
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert sorted(p.name for p in version_dir.iterdir()) == ["manifest.json", "model.onnx", "model.pt2", "model.ts"]
    assert sum(p.stat().st_size for p in version_dir.iterdir()) < 5_000_000
    kind = {"dcgan": "none", "cgan": "class", "infogan": "infogan"}[name]
    assert manifest.conditioning.kind == kind
    if kind == "infogan":
        cond = manifest.conditioning
        assert (cond.num_categories, cond.num_continuous) == (10, 2)
        assert cond.category_to_digit == tuple(range(10))  # semi-supervised => identity
        assert cond.details["training"] == "semi-supervised" and cond.details["labelled_fraction"] == 0.05
        assert set(cond.details["per_digit_accuracy"]) == {str(d) for d in range(10)}


def test_export_ships_the_weight_average(exported) -> None:
    run, _ = exported["infogan"]
    state = load_checkpoint(run)["state"]
    shipped, _ = _generator(run)
    assert all(torch.equal(v, state["generator_ema"][k]) for k, v in shipped.state_dict().items())
    assert any(not torch.equal(v, state["generator"][k]) for k, v in shipped.state_dict().items())


def test_torchscript_file_reproduces_the_generator(exported) -> None:
    run, version_dir = exported["cgan"]
    generator, g_cfg = _generator(run)
    args = example_inputs(g_cfg, 3, seed=1)
    scripted = torch.jit.load(str(version_dir / "model.ts"))
    with torch.no_grad():
        assert torch.allclose(scripted(*args), generator(*args), atol=1e-5)


def test_onnx_export_is_deterministic(exported, tmp_path: Path) -> None:
    run, version_dir = exported["dcgan"]
    again = export_run(run, repo=tmp_path, name="dcgan", evaluate=False)
    assert (again / "model.onnx").read_bytes() == (version_dir / "model.onnx").read_bytes()


def test_versions_increment_and_existing_ones_are_kept(exported, tmp_path: Path) -> None:
    run, _ = exported["dcgan"]
    first = export_run(run, repo=tmp_path, name="m", evaluate=False)
    second = export_run(run, repo=tmp_path, name="m", evaluate=False)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError):
        export_run(run, repo=tmp_path, name="m", version="1", evaluate=False)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no staging left


def test_parity_failure_aborts_without_leaving_a_version(exported, tmp_path: Path, monkeypatch) -> None:
    run, _ = exported["dcgan"]
    monkeypatch.setattr(export_mod, "PARITY_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_run(run, repo=tmp_path, name="m", evaluate=False)
    assert list((tmp_path / "m").iterdir()) == []


def test_eval_cli_reports_per_digit_accuracy(exported) -> None:
    _, version_dir = exported["cgan"]
    result = CliRunner().invoke(main, ["eval", str(version_dir), "--json", "--samples", "20", "--fld-samples", "200"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples_per_digit"] == 20
    assert set(report["per_digit_accuracy"]) == {str(d) for d in range(10)}
    assert report["worst_digit_accuracy"] == min(report["per_digit_accuracy"].values())
    assert np.array(report["confusion"]).sum() == 200
    # An untrained model cannot pass the bundled-model bar: the gate must trip.
    gated = CliRunner().invoke(
        main, ["eval", str(version_dir), "--samples", "20", "--fld-samples", "200", "--min-accuracy", "0.97"]
    )
    assert gated.exit_code == 1


def test_eval_cli_reports_histogram_for_unconditional(exported) -> None:
    _, version_dir = exported["dcgan"]
    result = CliRunner().invoke(main, ["eval", str(version_dir), "--json", "--fld-samples", "200"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sum(report["histogram"].values()) == 200
    assert 0 <= report["classes_covered"] <= 10 and report["fld"] > 0


def test_exported_version_is_readable_by_other_users(exported, tmp_path: Path) -> None:
    # The server in the container runs as a non-root user: the version
    # directory must not keep the 0700 mode of the exporter's staging dir.
    import os
    import stat

    run, _ = exported["dcgan"]
    old = os.umask(0o022)
    try:
        path = export_run(run, repo=tmp_path, name="perm", evaluate=False)
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o755, oct(mode)


def test_exported_files_name_no_build_machine_paths(exported) -> None:
    # Shipped models must not embed this checkout's absolute paths (the
    # exporters' stack traces and TorchScript debug records would).
    import zipfile

    root = str(Path(__file__).resolve().parents[2]).encode()
    for _run, version_dir in exported.values():
        for f in sorted(version_dir.iterdir()):
            blobs = [f.read_bytes()]
            if zipfile.is_zipfile(f):
                with zipfile.ZipFile(f) as z:
                    blobs += [z.read(n) for n in z.namelist()]
            assert not any(root in b for b in blobs), f"{f} names {root.decode()}"


def test_new_exports_record_the_vectorised_latent_scheme(exported, tmp_path: Path) -> None:
    run, version_dir = exported["dcgan"]
    assert json.loads((version_dir / "manifest.json").read_text())["latent_scheme"] == "philox4x32-vectorised"
    # the per-image scheme can still be asked for; it is the manifest default, so it is not written
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(run),
            "--repo",
            str(tmp_path),
            "--name",
            "old",
            "--no-torch-export",
            "--latent-scheme",
            "philox4x64-per-image",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "old" / "1" / "manifest.json").read_text())
    assert "latent_scheme" not in data
    assert load_manifest(tmp_path / "old" / "1").latent_scheme == "philox4x64-per-image"
    bad = CliRunner().invoke(main, ["export", str(run), "--repo", str(tmp_path), "--latent-scheme", "mt19937"])
    assert bad.exit_code == 2 and "--latent-scheme" in bad.output


# The weight choice: a run that kept a weight average has two generators, and
# `--weights auto` ships the one with the lower FLD. After one tiny epoch both
# draw noise, so each test replaces one of them with a generator that draws a
# plain white image (its last layer's weights zeroed, its bias 10: tanh
# saturates), which is far from the noise in FLD. Which of the two is better
# is judged independently: `gan-train eval`'s evaluation (ONNX Runtime, the
# served codes, 2,000 images of seed 0) of each forced export.


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return fit(tiny_config("dcgan", tmp_path_factory.mktemp("ema") / "run", epochs=1, g_ema=0.9), progress=False)


def _with_white(run: Path, key: str, out: Path) -> Path:
    """A copy of ``run`` whose state[key] generator draws a plain white image."""
    ckpt = load_checkpoint(run)
    last = "net.up2."  # the DCGAN generator's output layer
    ckpt["state"][key] = {
        k: (torch.zeros_like(v) if k.endswith("weight") else torch.full_like(v, 10.0)) if k.startswith(last) else v
        for k, v in ckpt["state"][key].items()
    }
    out.mkdir(parents=True)
    torch.save(ckpt, out / "checkpoint.pt")
    return out


def _shipped_equals(version_dir: Path, run: Path, weights: str) -> bool:
    """Whether the ONNX file in ``version_dir`` computes the run's ``weights`` generator."""
    ckpt = load_checkpoint(run)
    g_cfg = GeneratorConfig(**ckpt["generator_config"])
    (z,) = example_inputs(g_cfg, 8, seed=3)
    with torch.no_grad():
        expected = load_generator(ckpt, weights)(z).numpy()
    return bool(np.abs(_session(version_dir).run(["images"], {"z": z.numpy()})[0] - expected).max() <= 1e-4)


@pytest.mark.parametrize("white", ["generator_ema", "generator"])
def test_auto_weights_ship_the_generator_with_the_lower_fld(ema_run, tmp_path: Path, white: str) -> None:
    from gan_training.evaluation import evaluate_model_dir

    run = _with_white(ema_run, white, tmp_path / "run")
    fld = {
        w: evaluate_model_dir(
            export_run(run, repo=tmp_path / w, name="m", evaluate=False, torch_export=False, weights=w),
            fld_samples=2_000,
        )["fld"]
        for w in ("ema", "raw")
    }
    best, worst = sorted(fld, key=fld.get)
    assert fld[worst] > 2 * fld[best]  # the gap that makes the choice unambiguous
    version_dir = export_run(run, repo=tmp_path / "auto", name="m", evaluate=False, torch_export=False)
    manifest = load_manifest(version_dir)
    choice = manifest.metrics["weight_choice"]
    assert manifest.training["weights"] == best and choice["weights"] == best
    assert choice["fld"][best] < choice["fld"][worst] and choice["rule"] == "auto: the lower FLD"
    assert choice["samples"] == export_mod.CHOICE_SAMPLES and choice["seed"] != 0  # not eval's seed
    assert _shipped_equals(version_dir, run, best) and not _shipped_equals(version_dir, run, worst)


def test_forced_weights_are_shipped_and_recorded(ema_run, tmp_path: Path) -> None:
    run = _with_white(ema_run, "generator", tmp_path / "run")
    for w, other in (("ema", "raw"), ("raw", "ema")):
        version_dir = export_run(run, repo=tmp_path / w, name="m", evaluate=False, torch_export=False, weights=w)
        manifest = load_manifest(version_dir)
        assert manifest.training["weights"] == w and manifest.metrics["weight_choice"]["rule"] == f"--weights {w}"
        assert _shipped_equals(version_dir, run, w) and not _shipped_equals(version_dir, run, other)


def test_asking_for_an_average_the_run_never_kept_names_the_run(exported, tmp_path: Path) -> None:
    run, version_dir = exported["dcgan"]  # trained without --g-ema
    result = CliRunner().invoke(main, ["export", str(run), "--repo", str(tmp_path), "--name", "m", "--weights", "ema"])
    assert result.exit_code == 1 and str(run) in result.output and "--g-ema" in result.output
    assert not (tmp_path / "m" / "1").exists()
    assert load_manifest(version_dir).training["weights"] == "raw"


def test_infogan_keeps_the_average_its_category_map_was_measured_on(exported) -> None:
    _, version_dir = exported["infogan"]
    manifest = load_manifest(version_dir)
    assert manifest.training["weights"] == "ema"
    assert "category" in manifest.metrics["weight_choice"]["rule"] and "fld" not in manifest.metrics["weight_choice"]
