"""Export a training run's generator into the model repository.

    gan-train export runs/dcgan --repo models --name dcgan [--version 1]

writes ``models/dcgan/<version>/``:

    model.onnx     the serving artefact: self-contained (weights inside),
                   dynamic batch axis, inputs named as the manifest contract
                   (z, label | category, continuous), output ``images``
    model.ts       TorchScript (traced, eval mode)
    model.pt2      torch.export program
    manifest.json  written by gan_contract.manifest.write_manifest

The version directory is assembled under a hidden staging name and renamed
into place at the end, so a server watching the repository never sees half a
model. Before that, the ONNX file is checked against PyTorch with
onnxruntime at batch 1 and 64; a mismatch aborts the export.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gan_contract.files import atomic_path
from gan_contract.manifest import (
    Conditioning,
    FileEntry,
    ImageSpec,
    LatentSpec,
    Manifest,
    TensorSpec,
    expected_inputs,
    sha256_file,
    write_manifest,
)

from .classifier import JUDGE_DATASET, judge, load_classifier
from .config import TrainConfig
from .data import dataset_info
from .evaluation import evaluate_model_dir, real_reference
from .models import GeneratorConfig, LatentMean, build_generator, build_net, count_parameters
from .quality import feature_stats, frechet_distance
from .trainer import load_checkpoint

# New exports draw codes with the vectorised scheme (arrays of Philox4x32 words,
# about 8x faster to draw on a CPU and computable on the GPU); models exported
# before name none and keep the per-image scheme, so their bytes do not change.
EXPORT_LATENT_SCHEME = "philox4x32-vectorised"
from .variants import get_variant

PARITY_TOLERANCE = 1e-4
PARITY_BATCHES = (1, 64)


class ExportError(RuntimeError):
    pass


def next_version(model_dir: Path) -> str:
    """One more than the largest integer version present, starting at "1"."""
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.is_dir() else []
    return str(max(versions, default=0) + 1)


WEIGHTS = ("auto", "ema", "raw")
# ``--weights auto`` judges both generators on this many images of their own
# (z from a seed other than the 0 that `gan-train eval` reports on, so that
# the choice is not tuned on the published number).
CHOICE_SAMPLES = 5_000
CHOICE_SEED = 1


def load_generator(ckpt: dict[str, Any], weights: str = "ema") -> torch.nn.Module:
    """The run's generator: its weight average (``"ema"``, the raw weights
    when the run kept none) or the raw weights (``"raw"``)."""
    generator = build_generator(GeneratorConfig(**ckpt["generator_config"]))
    state = ckpt["state"]
    key = "generator_ema" if weights == "ema" and "generator_ema" in state else "generator"
    generator.load_state_dict(state[key])
    return generator.eval()


@torch.no_grad()
def generator_fld(generator: torch.nn.Module, g_cfg: GeneratorConfig, dataset: str,
                  samples: int = CHOICE_SAMPLES, seed: int = CHOICE_SEED) -> float:
    """FLD of ``samples`` images of the PyTorch generator against the dataset's
    reference (the same judge and reference as `gan-train eval`)."""
    classifier = load_classifier(dataset=JUDGE_DATASET[dataset])
    inputs = example_inputs(g_cfg, samples, seed=seed)
    feats = [
        judge(generator(*(x[i : i + 500] for x in inputs)).clamp(-1, 1), classifier)[1]
        for i in range(0, samples, 500)
    ]
    _, _, real_mu, real_sigma = real_reference(dataset)
    return frechet_distance(*feature_stats(np.concatenate(feats)), real_mu, real_sigma)


def choose_weights(ckpt: dict[str, Any], dataset: str, weights: str = "auto", where: str = "run",
                   pinned_by: str = "") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The generator to ship and a record of why.

    A run that kept a weight average (``--g-ema``) has two generators. The
    average is usually the better one, but averaging a generator that hops
    between modes blurs it, so ``auto`` ships whichever has the lower FLD on
    CHOICE_SAMPLES images (datasets a classifier judges; elsewhere, or when
    ``pinned_by`` gives a reason, the average). ``ema`` and ``raw`` force one."""
    if weights not in WEIGHTS:
        raise ExportError(f"{where}: --weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    has_ema = "generator_ema" in ckpt["state"]
    if not has_ema:
        if weights == "ema":
            raise ExportError(f"{where}: the run kept no weight average (trained without --g-ema); use --weights raw")
        return load_generator(ckpt, "raw"), {"weights": "raw", "rule": "the run kept no weight average"}
    if weights != "auto":
        return load_generator(ckpt, weights), {"weights": weights, "rule": f"--weights {weights}"}
    if pinned_by:
        return load_generator(ckpt, "ema"), {"weights": "ema", "rule": f"the average: {pinned_by}"}
    if dataset not in JUDGE_DATASET:
        return load_generator(ckpt, "ema"), {"weights": "ema", "rule": f"the average: no classifier judges {dataset}"}
    g_cfg = GeneratorConfig(**ckpt["generator_config"])
    fld = {w: generator_fld(load_generator(ckpt, w), g_cfg, dataset) for w in ("ema", "raw")}
    pick = "raw" if fld["raw"] < fld["ema"] else "ema"
    return load_generator(ckpt, pick), {
        "weights": pick,
        "rule": "auto: the lower FLD",
        "fld": {w: round(v, 3) for w, v in fld.items()},
        "samples": CHOICE_SAMPLES,
        "seed": CHOICE_SEED,
    }


def example_inputs(g_cfg: GeneratorConfig, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, g_cfg.z_dim, generator=gen)
    if g_cfg.conditioning == "class":
        return z, torch.randint(g_cfg.num_classes, (batch,), generator=gen)
    if g_cfg.conditioning == "infogan":
        category = torch.nn.functional.one_hot(
            torch.randint(g_cfg.num_categories, (batch,), generator=gen), g_cfg.num_categories
        ).float()
        return z, category, torch.rand(batch, g_cfg.num_continuous, generator=gen) * 2 - 1
    return (z,)


def input_names(g_cfg: GeneratorConfig) -> list[str]:
    return {"none": ["z"], "class": ["z", "label"], "infogan": ["z", "category", "continuous"]}[g_cfg.conditioning]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' internal chatter (deprecation notices, optional
    torchvision ops); real failures still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(generator: torch.nn.Module, g_cfg: GeneratorConfig, path: Path) -> str:
    """Write ``path``; returns which exporter succeeded ("dynamo" or "legacy")."""
    with _quiet_exporter():
        return _export_onnx(generator, g_cfg, path)


def _export_onnx(generator: torch.nn.Module, g_cfg: GeneratorConfig, path: Path) -> str:
    names = input_names(g_cfg)
    # Batch 2, not 1: torch.export specialises size-1 dimensions.
    args = example_inputs(g_cfg, 2)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        torch.onnx.export(
            generator,
            args,
            str(path),
            dynamo=True,
            input_names=names,
            output_names=["images"],
            dynamic_shapes={name: {0: batch} for name in names},
            external_data=False,
            optimize=True,
            verbose=False,
        )
        return "dynamo"
    except Exception as exc:  # the fallback is the point: report and continue
        warnings.warn(f"the dynamo ONNX exporter failed ({type(exc).__name__}: {exc}); using the legacy exporter")
    torch.onnx.export(
        generator,
        args,
        str(path),
        dynamo=False,
        input_names=names,
        output_names=["images"],
        dynamic_axes={name: {0: "batch"} for name in [*names, "images"]},
        opset_version=17,
    )
    return "legacy"


def check_onnx(path: Path, generator: torch.nn.Module, g_cfg: GeneratorConfig) -> dict[str, Any]:
    """Self-containedness, I/O names and ORT-vs-PyTorch parity; raises ExportError."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ExportError(f"{path}: weights stored outside the file: {external[:3]}")
    onnx.checker.check_model(model)
    names = input_names(g_cfg)
    got = [i.name for i in model.graph.input]
    if got != names or [o.name for o in model.graph.output] != ["images"]:
        raise ExportError(f"{path}: graph inputs {got} / outputs {[o.name for o in model.graph.output]}, expected {names} / ['images']")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in PARITY_BATCHES:
        args = example_inputs(g_cfg, batch, seed=100 + batch)
        with torch.no_grad():
            expected = generator(*args).numpy()
        actual = session.run(["images"], {n: a.numpy() for n, a in zip(names, args)})[0]
        want_shape = (batch, *output_shape(g_cfg))  # (1, 28, 28) images; (1, D, 1) for point data
        if actual.shape != want_shape or actual.dtype != np.float32:
            raise ExportError(f"{path}: batch {batch} gave {actual.dtype} {actual.shape}, expected float32 {want_shape}")
        diff = float(np.abs(actual - expected).max())
        if not diff <= PARITY_TOLERANCE:
            raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} at batch {batch} (tolerance {PARITY_TOLERANCE})")
        worst = max(worst, diff)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"max_abs_diff": worst, "batches": list(PARITY_BATCHES), "opset": opset}


def output_shape(g_cfg: GeneratorConfig) -> tuple[int, ...]:
    """Per-sample (C, H, W) of the generator's output."""
    return tuple(int(d) for d in g_cfg.out_shape)


def strip_source_paths(path: Path) -> None:
    """Remove debug records that name the build machine's source files.

    The exporters embed Python stack traces (absolute paths of this checkout
    and of site-packages) in ONNX node metadata and TorchScript's
    ``*.debug_pkl`` records. Models are shipped artefacts: keep them free of
    machine paths. Neither record is needed to load or run the model.
    """
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path))
        model.doc_string = ""
        model.graph.doc_string = ""
        for node in model.graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
        kept = [p for p in model.metadata_props if 'File "' not in p.value and "/" not in p.value]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        onnx.save(model, str(path))
    elif path.suffix == ".ts":
        with zipfile.ZipFile(path) as zin:
            entries = [(info, zin.read(info.filename)) for info in zin.infolist()
                       if not info.filename.endswith(".debug_pkl")]
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zout:
            for info, data in entries:
                zout.writestr(info, data)


def export_torchscript(generator: torch.nn.Module, g_cfg: GeneratorConfig, path: Path) -> None:
    args = example_inputs(g_cfg, 2)
    with _quiet_exporter():
        traced = torch.jit.trace(generator, args)
        traced.save(str(path))
        strip_source_paths(path)
        loaded = torch.jit.load(str(path))
    check = example_inputs(g_cfg, 5, seed=7)
    with torch.no_grad():
        diff = (loaded(*check) - generator(*check)).abs().max().item()
    if diff > PARITY_TOLERANCE:
        raise ExportError(f"{path}: TorchScript differs from PyTorch by {diff:.3g}")


def export_program(generator: torch.nn.Module, g_cfg: GeneratorConfig, path: Path) -> None:
    names = input_names(g_cfg)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _quiet_exporter():
        program = torch.export.export(
            generator, example_inputs(g_cfg, 2), dynamic_shapes={n: {0: batch} for n in names}
        )
        for node in program.graph.nodes:  # stack traces name the build machine's files
            node.meta.pop("stack_trace", None)
        torch.export.save(program, str(path))


def export_run(
    run_dir: Path | str,
    repo: Path | str = "models",
    name: str | None = None,
    version: str | None = None,
    overwrite: bool = False,
    evaluate: bool = True,
    torch_export: bool = True,
    latent_scheme: str = EXPORT_LATENT_SCHEME,
    weights: str = "auto",
) -> Path:
    """Export ``run_dir``'s latest checkpoint to ``repo/name/version``.

    ``torch_export=False`` leaves out model.pt2 (no server backend reads it;
    the model zoo drops it to stay small). ``latent_scheme`` is recorded in
    the manifest and decides how the server turns seeds into codes.
    ``weights`` picks the weight average or the raw generator (choose_weights);
    the manifest records which (training.weights, metrics.weight_choice).
    """
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir)
    cfg = TrainConfig.from_dict(ckpt["train_config"])
    variant = get_variant(cfg.variant)  # the variant class says what its manifest holds
    g_cfg = GeneratorConfig(**ckpt["generator_config"])
    name = name or run_dir.name
    model_dir = Path(repo) / name
    version = version or next_version(model_dir)
    final_dir = model_dir / version
    if final_dir.exists() and not overwrite:
        raise FileExistsError(f"{final_dir} exists; pass --overwrite or another --version")
    generator, weight_choice = choose_weights(
        ckpt, cfg.dataset, weights, where=str(run_dir), pinned_by=variant.average_pinned_by
    )
    evaluation = dict(ckpt.get("evaluation") or {})

    info = dataset_info(cfg.dataset)
    # class names: MNIST "0".."9"; Fashion-MNIST "tshirt".."boot"
    try:
        cond = Conditioning(**variant.manifest_conditioning(cfg, g_cfg, evaluation, info.class_names))
    except ValueError as exc:
        raise ExportError(f"{run_dir}: {exc}") from None
    latent = LatentSpec(dim=g_cfg.z_dim)

    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.staging-", dir=model_dir))
    try:
        exporter = export_onnx(generator, g_cfg, staging / "model.onnx")
        strip_source_paths(staging / "model.onnx")
        parity = check_onnx(staging / "model.onnx", generator, g_cfg)
        export_torchscript(generator, g_cfg, staging / "model.ts")
        files = {"onnx": "model.onnx", "torchscript": "model.ts"}
        try:
            if torch_export:
                export_program(generator, g_cfg, staging / "model.pt2")
                files["torch_export"] = "model.pt2"
        except Exception as exc:  # optional artefact
            warnings.warn(f"torch.export failed, shipping without model.pt2: {exc}")
        encoder_parity = None
        if variant.has_encoder:  # BiGAN, VAE-GAN: see "The encoder" below
            encoder_parity = export_encoder(ckpt, staging / ENCODER_FILE)
            strip_source_paths(staging / ENCODER_FILE)
            files["encoder_onnx"] = ENCODER_FILE
        training = {
            "variant": cfg.variant,
            "epochs": int(ckpt["epoch"]),
            **variant.manifest_progress(ckpt["state"]),  # G and D updates made
            **({"g_steps": cfg.g_steps} if cfg.g_steps else {}),
            "seed": cfg.seed,
            "duration_seconds": round(float(ckpt["elapsed_seconds"]), 1),
            "final_losses": ckpt.get("losses", {}),
            "batch_size": cfg.batch_size,
            "lr_g": cfg.lr_g,
            "lr_d": cfg.lr_d,
            "g_ema": cfg.g_ema,
            "weights": weight_choice["weights"],
            "lr_decay_start": cfg.lr_decay_start,
            "num_threads": cfg.num_threads,
            "betas": [cfg.beta1, cfg.beta2],
            "dataset_size": int(ckpt["dataset_size"]),
            "generator_parameters": count_parameters(generator),
            "discriminator_parameters": int(ckpt["discriminator_parameters"]),
            "width": cfg.width,
            "device": cfg.device,
            "torch_version": torch.__version__,
            "onnx_exporter": exporter,
            "onnx_opset": parity["opset"],
            **variant.manifest_training(cfg),
            **({"limit": cfg.limit} if cfg.limit else {}),
        }
        shape = output_shape(g_cfg)
        manifest = Manifest(
            name=name,
            version=version,
            variant=cfg.variant,
            dataset=cfg.dataset,
            # Point data (ring8, grid25, gaussian1d) ships as 1 x D x 1 "images" whose
            # value_range is the data's box: the server maps it to 0..255.
            image=ImageSpec(height=shape[1], width=shape[2], channels=shape[0], value_range=info.value_range),
            latent=latent,
            conditioning=cond,
            inputs=expected_inputs(latent, cond),
            output=TensorSpec("images", (-1, *shape), "float32"),
            files={fmt: FileEntry(rel, sha256_file(staging / rel)) for fmt, rel in files.items()},
            training=training,
            latent_scheme=latent_scheme,
            metrics={
                "onnx_parity": parity,
                **({"encoder_onnx_parity": encoder_parity} if encoder_parity else {}),
                "training_eval": _compact(evaluation),
                "weight_choice": weight_choice,
            },
        )
        write_manifest(staging, manifest)
        if evaluate and cfg.dataset in ("mnist", "mnist-idx"):  # the judge knows digits only
            result = evaluate_model_dir(staging)
            result.pop("confusion", None)
            result.pop("model", None)
            write_manifest(staging, replace(manifest, metrics={**manifest.metrics, "eval": result}))
        # mkdtemp made the staging directory 0700; a served repository must be
        # readable by the (non-root) server, so give it a plain directory's mode.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        staging.rename(final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final_dir


def _compact(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The training-time classifier verdict, minus bulky fields."""
    return {k: v for k, v in evaluation.items() if k not in ("confusion", "hungarian")}


# --------------------------------------------------------------------------
# The encoder (BiGAN, VAE-GAN): encoder.onnx, listed as files.encoder_onnx.
# The server's Encode RPC feeds it ``images`` float32 (N, C, H, W) in the
# image value_range and reads ``z`` (N, latent_dim); for VAE-GAN z is the
# posterior mean mu.

ENCODER_FILE = "encoder.onnx"


def load_encoder(ckpt: dict[str, Any]) -> torch.nn.Module:
    """images -> z, in eval mode, from a checkpoint that has an encoder."""
    state = ckpt["state"]
    encoder = build_net(state["encoder_config"])
    encoder.load_state_dict(state["encoder"])
    return LatentMean(encoder, int(state["encoder_z_dim"])).eval()


def encoder_example(shape: tuple[int, ...], batch: int, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] (points in a similar box): enough to check parity."""
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def export_encoder(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write ``path`` and check it against PyTorch; returns the parity record."""
    encoder = load_encoder(ckpt)
    shape = tuple(int(d) for d in ckpt.get("sample_shape", (1, 28, 28)))
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _quiet_exporter():
        torch.onnx.export(
            encoder,
            (encoder_example(shape, 2),),
            str(path),
            dynamo=True,
            input_names=["images"],
            output_names=["z"],
            dynamic_shapes={"images": {0: batch}},
            external_data=False,
            optimize=True,
            verbose=False,
        )
    return check_encoder_onnx(path, encoder, shape)


def check_encoder_onnx(path: Path, encoder: torch.nn.Module, shape: tuple[int, ...]) -> dict[str, Any]:
    """I/O names, self-containedness and ORT-vs-PyTorch parity at batch 1 and 64."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ExportError(f"{path}: weights stored outside the file")
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    if names != (["images"], ["z"]):
        raise ExportError(f"{path}: graph inputs/outputs {names}, expected ['images'] / ['z']")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in PARITY_BATCHES:
        x = encoder_example(shape, batch, seed=200 + batch)
        with torch.no_grad():
            expected = encoder(x).numpy()
        actual = session.run(["z"], {"images": x.numpy()})[0]
        if actual.shape != expected.shape or actual.dtype != np.float32:
            raise ExportError(f"{path}: batch {batch} gave {actual.dtype} {actual.shape}, expected float32 {expected.shape}")
        diff = float(np.abs(actual - expected).max())
        if not diff <= PARITY_TOLERANCE:
            raise ExportError(
                f"{path}: onnxruntime differs from PyTorch by {diff:.3g} at batch {batch} (tolerance {PARITY_TOLERANCE})"
            )
        worst = max(worst, diff)
    return {"max_abs_diff": worst, "batches": list(PARITY_BATCHES)}
