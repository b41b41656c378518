"""Fixtures for the deployment tests: the rendered kustomizations.

Rendering needs `kubectl` (with its built-in kustomize); without it these
tests skip. No cluster is contacted.
"""

from __future__ import annotations

from typing import Any

import pytest

from .manifests import CPU_OVERLAY, GPU_OVERLAY, JOB_DIR, kubectl, render

TARGETS = {"cpu": CPU_OVERLAY, "gpu": GPU_OVERLAY, "job": JOB_DIR}


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    if kubectl() is None:
        pytest.skip("kubectl is not on PATH: cannot render the kustomizations (install kubectl >= 1.27)")
    return {name: render(path) for name, path in TARGETS.items()}


@pytest.fixture(scope="session")
def cpu(rendered) -> list[dict[str, Any]]:
    return rendered["cpu"]


@pytest.fixture(scope="session")
def gpu(rendered) -> list[dict[str, Any]]:
    return rendered["gpu"]


@pytest.fixture(scope="session")
def job_objects(rendered) -> list[dict[str, Any]]:
    return rendered["job"]
