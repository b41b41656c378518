"""The model repository: ``<root>/<name>/<version>/manifest.json`` + files.

Every version directory is validated (manifest schema, sha256 of each file)
and loaded into a backend. A broken version is reported and skipped; the
others keep serving. Versions sort numerically when they are integers, and
the highest is the default ("latest").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .backends import BACKENDS, BackendError, OnnxBackend, TorchScriptBackend
from .errors import ModelNotFound
from .manifest import MANIFEST_NAME, ManifestError, load_manifest
from .sampling import LoadedModel

log = logging.getLogger("gan_server")


def version_key(version: str) -> tuple[int, int, str]:
    """Integers sort numerically and after nothing else; other names sort as text."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


@dataclass
class LoadProblem:
    path: str
    message: str


@dataclass
class ModelRepository:
    root: Path
    backend: str = "onnx"
    device: str = "cpu"
    threads: int = 0
    models: dict[str, dict[str, LoadedModel]] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")

    def load_all(self) -> None:
        """Scan ``root`` and load every valid version. Problems are kept in ``problems``."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"model repository {self.root} is not a directory")
        for manifest_path in sorted(self.root.glob(f"*/*/{MANIFEST_NAME}")):
            version_dir = manifest_path.parent
            try:
                model = self.load_version(version_dir)
            except (ManifestError, BackendError) as exc:
                self.problems.append(LoadProblem(str(version_dir), str(exc)))
                log.error("skipping %s: %s", version_dir, exc)
                continue
            self.models.setdefault(model.name, {})[model.version] = model
            log.info("loaded %s version %s (%s, %s)", model.name, model.version, self.backend, self.device)

    def load_version(self, version_dir: Path) -> LoadedModel:
        manifest = load_manifest(version_dir)
        expected = (version_dir.parent.name, version_dir.name)
        if (manifest.name, manifest.version) != expected:
            raise ManifestError(
                version_dir / MANIFEST_NAME,
                "name" if manifest.name != expected[0] else "version",
                f"says {manifest.name}/{manifest.version} but the directory is {expected[0]}/{expected[1]}",
            )
        if self.backend == "torchscript":
            entry = manifest.files.get("torchscript")
            if entry is None:
                raise ManifestError(version_dir / MANIFEST_NAME, "files.torchscript", "is missing (--backend torchscript)")
            backend = TorchScriptBackend(
                version_dir / entry.path, [t.name for t in manifest.inputs], device=self.device, threads=self.threads
            )
        else:
            backend = OnnxBackend(version_dir / manifest.files["onnx"].path, device=self.device, threads=self.threads)
        return LoadedModel(manifest, backend, version_dir)

    # -- lookup -------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.models)

    def versions(self, name: str) -> list[str]:
        return sorted(self.models.get(name, {}), key=version_key)

    def get(self, name: str, version: str = "") -> LoadedModel:
        versions = self.models.get(name)
        if not versions:
            raise ModelNotFound(name, None, self.names())
        if not version:
            return versions[self.versions(name)[-1]]
        if version not in versions:
            raise ModelNotFound(name, version, [f"{name}:{v}" for v in self.versions(name)])
        return versions[version]

    def latest(self) -> list[LoadedModel]:
        return [self.get(name) for name in self.names()]

    def conditional_names(self) -> list[str]:
        return [m.name for m in self.latest() if m.takes_condition]
