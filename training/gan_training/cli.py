"""``gan-train``: train, export and evaluate GANs, and (re)train the classifier.

    gan-train fit --variant dcgan --dataset mnist --epochs 20 --seed 0 --out runs/dcgan
    gan-train fit --variant infogan --labelled-fraction 0.02 --out runs/infogan
    gan-train fit --out runs/dcgan --epochs 30 --resume
    gan-train export runs/dcgan --repo models --name dcgan [--version 1]
    gan-train eval models/cgan/1 [--json]
    gan-train classifier --out training/gan_training/assets/mnist_classifier.pt

Run ``gan-train COMMAND --help`` for every option.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from gan_contract.cli_options import build, options
from gan_contract.latents import LATENT_SCHEMES
from gan_contract.manifest import ManifestError

from .config import TrainConfig
from .export import EXPORT_LATENT_SCHEME, WEIGHTS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Train GANs on embedded data, export them for gan-server, and judge them."""


@main.command()
@options(TrainConfig)
@click.option("--resume", is_flag=True, help="Continue the run in --out (its hyperparameters win).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def fit(resume: bool, no_progress: bool, **settings) -> None:
    """Train a GAN variant; checkpoints, sample grids and metrics go to --out."""
    from .data import DatasetError
    from .trainer import fit as run_fit
    from .variants import get_variant

    cfg = build(TrainConfig, settings)
    try:
        get_variant(cfg.variant)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--variant") from None
    try:
        out = run_fit(cfg, resume=resume, progress=not no_progress)
    except (FileExistsError, FileNotFoundError, ValueError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    if os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 speaks
        click.echo(f"run saved in {out}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--repo", type=click.Path(file_okay=False), default="models", help="Model repository root.")
@click.option("--name", required=True, help="Model name (directory under --repo).")
@click.option("--version", default=None, help="Version directory [next integer].")
@click.option("--overwrite", is_flag=True, help="Replace an existing version.")
@click.option("--format", "formats", type=click.Choice(["repo", "mar", "triton"]), multiple=True, default=("repo",),
              show_default=True, help="The repository version is always written; mar (TorchServe archive) and "
              "triton (Triton model repository) are built from it. Repeatable.")
@click.option("--mar-out", type=click.Path(file_okay=False), default="model-store", show_default=True,
              help="Where --format mar writes <name>.mar.")
@click.option("--triton-out", type=click.Path(file_okay=False), default="triton-models", show_default=True,
              help="Triton model repository root for --format triton.")
@click.option("--triton-max-batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--triton-max-queue-delay-us", type=click.IntRange(min=0), default=2000, show_default=True)
@click.option("--no-torch-export", is_flag=True, help="Leave out model.pt2 (no server backend reads it).")
@click.option("--latent-scheme", type=click.Choice(LATENT_SCHEMES), default=EXPORT_LATENT_SCHEME, show_default=True,
              help="How seeds become latent codes (docs/api.md, Seeds); recorded in the manifest.")
@click.option("--weights", type=click.Choice(WEIGHTS), default="auto", show_default=True,
              help="Ship the weight average (ema), the raw generator (raw), or, for a run that kept both, "
              "whichever has the lower FLD on 5,000 images (auto); recorded in the manifest.")
def export(run_dir: str, repo: str, name: str, version: str | None, overwrite: bool, formats: tuple[str, ...],
           mar_out: str, triton_out: str, triton_max_batch_size: int, triton_max_queue_delay_us: int,
           no_torch_export: bool, latent_scheme: str, weights: str) -> None:
    """Export RUN_DIR's generator (ONNX, TorchScript, torch.export + manifest)."""
    from .export import ExportError, export_run
    from .interop.torchserve import MarError

    try:
        path = export_run(
            run_dir, repo=repo, name=name, version=version, overwrite=overwrite, torch_export=not no_torch_export,
            latent_scheme=latent_scheme, weights=weights,
        )
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(path.iterdir()))
        click.echo(f"exported {path} ({sizes})")
        if "mar" in formats:
            from .interop.torchserve import build_mar

            click.echo(f"TorchServe archive {build_mar(path, mar_out, model_name=name)}")
        if "triton" in formats:
            from .interop.triton import write_triton_repo

            triton = write_triton_repo(path, triton_out, model_name=name, max_batch_size=triton_max_batch_size,
                                       max_queue_delay_us=triton_max_queue_delay_us)
            click.echo(f"Triton model {triton}")
    except (ExportError, MarError, FileExistsError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command(name="eval")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--samples", type=click.IntRange(min=1), default=100, help="Samples per class for conditional accuracy.")
@click.option("--fld-samples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Generated images for FLD and class coverage.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Request seed for draw_codes.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Also write the JSON here.")
@click.option("--min-accuracy", type=float, default=None, help="Fail (exit 1) below this overall accuracy.")
@click.option("--min-worst", type=float, default=None, help="Fail (exit 1) below this worst-digit accuracy.")
def evaluate(model_dir: str, samples: int, fld_samples: int, seed: int, as_json: bool, out_path: str | None,
             min_accuracy: float | None, min_worst: float | None) -> None:
    """Judge MODEL_DIR's ONNX generator: FLD, class coverage, conditional accuracy, 2-D modes."""
    from .data import DatasetError
    from .evaluation import evaluate_model_dir

    try:
        result = evaluate_model_dir(model_dir, samples_per_digit=samples, seed=seed, fld_samples=fld_samples)
    except (ManifestError, DatasetError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if out_path:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_eval_summary(result))
    failed = []
    if min_accuracy is not None and result.get("overall_accuracy", 0.0) < min_accuracy:
        failed.append(f"overall accuracy below {min_accuracy}")
    if min_worst is not None and result.get("worst_digit_accuracy", 0.0) < min_worst:
        failed.append(f"worst-digit accuracy below {min_worst}")
    if failed:
        click.echo("FAILED: " + "; ".join(failed), err=True)
        sys.exit(1)


def _eval_summary(r: dict) -> str:
    lines = [f"{r['model']} ({r['variant']} on {r['dataset']})"]
    if "modes" in r:
        m = r["modes"]
        lines.append(
            f"modes captured {m['modes_captured']}/{m['modes_total']}, high quality {m['high_quality_fraction']:.3f}, "
            f"reverse KL {m['reverse_kl']:.3f} ({m['samples']} samples)"
        )
        return "\n".join(lines)
    if "fld" not in r:
        return "\n".join(lines + [f"mean {r['mean']:.3f}, std {r['std']:.3f}"])
    lines.append(
        f"FLD {r['fld']:.2f} vs {r['fld_reference']} ({r['samples']} samples); classes covered "
        f"{r['classes_covered']}/10, KL to uniform {r['kl_to_uniform']:.3f}"
    )
    lines.append("histogram " + " ".join(f"{d}:{n}" for d, n in r["histogram"].items()))
    if "overall_accuracy" in r:
        names = r["class_names"]
        lines.append(
            f"conditional accuracy {r['overall_accuracy']:.3f}, worst class {names[r['worst_digit']]} "
            f"at {r['worst_digit_accuracy']:.3f} ({r['samples_per_digit']} samples per class)"
        )
        lines.append("per class " + " ".join(f"{names[int(d)]}:{a:.2f}" for d, a in r["per_digit_accuracy"].items()))
    return "\n".join(lines)


@main.command(name="zoo-seeds")
@click.argument("name")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False), required=True,
              help="Where the seeds' runs are: RUNS/NAME-SEED.")
@click.option("--toy-repo", type=click.Path(exists=True, file_okay=False), required=True,
              help="Where the seeds' exports are: TOY_REPO/NAME/SEED.")
@click.option("--repo", type=click.Path(file_okay=False), default="models", show_default=True)
@click.option("--version", default="1", show_default=True)
@click.option("--eval-dir", type=click.Path(file_okay=False), default="docs/zoo", show_default=True)
def zoo_seeds(name: str, runs_dir: str, toy_repo: str, repo: str, version: str, eval_dir: str) -> None:
    """Judge every seed of a 2-D model; write mean +- SE; bundle the best seed."""
    from .evaluation import evaluate_model_dir
    from .export import export_run
    from .zoo import seeds_summary

    if not (Path(toy_repo) / name).is_dir():
        raise click.ClickException(f"{Path(toy_repo) / name}: no such model in the toy repository")
    seed_dirs = (p for p in (Path(toy_repo) / name).iterdir() if p.is_dir() and p.name.isdigit())
    exports = sorted(seed_dirs, key=lambda p: int(p.name))
    if not exports:
        raise click.ClickException(f"{Path(toy_repo) / name}: no seed versions")
    summary = seeds_summary({p.name: evaluate_model_dir(p) for p in exports})
    out = Path(eval_dir) / f"{name}-seeds.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    best = Path(runs_dir) / f"{name}-{summary['best_seed']}"
    path = export_run(best, repo=repo, name=name, version=version, overwrite=True, torch_export=False)
    m = summary["modes_captured"]
    click.echo(f"{name}: modes {m['mean']:.2f} +- {m['se']:.2f} over {len(exports)} seeds; bundled seed "
               f"{summary['best_seed']} as {path}")


@main.command(name="zoo-table")
@click.argument("eval_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--models", type=click.Path(exists=True, file_okay=False), default="models", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="docs/model-zoo.md", show_default=True)
@click.option("--img-dir", type=click.Path(file_okay=False), default="docs/img/zoo", show_default=True)
@click.option("--readme", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Also replace the table between the zoo-table markers in this README.")
def zoo_table(eval_dir: str, models: str, out: str, img_dir: str, readme: str | None) -> None:
    """Write docs/model-zoo.md (and the README's table) from the eval JSON."""
    from .zoo import write_zoo_page

    try:
        write_zoo_page(Path(eval_dir), Path(models), Path(out), Path(img_dir), Path(readme) if readme else None)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out}")


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the classifier weights [training/gan_training/assets/DATASET_classifier.pt].",
)
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]), default="mnist", show_default=True)
@click.option("--seed", type=int, default=0)
@click.option("--epochs", type=click.IntRange(min=1), default=30)
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch CPU threads (0: torch default).")
def classifier(out: str | None, dataset: str, seed: int, epochs: int, threads: int) -> None:
    """(Re)train the project's MNIST or Fashion-MNIST classifier from a fixed seed."""
    import torch

    from .classifier import ClassifierTrainConfig, train_classifier
    from .data import DatasetError

    if threads:
        torch.set_num_threads(threads)
    out = out or f"training/gan_training/assets/{dataset}_classifier.pt"
    try:
        asset = train_classifier(ClassifierTrainConfig(out=out, dataset=dataset, seed=seed, epochs=epochs))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"held-out accuracy {asset['held_out_accuracy']:.4f} on {asset['held_out_size']} images; saved {out}")


if __name__ == "__main__":
    main()
