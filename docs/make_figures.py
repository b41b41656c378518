"""Regenerate the figures in docs/img from the bundled models:  make docs-figures

- infogan-sweep-c1.png / -c2.png: one row per digit (0-9), continuous code 1
  (or 2) swept over -2 .. 2 across the columns, the other code at 0, the same
  seed (so the same z) everywhere. Codes were trained on [-1, 1]; the outer
  columns extrapolate.
- <model>-grid.png: an 8x8 grid per bundled image model (seed 0).

Runs the models in process exactly as the server does (gan_server.sampling).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gan_client._images import make_grid, write_png
from gan_server.repository import ModelRepository
from gan_server.sampling import SampleSpec

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CODES = np.linspace(-2.0, 2.0, 9)


def main() -> None:
    repo = ModelRepository(ROOT / "models")
    repo.load_all()
    OUT.mkdir(exist_ok=True)
    infogan = repo.get("infogan")
    for index in range(infogan.manifest.conditioning.num_continuous):
        rows = []
        for digit in range(10):
            for value in CODES:
                codes = [0.0] * infogan.manifest.conditioning.num_continuous
                codes[index] = float(value)
                spec = SampleSpec(count=1, seed=5, digit=digit, continuous=tuple(codes))
                rows.append(infogan.generate(infogan.plan(spec), 0, 1).images[0])
        grid = make_grid(np.stack(rows), cols=len(CODES))
        write_png(grid, OUT / f"infogan-sweep-c{index + 1}.png")
    for model in repo.latest():
        if model.manifest.image.height < 8:
            continue
        images = model.generate(model.plan(SampleSpec(count=64, seed=0)), 0, 64).images
        write_png(make_grid(images, cols=8), OUT / f"{model.name}-grid.png")
    print(f"wrote {len(list(OUT.glob('*.png')))} figures to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
