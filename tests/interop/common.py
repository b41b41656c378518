"""Shared by the interop tests: the bundled models and their latest versions."""

from __future__ import annotations

from pathlib import Path

from gan_server.repository import version_key

MODELS = ["dcgan", "cgan", "infogan"]


def latest(root: Path, name: str) -> Path:
    """``root/name/<highest version>``, as gan-server picks "latest"."""
    return max((p for p in (root / name).iterdir() if p.is_dir()), key=lambda p: version_key(p.name))
