"""Fixtures for the training tests: tiny, seeded, CPU-only runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gan_training.config import TrainConfig


def tiny_config(variant: str, out: Path, **overrides) -> TrainConfig:
    """A run that takes a second or two: narrow nets, a few steps per epoch."""
    values = dict(
        variant=variant,
        out=str(out),
        epochs=2,
        seed=123,
        batch_size=16,
        width=8,
        device="cpu",
        steps_per_epoch=3,
        eval_every=0,
        eval_samples_per_class=10,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(autouse=True)
def _few_threads():
    # Keep the CPU for concurrently running suites; restore afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
