"""The training loop shared by every variant.

    gan-train fit --variant dcgan --dataset mnist --epochs 20 --seed 0 --out runs/dcgan

or from Python::

    from gan_training.config import TrainConfig
    from gan_training.trainer import fit
    fit(TrainConfig(variant="dcgan", epochs=20, out="runs/dcgan"))

After every epoch the run directory gets:

    checkpoint.pt            latest state (torch.load(..., weights_only=True))
    samples/epoch_NNN.png    a grid from a fixed latent batch
    metrics.jsonl            one JSON line per epoch: mean losses, timing and
                             the classifier's verdict on fresh samples

``resume=True`` continues from checkpoint.pt, including the RNG state, so a
run interrupted after epoch k and resumed ends bit-identical (on CPU) to an
uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gan_contract.files import atomic_path
from gan_contract.images import make_grid, to_uint8
from PIL import Image
from tqdm import tqdm

from . import ddp, plots
from .classifier import JUDGE_DATASET, classify, load_classifier
from .config import TrainConfig
from .data import Dataset, dataset_info, load_dataset, subset, toy_density
from .models import count_parameters
from .variants import VARIANTS, Variant, get_variant

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "gan_training.checkpoint/1"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def lr_scale(cfg: TrainConfig, epoch: int) -> float:
    """1 until epoch lr_decay_start * epochs, then linearly down to 1 / (decay epochs)."""
    decay_epochs = cfg.epochs - int(cfg.lr_decay_start * cfg.epochs)
    if decay_epochs <= 0:
        return 1.0
    return min(1.0, (cfg.epochs - epoch + 1) / decay_epochs)


def lr_scale_g_updates(cfg: TrainConfig, g_updates: int) -> float:
    """With a budget of ``cfg.g_steps`` G updates: ``lr_scale`` counted in G
    updates, 1 until lr_decay_start * g_steps of them, then linearly down to
    1 / (decay updates) for the last one. ``g_updates``: those made so far."""
    assert cfg.g_steps
    decay = cfg.g_steps - int(cfg.lr_decay_start * cfg.g_steps)
    if decay <= 0:
        return 1.0
    return min(1.0, (cfg.g_steps - g_updates) / decay)


def build_variant(cfg: TrainConfig, device: torch.device) -> tuple[TrainConfig, Variant]:
    """The resolved config (variant defaults filled in) and its variant."""
    cls = get_variant(cfg.variant)
    cfg = cls.resolve(cfg)
    # Adam's betas: the variant's (resolve) or else DCGAN's 0.5 / 0.999.
    cfg = replace(cfg, beta1=0.5 if cfg.beta1 is None else cfg.beta1, beta2=0.999 if cfg.beta2 is None else cfg.beta2)
    return cfg, cls(cfg, device)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a gan_training checkpoint ({CHECKPOINT_FORMAT})")
    return ckpt


def save_grid(images: torch.Tensor, nrow: int, path: Path, pad: int = 2, scale: int = 2) -> None:
    """Tile (N, 1, H, W) images in [-1, 1] into one PNG, ``nrow`` per row, on grey."""
    pixels = to_uint8(images.detach().cpu().float().numpy(), (-1.0, 1.0))
    canvas = make_grid(pixels, cols=nrow, pad=pad, background=64)
    img = Image.fromarray(canvas[..., 0], mode="L")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def _judge(device: torch.device, dataset: str = "mnist"):
    model = load_classifier(device="cpu", dataset=JUDGE_DATASET.get(dataset, "mnist"))
    return lambda images: classify(images.cpu(), model)


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train ``cfg.variant`` into ``cfg.out``; returns the run directory."""
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = None
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        saved = TrainConfig.from_dict(ckpt["train_config"])
        if saved.variant != cfg.variant:
            raise ValueError(f"{ckpt_path}: is a {saved.variant!r} run, not {cfg.variant!r}")
        # A resumed run keeps its hyperparameters; only how long, where and
        # with how many threads may change.
        cfg = replace(
            saved,
            epochs=cfg.epochs,
            g_steps=cfg.g_steps,
            device=cfg.device,
            num_threads=cfg.num_threads,
            out=cfg.out,
            data_dir=cfg.data_dir,
        )
    elif ckpt_path.exists():
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue that run, or pick another --out")

    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    dist_ctx, device = ddp.setup(device)  # under torchrun with WORLD_SIZE > 1: see ddp.py
    main = dist_ctx.is_main  # only rank 0 logs, draws, evaluates and saves
    torch.manual_seed(cfg.seed)
    dataset = subset(load_dataset(cfg.dataset, data_dir=cfg.data_dir), cfg.limit, cfg.seed)
    cfg, variant = build_variant(cfg, device)
    variant.setup(dataset)
    _check_sample_shape(cfg, variant, dataset)
    images, labels = dataset.images.to(device), dataset.labels.to(device)
    n = len(dataset)
    steps = ddp.per_rank(n, dist_ctx) // cfg.batch_size  # drop the ragged last batch: BatchNorm dislikes tiny ones
    if cfg.steps_per_epoch:
        steps = min(steps, cfg.steps_per_epoch)
    if steps < 1:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the dataset ({n} images)")

    start_epoch, elapsed, history = 0, 0.0, {}
    if ckpt is not None:
        variant.load_state_dict(ckpt["state"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed_seconds"])
        history = {"losses": ckpt.get("losses", {}), "evaluation": ckpt.get("evaluation", {})}
    ddp.wrap(variant, dist_ctx, device, cfg.seed + start_epoch)
    if main:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    grid_codes, grid_row = variant.grid_codes()
    judge = None
    # The budget: cfg.epochs passes over the data, or (cfg.g_steps) that many
    # G updates, epochs then being passes until the budget is spent.
    budget = cfg.g_steps
    bar = tqdm(
        total=budget or cfg.epochs * steps,
        initial=variant.g_updates if budget else start_epoch * steps,
        desc=f"{cfg.variant}",
        unit="G update" if budget else "step",
        disable=not progress or not main,
        dynamic_ncols=True,
    )
    epoch = start_epoch
    while (variant.g_updates < budget) if budget else (epoch < cfg.epochs):
        epoch += 1
        t0 = time.time()
        if not budget:
            variant.set_lr_scale(lr_scale(cfg, epoch))
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}  # e.g. loss_g comes only from steps that update G
        loss_rows: list[dict[str, float]] = []
        if dist_ctx.distributed:
            perm = ddp.epoch_indices(n, epoch, cfg.seed, dist_ctx).to(device)  # this rank's share
        else:
            perm = torch.randperm(n).to(device)
        for i in range(steps):
            if budget:
                variant.set_lr_scale(lr_scale_g_updates(cfg, variant.g_updates))
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            step_losses = variant.train_step(images[idx], labels[idx])
            variant.after_step()
            for k, v in step_losses.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            loss_rows.append({"step": variant.step_count, "epoch": epoch, **step_losses})
            bar.update(int(variant.g_stepped) if budget else 1)
            if i % 10 == 0:
                bar.set_postfix({"epoch": epoch, **{k: f"{v:.3f}" for k, v in step_losses.items()}}, refresh=False)
            if budget and variant.g_updates >= budget:
                break  # the budget ends mid-epoch
        last = variant.g_updates >= budget if budget else epoch == cfg.epochs
        train_seconds = time.time() - t0
        elapsed += train_seconds
        mean_losses = {k: v / counts[k] for k, v in ddp.mean_over_ranks(sums, dist_ctx).items()}
        record: dict[str, Any] = {
            "epoch": epoch,
            "steps": variant.step_count,  # D updates so far
            "g_updates": variant.g_updates,
            "epoch_seconds": round(train_seconds, 3),
            "elapsed_seconds": round(elapsed, 3),
            "losses": mean_losses,
        }
        record.update(variant.end_epoch(mean_losses))  # e.g. EBGAN's margin
        if dist_ctx.distributed:
            record["ddp"] = {**dist_ctx.to_dict(), "params_in_sync": ddp.params_in_sync(variant, dist_ctx)}
        if not main:
            continue
        wrapped = ddp.unwrap(variant)  # plain nets below: no collectives on rank 0 alone
        evaluation = history.get("evaluation", {})
        if (cfg.eval_every and epoch % cfg.eval_every == 0) or last:
            judge = judge or _judge(device, cfg.dataset)
            evaluation = variant.evaluate(judge)
            record["eval"] = evaluation
            bar.write(f"epoch {epoch}: {_headline(evaluation)}")
        samples_png = out / "samples" / f"epoch_{epoch:03d}.png"
        if dataset_info(cfg.dataset).is_points:  # the generated distribution over the real one
            real = dataset.images[torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[:2000]]
            title = f"{cfg.variant} on {cfg.dataset}, epoch {epoch}"
            if real.shape[2] == 1:  # 1-D: p_data, p_g, D(x) and D*(x), as the design documents draw it
                _save_density_plot(cfg, variant, grid_codes, real, samples_png, title)
            else:
                plots.save_point_plot(variant.generate(grid_codes), real, samples_png, title)
        else:
            save_grid(variant.generate(grid_codes), grid_row, samples_png)
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        plots.append_loss_rows(out / "losses.csv", loss_rows)
        plots.save_loss_curve(out / "losses.csv", out / "losses.png", f"{cfg.variant} on {cfg.dataset}")
        history = {"losses": mean_losses, "evaluation": evaluation}
        _save_checkpoint(
            ckpt_path, cfg, variant, epoch, steps, elapsed, n, history, device, sample_shape=tuple(images.shape[1:])
        )
        ddp.rewrap(variant, wrapped)
    bar.close()
    ddp.shutdown(dist_ctx)
    return out


def _save_density_plot(
    cfg: TrainConfig, variant: Variant, codes: dict[str, torch.Tensor], real: torch.Tensor, path: Path, title: str
) -> None:
    """The 1-D figure (plots.save_density_plot) over the data's value range."""
    low, high = dataset_info(cfg.dataset).value_range
    x = np.linspace(low, high, 400)
    d = variant.discriminator_probability(torch.from_numpy(x).float().view(-1, 1, 1, 1))
    fake = variant.generate(codes)
    plots.save_density_plot(fake, real, path, x, toy_density(cfg.dataset, x), None if d is None else d.numpy(), title)


def _check_sample_shape(cfg: TrainConfig, variant: Variant, dataset: Dataset) -> None:
    """Fail early when the variant's generator cannot make this data (e.g.
    dcgan's 28x28 images for the 2-D ring8). Draws from its own generator,
    so the training stream is untouched."""
    codes = variant.sample_codes(2, torch.Generator().manual_seed(0))
    got = tuple(variant.generate(codes).shape[1:])
    want = tuple(dataset.images.shape[1:])
    if got != want:
        points = ", ".join(name for name, cls in VARIANTS.items() if cls.supports_points)
        raise ValueError(
            f"variant {cfg.variant!r} generates samples of shape {got} but dataset {cfg.dataset!r} has {want}; "
            f"the variants with MLP nets for point data are: {points}"
        )


def _headline(evaluation: dict[str, Any]) -> str:
    if "modes_total" in evaluation:
        if "modes_captured" not in evaluation:
            return f"no mode judged: finite samples {evaluation['finite']}"
        line = (
            f"modes captured {evaluation['modes_captured']}/{evaluation['modes_total']} "
            f"({evaluation['modes_captured_20']} with >= 20 samples), "
            f"high-quality samples {evaluation['high_quality_fraction']:.3f}"
        )
        if "wasserstein_1d" in evaluation:
            line += f", W1 {evaluation['wasserstein_1d']:.3f} (floor {evaluation['wasserstein_1d_floor']:.3f})"
        return line
    if "matched_accuracy" in evaluation:
        line = (
            f"accuracy {evaluation['matched_accuracy']:.3f}, worst digit {evaluation['worst_digit']} "
            f"at {evaluation['worst_digit_accuracy']:.3f}"
        )
        if "q_held_out_accuracy" in evaluation:  # InfoGAN's Q on held-out real digits
            line += f", Q on {evaluation['q_held_out_size']} held-out digits {evaluation['q_held_out_accuracy']:.3f}"
        return line
    if "accuracy" in evaluation:
        return (
            f"accuracy {evaluation['accuracy']:.3f}, worst digit {evaluation['worst_digit']} "
            f"at {evaluation['worst_digit_accuracy']:.3f}"
        )
    return f"classes covered {evaluation.get('classes_covered')}, histogram {evaluation.get('histogram')}"


def _save_checkpoint(
    path: Path,
    cfg: TrainConfig,
    variant: Variant,
    epoch: int,
    steps: int,
    elapsed: float,
    dataset_size: int,
    history: dict[str, Any],
    device: torch.device,
    sample_shape: tuple[int, ...] = (1, 28, 28),
) -> None:
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "variant": cfg.variant,
        "conditioning": variant.conditioning,
        "epoch": epoch,
        "steps_per_epoch": steps,
        "g_updates": variant.g_updates,
        "elapsed_seconds": elapsed,
        "dataset_size": dataset_size,
        "sample_shape": list(sample_shape),  # per-sample (C, H, W): (1, 28, 28) images, (1, D, 1) points
        "train_config": cfg.to_dict(),
        "generator_config": variant.g_config.to_dict(),
        "discriminator_config": variant.d_config.to_dict(),
        "generator_parameters": count_parameters(variant.G),
        "discriminator_parameters": count_parameters(variant.D),
        "losses": history["losses"],
        "evaluation": history["evaluation"],
        "state": _to_cpu(variant.state_dict()),
        "rng": rng,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
