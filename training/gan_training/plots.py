"""Pictures the trainer writes besides the image grids: the generated
distribution over the real one for 2-D data; for 1-D data the figure of
Goodfellow et al. (2014, Figure 1) that the design documents show: p_data,
p_g, D(x) and the optimal D*(x) = p_data / (p_data + p_g); and the loss
curves.

matplotlib's object API with its Agg canvas only (no pyplot, no global
backend switch), so training never needs a display.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def save_point_plot(fake: torch.Tensor, real: torch.Tensor, path: Path, title: str = "") -> None:
    """2-D: generated points (red) over real ones (grey). 1-D: histograms."""
    fake = fake.detach().cpu().flatten(1).numpy()
    real = real.detach().cpu().flatten(1).numpy()
    fig = _figure(5, 5 if fake.shape[1] >= 2 else 3.5)
    ax = fig.add_subplot(1, 1, 1)
    if fake.shape[1] >= 2:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", alpha=0.5, label="real", linewidths=0)
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.6, label="generated", linewidths=0)
        ax.set_aspect("equal", adjustable="datalim")
    else:
        finite = fake[np.isfinite(fake[:, 0]), 0]
        lo, hi = np.percentile(np.concatenate([real[:, 0], finite]) if len(finite) else real[:, 0], [0.5, 99.5])
        bins = np.linspace(lo, hi, 60)
        ax.hist(real[:, 0], bins=bins, density=True, color="0.6", alpha=0.6, label="real")
        ax.hist(np.clip(finite, lo, hi), bins=bins, density=True, color="tab:red", alpha=0.5, label="generated")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def kde_density(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A Gaussian kernel density estimate (scipy's, Scott's bandwidth) of 1-D
    ``samples`` at ``x``; a histogram where the samples are too few or all
    equal for a kernel estimate. Non-finite samples are left out."""
    from scipy.stats import gaussian_kde

    s = np.asarray(samples, dtype=np.float64).reshape(-1)
    s = s[np.isfinite(s)]
    if len(s) >= 2 and s.std() > 0:
        return gaussian_kde(s)(x)
    edges = np.concatenate([[x[0]], (x[1:] + x[:-1]) / 2, [x[-1]]])
    counts, _ = np.histogram(np.clip(s, x[0], x[-1]), bins=edges)
    return counts / max(1, len(s)) / np.diff(edges)


def save_density_plot(
    fake: torch.Tensor,
    real: torch.Tensor,
    path: Path,
    x: np.ndarray,
    p_data: np.ndarray,
    d: np.ndarray | None,
    title: str = "",
) -> dict[str, np.ndarray | None]:
    """1-D data as in Goodfellow et al.'s Figure 1: p_data (black, dotted;
    ``p_data`` is its density at ``x``) over a histogram of real samples,
    p_g (green: a histogram of ``fake`` and its kernel density estimate),
    and on the right-hand axis D(x) (blue, dashed; ``d`` at ``x``, None where
    D is no probability) and D*(x) = p_data / (p_data + p_g) (blue, dotted),
    the optimal discriminator for this G, where p_data + p_g is at least
    0.2 % of its peak. Returns the curves drawn."""
    fake_np = fake.detach().cpu().reshape(-1).double().numpy()
    real_np = real.detach().cpu().reshape(-1).double().numpy()
    p_g = kde_density(fake_np, x)
    total = p_data + p_g
    # Left undrawn (NaN) where both densities vanish: there D* is a ratio of two tails.
    d_star = np.divide(p_data, total, out=np.full_like(total, np.nan), where=total > 2e-3 * total.max())
    fig = _figure(6, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(x[0], x[-1], 80)
    ax.hist(real_np, bins=bins, density=True, color="0.8", label="real samples")
    finite = fake_np[np.isfinite(fake_np)]
    ax.hist(np.clip(finite, x[0], x[-1]), bins=bins, density=True, color="tab:green", alpha=0.25, label="G samples")
    ax.plot(x, p_data, ":", color="black", lw=1.5, label="p_data")
    ax.plot(x, p_g, "-", color="tab:green", lw=1.5, label="p_g (KDE)")
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel("density", fontsize=8)
    right = ax.twinx()
    right.plot(x, d_star, ":", color="tab:blue", lw=1.5, label="D* = p_data / (p_data + p_g)")
    if d is not None:
        right.plot(x, d, "--", color="tab:blue", lw=1.5, label="D(x)")
    right.set_ylim(0, 1)
    right.set_ylabel("D", fontsize=8)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return {"x": x, "p_data": p_data, "p_g": p_g, "d": d, "d_star": d_star}


def append_loss_rows(path: Path, rows: list[dict[str, float]]) -> None:
    """Append per-step rows (step, epoch, one column per loss) to a CSV. A
    step leaves out what it did not measure (loss_g on a D-only step), so a
    column may first appear later: the file is then rewritten with it."""
    if not rows:
        return
    old: list[dict[str, str]] = []
    fields: list[str] = []
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            new = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in fields]
            if new:
                old = list(reader)
    else:
        new = list(dict.fromkeys(k for row in rows for k in row))
    mode = "w" if new else "a"
    fields += new
    with open(path, mode, newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        if new:
            writer.writeheader()
            writer.writerows(old)
        writer.writerows(rows)


def save_loss_curve(csv_path: Path, path: Path, title: str = "") -> None:
    """One panel per loss: every step (thin) and its moving average (thick)."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    keys = [k for k in rows[0] if k not in ("step", "epoch")]
    step = np.array([float(r["step"]) for r in rows])
    fig = _figure(7, 1.8 * len(keys) + 0.6)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(len(keys), 1, i + 1)
        y = np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])
        seen = np.isfinite(y)  # e.g. loss_g: only the steps that updated G
        x, y = step[seen], y[seen]
        ax.plot(x, y, lw=0.5, alpha=0.4, color="tab:blue")
        window = max(1, len(y) // 50)
        if window > 1:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(x[window - 1 :], smooth, lw=1.5, color="tab:blue")
        ax.set_ylabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0 and title:
            ax.set_title(title, fontsize=9)
    fig.axes[-1].set_xlabel("step", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
