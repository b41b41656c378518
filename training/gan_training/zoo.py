"""The model zoo: multi-seed toy results and docs/model-zoo.md, both built
from ``gan-train eval`` JSON, never by hand.

* :func:`seeds_summary` judges every seed's export of a 2-D model with the
  VEEGAN/PacGAN protocol and reports mean +- standard error over seeds, and
  which seed is best (most modes, then most high-quality samples, then the
  lowest reverse KL); ``gan-train zoo-seeds`` bundles that seed.
* :func:`write_zoo_page` renders the table (one row per bundled model), the
  seed statistics, the published figures beside ours, and an 8x8 sample grid
  per model (a scatter plot for 2-D models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from gan_contract.images import make_grid, to_uint8
from gan_contract.manifest import load_manifest

from .data import dataset_info, toy_modes
from .evaluation import _feeds, _run

# Published figures, quoted with their sources (see docs/model-zoo.md for
# how their protocols differ from ours).
PUBLISHED_TOY = [
    # (dataset, method, modes, high-quality %, reverse KL, source)
    ("ring8", "GAN", "1", "99.3", "—", "VEEGAN (Srivastava et al. 2017), Table 1"),
    ("ring8", "VEEGAN", "8", "52.9", "—", "VEEGAN (Srivastava et al. 2017), Table 1"),
    ("ring8", "PacGAN2", "7.9", "95.6", "0.07", "PacGAN (Lin et al. 2018), Table 1"),
    ("grid25", "GAN", "3.3", "0.5", "—", "VEEGAN (Srivastava et al. 2017), Table 1"),
    ("grid25", "VEEGAN", "24.6", "40.0", "—", "VEEGAN (Srivastava et al. 2017), Table 1"),
    ("grid25", "PacGAN4", "24.8", "—", "0.04", "PacGAN (Lin et al. 2018), Table 1"),
]
INFOGAN_PUBLISHED_ERROR = 0.05  # Chen et al. 2016, Section 7.1 (full MNIST)


def _mean_se(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # an infinite reverse KL (no high-quality sample) has no spread
        se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {"mean": float(arr.mean()), "se": se}


def seeds_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``results``: seed -> eval JSON of that seed's export (with "modes")."""
    if not results:
        raise ValueError("no seeds to summarise")
    modes = {seed: r["modes"] for seed, r in results.items()}

    def rank(seed: str) -> tuple:
        m = modes[seed]
        return (m["modes_captured"], m["high_quality_fraction"], -m["reverse_kl"])

    best = max(modes, key=rank)
    return {
        "dataset": next(iter(results.values()))["dataset"],
        "variant": next(iter(results.values()))["variant"],
        "seeds": sorted(modes, key=int),
        "per_seed": {seed: modes[seed] for seed in sorted(modes, key=int)},
        "modes_captured": _mean_se([m["modes_captured"] for m in modes.values()]),
        "high_quality_fraction": _mean_se([m["high_quality_fraction"] for m in modes.values()]),
        "reverse_kl": _mean_se([m["reverse_kl"] for m in modes.values()]),
        "best_seed": best,
    }


# --------------------------------------------------------------------------
# Sample grids


def sample_grid(model_dir: Path, out: Path, seed: int = 0) -> None:
    """An 8x8 grid (images) or a 2,500-point scatter over the modes (2-D)."""
    import onnxruntime as ort  # only drawing the zoo page needs the ONNX runtime
    from PIL import Image, ImageDraw

    manifest = load_manifest(model_dir)
    session = ort.InferenceSession(str(model_dir / manifest.files["onnx"].path), providers=["CPUExecutionProvider"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if dataset_info(manifest.dataset).kind == "points":
        means, std = toy_modes(manifest.dataset)
        pts = _run(session, _feeds(manifest, seed, 2500, None)).reshape(2500, -1)
        size, margin = 320, 10
        lim = float(np.abs(means).max()) * 1.3
        img = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(img)

        def to_px(p: np.ndarray) -> tuple[float, float]:
            scale = (size - 2 * margin) / (2 * lim)
            return margin + (p[0] + lim) * scale, size - margin - (p[1] + lim) * scale

        for m in means:  # the modes' 3-sigma discs
            x, y = to_px(m)
            r = 3 * std * (size - 2 * margin) / (2 * lim)
            draw.ellipse((x - r, y - r, x + r, y + r), outline=(200, 60, 60))
        for p in pts:
            x, y = to_px(p)
            draw.point((x, y), fill=(20, 60, 160))
        img.save(out)
        return
    classes = np.arange(64) % 10
    images = _run(session, _feeds(manifest, seed, 64, classes))  # (64, C, H, W) in the value range
    grid = make_grid(to_uint8(images, manifest.image.value_range), cols=8, pad=0)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(out)


# --------------------------------------------------------------------------
# The page


def _fmt(value: Any, spec: str = ".2f", none: str = "—") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def table_rows(evals: list[dict[str, Any]]) -> list[str]:
    head = (
        "| model | variant | dataset | epochs | training time | FLD ↓ | classes covered | KL to uniform ↓ "
        "| conditional accuracy (worst class) | G parameters | size |"
    )
    rows = [head, "|" + "---|" * 11]
    for r in evals:
        if "modes" in r:
            m = r["modes"]
            quality = f"modes {m['modes_captured']}/{m['modes_total']}, HQ {m['high_quality_fraction']:.1%}"
            fld, covered, kl = quality, "—", f"rev. KL {m['reverse_kl']:.3f}"
        else:
            fld = _fmt(r.get("fld"))
            covered = f"{r['classes_covered']}/10"
            kl = _fmt(r.get("kl_to_uniform"), ".3f")
        if "overall_accuracy" in r:
            names = r["class_names"]
            acc = f"{r['overall_accuracy']:.1%} ({names[r['worst_digit']]}: {r['worst_digit_accuracy']:.0%})"
        else:
            acc = "—"
        secs = r.get("training_seconds")
        rows.append(
            f"| `{r['name']}` | {r['variant']} | {r['dataset']} | {_fmt(r.get('epochs'), 'd')} "
            f"| {_fmt(secs, '.0f')} s | {fld} | {covered} | {kl} | {acc} "
            f"| {_fmt(r.get('generator_parameters'), ',')} | {_size(r['size_bytes'])} |"
        )
    return rows


def write_zoo_page(
    eval_dir: Path, models: Path, out: Path, img_dir: Path, readme: Path | None = None, version: str = "1"
) -> str:
    """Render docs/model-zoo.md from ``eval_dir/*.json`` (and the grids)."""
    evals = [json.loads(p.read_text()) for p in sorted(eval_dir.glob("*.json")) if not p.name.endswith("-seeds.json")]
    seeds = {p.name[: -len("-seeds.json")]: json.loads(p.read_text()) for p in sorted(eval_dir.glob("*-seeds.json"))}
    if not evals:
        raise FileNotFoundError(f"{eval_dir}: no eval JSON files; run `gan-train eval MODEL_DIR --out ...` first")
    order = {"mnist": 0, "fashion-mnist": 1, "ring8": 2, "grid25": 3}
    evals.sort(key=lambda r: (order.get(r["dataset"], 9), r["name"]))
    rows = table_rows(evals)
    for r in evals:
        sample_grid(models / r["name"] / version, img_dir / f"{r['name']}.png")
    rel_img = Path("img") / img_dir.name

    lines = [
        "# Model zoo",
        "",
        "<!-- Generated by `make zoo` (gan-train zoo-table) from the eval JSON in docs/zoo/. Do not edit. -->",
        "",
        "Every bundled model, judged by `gan-train eval models/NAME/1` exactly as it is served",
        "(ONNX Runtime, codes drawn as the server draws them, request seed 0).",
        "",
        *_metric_notes(evals),
        "",
        *rows,
        "",
        *_seed_section(seeds),
        *_published_section(evals, seeds),
        *_notes(eval_dir),
        "## Samples",
        "",
        "Request seed 0; conditional models ask for classes 0, 1, …, 9, 0, … in reading order.",
        "2-D models: 2,500 samples (blue) over the modes' 3σ circles (red).",
        "",
    ]
    for r in evals:
        lines += [f"### `{r['name']}`", "", f"![{r['name']}]({rel_img.as_posix()}/{r['name']}.png)", ""]
    text = "\n".join(lines)
    out.write_text(text)
    if readme is not None:
        _update_readme(readme, rows)
    return text


def _metric_notes(evals: list[dict[str, Any]]) -> list[str]:
    clf = {r["classifier"]["dataset"]: r["classifier"] for r in evals if "classifier" in r}
    notes = [
        "- **FLD** is the Fréchet distance between the project classifier's pooled features (128-d) of",
        "  10,000 generated images and of the real images (MNIST: the 5,000 embedded digits;",
        "  Fashion-MNIST: the 10,000 test images). It is *not* Inception-FID and is not comparable with",
        "  FID tables; it compares our models with each other. Lower is better.",
        "- **Classes covered**: classes with at least 2 % of the 10,000 images (a fifth of a fair share),",
        "  by the classifier's prediction. **KL to uniform**: KL(predicted-class histogram ‖ uniform), nats.",
        "- **Conditional accuracy**: the share of images that are the class asked for, 100 per class;",
        "  for InfoGAN after the category→digit matching stored in the manifest. Worst class in brackets.",
        "- **2-D models**: the VEEGAN/PacGAN protocol on 2,500 samples (modes captured, high-quality",
        "  share, reverse KL); mean ± standard error over seeds below.",
    ]
    for name, c in sorted(clf.items()):
        if c.get("held_out_accuracy") is not None:
            notes.append(
                f"- The {name} classifier is right on {c['held_out_accuracy']:.1%} of "
                f"{c['held_out_size']:,} held-out real images."
            )
    return notes


def _seed_section(seeds: dict[str, dict[str, Any]]) -> list[str]:
    if not seeds:
        return []
    lines = [
        "## 2-D mixtures over seeds",
        "",
        "| model | seeds | modes captured | high quality | reverse KL | bundled seed |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in sorted(seeds.items()):
        total = next(iter(s["per_seed"].values()))["modes_total"]
        lines.append(
            f"| `{name}` | {len(s['seeds'])} | {s['modes_captured']['mean']:.1f} ± {s['modes_captured']['se']:.1f} "
            f"/ {total} | {s['high_quality_fraction']['mean']:.1%} ± {s['high_quality_fraction']['se']:.1%} "
            f"| {s['reverse_kl']['mean']:.3f} ± {s['reverse_kl']['se']:.3f} | {s['best_seed']} |"
        )
    lines.append("")
    return lines


def _published_section(evals: list[dict[str, Any]], seeds: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Published figures beside ours",
        "",
        "| dataset | method | modes | high quality % | reverse KL | source |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, method, modes, hq, rkl, source in PUBLISHED_TOY:
        lines.append(f"| {dataset} | {method} | {modes} | {hq} | {rkl} | {source} |")
    for name, s in sorted(seeds.items()):
        lines.append(
            f"| {s['dataset']} | ours: `{name}` ({s['variant']}, mean of {len(s['seeds'])} seeds) "
            f"| {s['modes_captured']['mean']:.1f} | {100 * s['high_quality_fraction']['mean']:.1f} "
            f"| {s['reverse_kl']['mean']:.2f} | this page |"
        )
    lines += [
        "",
        "Where the protocols differ: both papers train on their own sample streams for far longer,",
        "with their own nets (PacGAN packs 2–4 samples into the discriminator; VEEGAN adds a",
        "reconstructor), and PacGAN's figures are means over its seeds. Our ring has radius 1 and",
        "σ = 0.01, our grid means are {−4, −2, 0, 2, 4}² with σ = 0.05. High quality is within 3σ of",
        "the nearest mode, on 2,500 samples, as in both papers; our reverse KL counts high-quality",
        "samples only (as PacGAN's reference code bins them).",
        "",
    ]
    infogan = [r for r in evals if r["variant"] == "infogan" and "overall_accuracy" in r]
    if infogan:
        lines += [
            f"InfoGAN (Chen et al. 2016, Section 7.1) reports a {INFOGAN_PUBLISHED_ERROR:.0%} error when its",
            "categorical code is used to classify the full 60,000-digit MNIST. Ours is a different measurement:",
            "the project classifier judges the generator's samples for each category after the",
            "category→digit matching, on a model trained on 5,000 digits. Error = 1 − accuracy:",
            "",
        ]
        for r in infogan:
            lines.append(
                f"- `{r['name']}`: {1 - r['overall_accuracy']:.1%} error ({r['overall_accuracy']:.1%} accuracy)"
            )
        lines.append("")
    return lines


def _notes(eval_dir: Path) -> list[str]:
    """The hand-written notes (what was tried, what missed) kept beside the JSON."""
    path = eval_dir / "notes.md"
    return [path.read_text().rstrip(), ""] if path.is_file() else []


README_START = "<!-- zoo-table:start -->"
README_END = "<!-- zoo-table:end -->"


def _update_readme(readme: Path, rows: list[str]) -> None:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme}: no {README_START} ... {README_END} markers for the zoo table")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + README_START + "\n" + "\n".join(rows) + "\n" + README_END + tail)
