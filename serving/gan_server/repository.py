"""The model repository: ``<root>/<name>/<version>/manifest.json`` + files.

Every version directory is validated (manifest schema, sha256 of each file)
and loaded into a backend. A broken version is reported and skipped; the
others keep serving. Versions sort numerically when they are integers, and
the highest is the default ("latest").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_contract.errors import ModelNotFound, ModelUnavailable
from gan_contract.manifest import MANIFEST_NAME, ManifestError, load_manifest

from .backends import BACKENDS, BackendError, OnnxBackend, TorchScriptBackend
from .sampling import LoadedModel

log = logging.getLogger("gan_server")

# Versions loaded side by side at start and on reload.
LOAD_THREADS = max(1, min(4, os.cpu_count() or 1))


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
    precision: str = "fp32"  # torchscript only
    models: dict[str, dict[str, LoadedModel]] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)
    warmed: bool = False  # set once start-up warm-up finished (readiness)
    # What each version directory looked like when last (tried to be) loaded.
    _seen: dict[Path, tuple] = field(default_factory=dict)
    # Lookups that every request makes, kept until ``models`` changes (rescan,
    # _drop, mark_broken bump the generation; rescan runs on another thread).
    _generation: int = field(default=0, repr=False, compare=False)
    _cache: dict[str, tuple[int, Any]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        if self.precision != "fp32" and self.backend != "torchscript":
            raise ValueError(
                f"--precision {self.precision} needs --backend torchscript (onnx runs the graph as exported)"
            )

    def load_all(self) -> None:
        """Scan ``root`` and load every valid version. Problems are kept in ``problems``."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"model repository {self.root} is not a directory")
        self.rescan()

    @staticmethod
    def _stamp(version_dir: Path) -> tuple:
        """What the version directory's files look like (name, mtime, size).

        Any change, a model file rewritten, truncated or deleted included,
        makes the next scan reload the version (and re-check its sha256).
        """
        entries = []
        for path in sorted(version_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                st = path.stat()
                entries.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(entries)

    def rescan(self) -> tuple[list[LoadedModel], list[LoadedModel]]:
        """Load new or changed version directories and drop vanished ones.

        Returns (loaded, removed). A broken version is logged, kept in
        ``problems`` and skipped; it is retried when its manifest changes.
        Callers holding a removed model may finish with it.
        """
        loaded: list[LoadedModel] = []
        removed: list[LoadedModel] = []
        present: dict[Path, tuple] = {}
        for manifest_path in sorted(self.root.glob(f"*/*/{MANIFEST_NAME}")):
            try:
                present[manifest_path.parent] = self._stamp(manifest_path.parent)
            except OSError:
                continue
        current = {m.directory: m for versions in self.models.values() for m in versions.values()}
        for directory, model in current.items():
            gone = directory not in present
            if gone or present[directory] != self._seen.get(directory):
                self._drop(model)
                removed.append(model)
                log.info("unloaded %s version %s (%s)", model.name, model.version, "removed" if gone else "changed")
        for directory in list(self._seen):
            if directory not in present:
                del self._seen[directory]
        self.problems = [p for p in self.problems if Path(p.path) in present]
        todo = [d for d, stamp in present.items() if self._seen.get(d) != stamp]
        for directory in todo:
            self._seen[directory] = present[directory]
            self.problems = [p for p in self.problems if p.path != str(directory)]
        # Hashing files and building runtime sessions mostly runs outside the
        # GIL, so versions load side by side; results are applied in order.
        for directory, outcome in zip(todo, self._load_many(todo), strict=True):
            if isinstance(outcome, Exception):
                self.problems.append(LoadProblem(str(directory), str(outcome)))
                log.error("skipping %s: %s", directory, outcome)
                continue
            model = outcome
            self.models.setdefault(model.name, {})[model.version] = model
            self._generation += 1
            loaded.append(model)
            log.info("loaded %s version %s (%s, %s)", model.name, model.version, self.backend, self.device)
        return loaded, removed

    def _load_many(self, directories: list[Path]) -> list[LoadedModel | Exception]:
        def attempt(directory: Path) -> LoadedModel | Exception:
            try:
                return self.load_version(directory)
            except (ManifestError, BackendError, OSError) as exc:
                return exc

        if len(directories) < 2:
            return [attempt(d) for d in directories]
        with ThreadPoolExecutor(max_workers=min(LOAD_THREADS, len(directories)), thread_name_prefix="load") as pool:
            return list(pool.map(attempt, directories))

    def _drop(self, model: LoadedModel) -> None:
        versions = self.models.get(model.name, {})
        if versions.get(model.version) is model:
            del versions[model.version]
        if not versions:
            self.models.pop(model.name, None)
        self._generation += 1

    def mark_broken(self, model: LoadedModel, problem: str) -> None:
        """Take a model out of service after a runtime failure of its files."""
        self._drop(model)
        self.problems.append(LoadProblem(str(model.directory), problem))
        log.error("unloaded %s version %s: %s", model.name, model.version, problem)

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
                raise ManifestError(
                    version_dir / MANIFEST_NAME, "files.torchscript", "is missing (--backend torchscript)"
                )
            backend = TorchScriptBackend(
                version_dir / entry.path,
                [t.name for t in manifest.inputs],
                device=self.device,
                threads=self.threads,
                precision=self.precision,
            )
        else:
            backend = OnnxBackend(version_dir / manifest.files["onnx"].path, device=self.device, threads=self.threads)
        encoder = None
        if "encoder_onnx" in manifest.files:
            encoder = OnnxBackend(
                version_dir / manifest.files["encoder_onnx"].path, device=self.device, threads=self.threads
            )
        return LoadedModel(manifest, backend, version_dir, encoder=encoder)

    # -- lookup -------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.models)

    def versions(self, name: str) -> list[str]:
        return sorted(self.models.get(name, {}), key=version_key)

    def _problem(self, name: str, version: str = "") -> LoadProblem | None:
        for problem in self.problems:
            path = Path(problem.path)
            if path.parent.name == name and (not version or path.name == version):
                return problem
        return None

    def get(self, name: str, version: str = "") -> LoadedModel:
        versions = self.models.get(name)
        if not versions:
            problem = self._problem(name, version)
            if problem is not None:
                raise ModelUnavailable(f"model {name!r} is unavailable: {problem.message}")
            raise ModelNotFound(name, None, self.names())
        if not version:
            model = self._cached("latest", self._latest_by_name).get(name)
            return model if model is not None else versions[max(tuple(versions), key=version_key)]
        if version not in versions:
            problem = self._problem(name, version)
            if problem is not None:
                raise ModelUnavailable(f"model {name!r} version {version!r} is unavailable: {problem.message}")
            raise ModelNotFound(name, version, [f"{name}:{v}" for v in self.versions(name)])
        return versions[version]

    def latest(self) -> list[LoadedModel]:
        return [self.get(name) for name in self.names()]

    def conditional_names(self) -> list[str]:
        """Names of the loaded models that take a condition (shared between calls: do not change it)."""
        return self._cached("conditional", lambda: [m.name for m in self.latest() if m.takes_condition])

    def _latest_by_name(self) -> dict[str, LoadedModel]:
        out = {}
        for name, versions in list(self.models.items()):
            numbers = tuple(versions)
            model = versions.get(max(numbers, key=version_key)) if numbers else None
            if model is not None:
                out[name] = model
        return out

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        generation = self._generation
        hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        value = compute()
        self._cache[key] = (generation, value)  # a change meanwhile bumped the generation: recomputed next time
        return value
