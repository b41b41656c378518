"""`gan-train eval` on real exported models, the multi-seed toy summary and
the generated zoo page (docs/model-zoo.md is built by this code path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gan_training.classifier import classify, embed, judge, load_classifier
from gan_training.cli import main
from gan_training.data import load_dataset
from gan_training.export import export_run
from gan_training.quality import frechet_distance_features
from gan_training.trainer import fit
from gan_training.zoo import seeds_summary, table_rows
from PIL import Image

from .conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]
BUNDLED_CGAN = REPO / "models" / "cgan" / "1"


def _eval(model_dir: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["eval", str(model_dir), "--fld-samples", "500", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    return report


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("untrained")
    run = fit(tiny_config("cgan", root / "run", epochs=1), progress=False)
    return export_run(run, repo=root / "models", name="cgan-untrained", evaluate=False)


@pytest.fixture(scope="module")
def toy_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two seeds of a tiny ring8 GAN, exported as TOY_REPO/gan-ring8/SEED."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("toys")
    for seed in (1, 2):
        cfg = tiny_config("gan", root / "runs" / f"gan-ring8-{seed}", dataset="ring8", seed=seed, steps_per_epoch=20)
        run = fit(cfg, progress=False)
        export_run(run, repo=root / "toy-repo", name="gan-ring8", version=str(seed), evaluate=False, torch_export=False)
    return root / "runs", root / "toy-repo"


def test_eval_of_the_bundled_cgan_reports_every_metric(tmp_path: Path, untrained: Path) -> None:
    good = _eval(BUNDLED_CGAN, tmp_path / "cgan.json")
    bad = _eval(untrained, tmp_path / "untrained.json", "--samples", "20")
    # The bundled cgan asks for every digit equally and draws the asked digit
    # 99% of the time (docs/training.md), so its predicted classes are close
    # to uniform: KL well under that of one missing class (log(10/9) ~ 0.105).
    assert good["classes_covered"] == 10 and good["kl_to_uniform"] < 0.05
    assert sum(good["histogram"].values()) == 500 and good["samples"] == 500
    assert good["overall_accuracy"] >= 0.9 and good["worst_digit_accuracy"] >= 0.8
    # A 3-step generator is noise: its features sit far from real digits.
    assert 0 < good["fld"] < bad["fld"] / 5, (good["fld"], bad["fld"])
    assert good["variant"] == "cgan" and good["dataset"] == "mnist"
    # Its budget is 20,000 G updates (models.mk), which eval reports from the manifest.
    training = json.loads((BUNDLED_CGAN / "manifest.json").read_text())["training"]
    assert good["g_updates"] == training["g_updates"] == 20000 and good["epochs"] == training["epochs"] > 1
    assert good["size_bytes"] == sum(p.stat().st_size for p in BUNDLED_CGAN.iterdir())
    assert good["classifier"]["held_out_accuracy"] > 0.97


def test_fld_of_real_digits_against_themselves() -> None:
    ds = load_dataset("mnist")
    feats = embed(ds.images, load_classifier())
    assert abs(frechet_distance_features(feats, feats)) < 1e-6 * np.trace(np.cov(feats, rowvar=False))
    # Two random halves of the real digits are close; shuffled pixels are not.
    perm = np.random.default_rng(0).permutation(len(feats))
    halves = frechet_distance_features(feats[perm[:2500]], feats[perm[2500:]])
    scrambled = ds.images.flatten(1)[:, torch.randperm(28 * 28, generator=torch.Generator().manual_seed(0))]
    noise = frechet_distance_features(feats[:2500], embed(scrambled.reshape(-1, 1, 28, 28)[:2500]))
    assert halves < noise / 20, (halves, noise)
    # judge()'s one pass gives what the classifier's own forward() gives.
    model = load_classifier()
    classes, features = judge(ds.images[:600], model)
    with torch.no_grad():
        assert np.array_equal(classes, model(ds.images[:600]).argmax(1).numpy())
        assert np.allclose(features, model.features(ds.images[:600]).flatten(1).double().numpy())
    assert np.array_equal(classify(ds.images[:600]).numpy(), classes) and np.allclose(feats[:600], features)


def test_eval_of_a_2d_model_uses_the_mode_protocol(toy_repo, tmp_path: Path) -> None:
    _, repo = toy_repo
    report = _eval(repo / "gan-ring8" / "1", tmp_path / "toy.json")
    modes = report["modes"]
    assert modes["samples"] == 2500 and modes["modes_total"] == 8
    assert sum(modes["mode_histogram"]) == round(modes["high_quality_fraction"] * 2500)
    assert "fld" not in report


def test_seeds_summary_statistics_and_best_seed() -> None:
    def result(captured: int, hq: float, rkl: float) -> dict:
        modes = {"modes_captured": captured, "modes_total": 8, "high_quality_fraction": hq, "reverse_kl": rkl}
        return {"dataset": "ring8", "variant": "gan", "modes": modes}

    summary = seeds_summary({"1": result(6, 0.9, 0.3), "2": result(8, 0.5, 0.1), "3": result(8, 0.7, 0.2)})
    assert summary["best_seed"] == "3"  # most modes, then most high-quality samples
    assert summary["modes_captured"]["mean"] == pytest.approx(22 / 3)
    assert summary["modes_captured"]["se"] == pytest.approx(np.std([6, 8, 8], ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError):
        seeds_summary({})


def test_zoo_seeds_bundles_the_best_seed_and_the_page_is_generated(toy_repo, tmp_path: Path) -> None:
    runs, repo = toy_repo
    models, evals = tmp_path / "models", tmp_path / "evals"
    result = CliRunner().invoke(
        main,
        ["zoo-seeds", "gan-ring8", "--runs", str(runs), "--toy-repo", str(repo), "--repo", str(models),
         "--eval-dir", str(evals)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(main, ["zoo-seeds", "nope", "--runs", str(runs), "--toy-repo", str(repo)])
    assert missing.exit_code == 1 and "no such model" in missing.output
    summary = json.loads((evals / "gan-ring8-seeds.json").read_text())
    assert summary["seeds"] == ["1", "2"]
    bundled = json.loads((models / "gan-ring8" / "1" / "manifest.json").read_text())
    assert bundled["training"]["seed"] == int(summary["best_seed"])

    _eval(models / "gan-ring8" / "1", evals / "gan-ring8.json")
    (models / "cgan").mkdir()
    (models / "cgan" / "1").symlink_to(BUNDLED_CGAN)
    _eval(models / "cgan" / "1", evals / "cgan.json")
    (evals / "notes.md").write_text("## Notes\n\nhand-written line\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- zoo-table:start -->\nold\n<!-- zoo-table:end -->\nrest\n")
    out, img = tmp_path / "model-zoo.md", tmp_path / "img" / "zoo"
    result = CliRunner().invoke(
        main, ["zoo-table", str(evals), "--models", str(models), "--out", str(out), "--img-dir", str(img),
               "--readme", str(readme)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text()
    cgan_epochs = json.loads((BUNDLED_CGAN / "manifest.json").read_text())["training"]["epochs"]
    assert f"| `cgan` | cgan | mnist | {cgan_epochs} |" in page and "| `gan-ring8` | gan | ring8 |" in page
    assert "PacGAN2" in page and "mean of 2 seeds" in page and "hand-written line" in page
    assert Image.open(img / "cgan.png").size == (224, 224)  # 8 x 8 digits of 28 px
    assert (img / "gan-ring8.png").exists()
    text = readme.read_text()
    assert "old" not in text and "| `cgan` |" in text and text.endswith("rest\n")

    (evals / "cgan.json").unlink()
    readme.write_text("no markers here\n")
    broken = CliRunner().invoke(
        main, ["zoo-table", str(evals), "--models", str(models), "--out", str(out), "--img-dir", str(img),
               "--readme", str(readme)],
    )  # fmt: skip
    assert broken.exit_code == 1 and "markers" in broken.output


def test_table_rows_show_the_worst_class() -> None:
    row = table_rows(
        [
            {
                "name": "m",
                "variant": "cgan",
                "dataset": "fashion-mnist",
                "epochs": 10,
                "training_seconds": 12.3,
                "fld": 1.234,
                "classes_covered": 10,
                "kl_to_uniform": 0.01,
                "overall_accuracy": 0.9,
                "class_names": ["tshirt", "trouser"],
                "worst_digit": 1,
                "worst_digit_accuracy": 0.62,
                "generator_parameters": 1234,
                "size_bytes": 2_000_000,
            }  # fmt: skip
        ]
    )[2]
    assert "90.0% (trouser: 62%)" in row and "| 1.23 |" in row and "| 2.00 MB |" in row
