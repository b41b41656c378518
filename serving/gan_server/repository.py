"""The model repository: ``<root>/<name>/<version>/manifest.json`` + files.

Every version directory is validated (manifest schema, sha256 of each file),
loaded into a backend, checked against its manifest (the graph's inputs) and
warmed up (one image, of the manifest's shape). A broken version is reported
and skipped; the others keep serving. Versions sort numerically when they are
integers, and the highest is the default ("latest").

A version's directory and files must resolve inside the repository (a
symbolic link out of it, of a model or version directory or of any file, is
refused) and its files must be regular files (opened without blocking, so a
FIFO in a file's place cannot wedge a scan). Names starting with "." are
skipped: write a new version under a hidden name and rename it into place.
What clients are told about a broken version names paths relative to the
repository; the server log has them in full.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_contract.errors import ModelNotFound, ModelUnavailable, shown
from gan_contract.manifest import MANIFEST_NAME, Manifest, ManifestError, is_inside, read_manifest
from gan_contract.request import SampleSpec

from .backends import BACKENDS, Backend, BackendError, OnnxBackend, TorchScriptBackend
from .sampling import LoadedModel

log = logging.getLogger("gan_server")

# Versions loaded side by side at start and on reload.
LOAD_THREADS = max(1, min(4, os.cpu_count() or 1))


def version_key(version: str) -> tuple[int, int, str]:
    """Integers sort numerically and after nothing else; other names sort as text."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


# ONNX Runtime's names of the manifest's dtypes.
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


class UnsafePath(ValueError):
    """A version directory that resolves outside the model repository."""


@dataclass
class LoadProblem:
    path: str  # the version directory, in full
    message: str  # for the log: may name full paths
    public: str = ""  # for clients: paths relative to the repository (default: message)

    def __post_init__(self) -> None:
        self.public = self.public or self.message


def _describe_inputs(inputs: list[tuple[str, str, tuple]]) -> str:
    return ", ".join(f"{name}:{dtype}[{', '.join(str(d) for d in shape)}]" for name, dtype, shape in inputs)


def check_graph_inputs(manifest: Manifest, graph_inputs: list[tuple[str, str, tuple]], what: str) -> None:
    """BackendError unless the graph takes the manifest's inputs: names, dtypes, fixed dimensions.

    ``graph_inputs`` holds (name, dtype, shape) per graph input, a dimension
    being an int or a name (dynamic); the manifest's -1 is dynamic too.
    """
    want = [(t.name, t.dtype, t.shape) for t in manifest.inputs]
    differ = sorted((n, d) for n, d, _ in graph_inputs) != sorted((n, d) for n, d, _ in want)
    if not differ:
        shapes = {n: shape for n, _, shape in graph_inputs}
        differ = any(
            len(shapes[name]) != len(shape)
            or any(isinstance(g, int) and g > 0 and w != -1 and g != w for g, w in zip(shapes[name], shape))
            for name, _, shape in want
        )
    if differ:
        raise BackendError(
            f"{what}: the graph's inputs ({_describe_inputs(graph_inputs)}) do not match the manifest's "
            f"({_describe_inputs(want)})"
        )


def _onnx_inputs(backend: Backend) -> list[tuple[str, str, tuple]] | None:
    session = getattr(backend, "session", None)
    if session is None:
        return None
    return [(i.name, _ORT_DTYPES.get(i.type, i.type), tuple(i.shape)) for i in session.get_inputs()]


def warm_up_model(model: LoadedModel) -> None:
    """Make one image (and encode it, with an encoder); BackendError unless it has the manifest's shapes."""
    m = model.manifest
    want = [1, m.image.height, m.image.width, m.image.channels]
    try:
        images = model.generate(model.plan(SampleSpec(count=1)), 0, 1).images
        latents = model.encode(images) if model.encoder is not None else None
    except Exception as exc:  # noqa: BLE001 - runtimes raise many types; all mean "does not run"
        raise BackendError(f"warm-up failed: {exc}") from exc
    if list(images.shape) != want:
        raise BackendError(f"warm-up: the graph made images of shape {list(images.shape)}, the manifest says {want}")
    if latents is not None and list(latents.shape) != [1, m.latent.dim]:
        raise BackendError(
            f"warm-up: the encoder made latents of shape {list(latents.shape)}, the manifest says [1, {m.latent.dim}]"
        )


@dataclass
class ModelRepository:
    root: Path
    backend: str = "onnx"
    device: str = "cpu"
    threads: int = 0
    precision: str = "fp32"  # torchscript only
    # Make one image with every version before it serves (see :func:`warm_up_model`).
    warm_up: bool = True
    models: dict[str, dict[str, LoadedModel]] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)
    warmed: bool = False  # set once start-up loading (and warm-up) finished (readiness)
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
        Callers holding a removed model may finish with it. While versions
        load, lookups see the repository as it was; the outcome replaces it
        at once (a changed version never looks "not found" meanwhile).
        """
        present: dict[Path, tuple] = {}
        for manifest_path in sorted(self.root.glob(f"*/*/{MANIFEST_NAME}")):
            if manifest_path.parent.name.startswith(".") or manifest_path.parent.parent.name.startswith("."):
                continue  # a version being written, to be renamed into place; Kubernetes' ``..data``
            try:
                present[manifest_path.parent] = self._stamp(manifest_path.parent)
            except OSError:
                continue
        todo = [d for d, stamp in present.items() if self._seen.get(d) != stamp]
        # Hashing files, building runtime sessions and warming them up mostly
        # runs outside the GIL, so versions load side by side.
        outcomes = self._load_many(todo)

        loaded: list[LoadedModel] = []
        removed: list[LoadedModel] = []
        models = {name: dict(versions) for name, versions in self.models.items()}
        redone = {str(d) for d in todo}
        for versions in self.models.values():
            for model in versions.values():
                gone = model.directory not in present
                if gone or str(model.directory) in redone:
                    del models[model.name][model.version]
                    removed.append(model)
                    log.info("unloaded %s version %s (%s)", model.name, model.version, "removed" if gone else "changed")
        problems = [p for p in self.problems if Path(p.path) in present and p.path not in redone]
        for directory in list(self._seen):
            if directory not in present:
                del self._seen[directory]
        for directory, outcome in zip(todo, outcomes, strict=True):
            self._seen[directory] = present[directory]
            if isinstance(outcome, Exception):
                problems.append(LoadProblem(str(directory), str(outcome), self.public_message(outcome)))
                log.error("skipping %s: %s", directory, outcome)
                continue
            models.setdefault(outcome.name, {})[outcome.version] = outcome
            loaded.append(outcome)
            log.info("loaded %s version %s (%s, %s)", outcome.name, outcome.version, self.backend, self.device)
        # Problems first: a lookup that sees the new models sees their problems too.
        self.problems = problems
        self.models = {name: versions for name, versions in models.items() if versions}
        self._generation += 1  # cached lookups see the swap
        return loaded, removed

    def _load_many(self, directories: list[Path]) -> list[LoadedModel | Exception]:
        def attempt(directory: Path) -> LoadedModel | Exception:
            try:
                return self.load_version(directory)
            except (ManifestError, BackendError, UnsafePath, OSError) as exc:
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
        self.problems.append(LoadProblem(str(model.directory), problem, self.public_message(problem)))
        log.error("unloaded %s version %s: %s", model.name, model.version, problem)

    def public_message(self, problem: Exception | str) -> str:
        """A load problem as clients see it: paths relative to the repository root."""
        if isinstance(problem, ManifestError):
            return f"{self._relative(problem.path)}: field '{problem.field}': {self._strip_root(problem.problem)}"
        return self._strip_root(str(problem))

    def _roots(self) -> list[str]:
        roots = {os.path.abspath(self.root), os.path.realpath(self.root)}
        if not self.root.is_absolute() and str(self.root) not in ("", "."):
            roots.add(str(self.root))
        return sorted(roots, key=len, reverse=True)

    def _relative(self, path: str) -> str:
        for root in self._roots():
            if path.startswith(root + os.sep):
                return path[len(root) + 1 :]
        return self._strip_root(path)

    def _strip_root(self, text: str) -> str:
        for root in self._roots():
            text = re.sub(r"(?<![\w.-])" + re.escape(root + os.sep), "", text)
        return text

    def load_version(self, version_dir: Path) -> LoadedModel:
        where = f"{version_dir.parent.name}/{version_dir.name}"
        if not is_inside(version_dir, self.root):
            log.error("%s resolves to %s, outside the model repository", version_dir, os.path.realpath(version_dir))
            raise UnsafePath(f"{where}: the directory resolves outside the model repository")
        manifest, text = read_manifest(version_dir, root=self.root)
        expected = (version_dir.parent.name, version_dir.name)
        if (manifest.name, manifest.version) != expected:
            raise ManifestError(
                version_dir / MANIFEST_NAME,
                "name" if manifest.name != expected[0] else "version",
                f"says {manifest.name}/{manifest.version} but the directory is {expected[0]}/{expected[1]}",
            )

        def real(fmt: str) -> Path:  # where read_manifest found it, inside the repository
            return Path(os.path.realpath(version_dir / manifest.files[fmt].path))

        backend: Backend
        if self.backend == "torchscript":
            if "torchscript" not in manifest.files:
                raise ManifestError(
                    version_dir / MANIFEST_NAME, "files.torchscript", "is missing (--backend torchscript)"
                )
            backend = TorchScriptBackend(
                real("torchscript"),
                [t.name for t in manifest.inputs],
                device=self.device,
                threads=self.threads,
                precision=self.precision,
            )
        else:
            backend = OnnxBackend(real("onnx"), device=self.device, threads=self.threads)
            inputs = _onnx_inputs(backend)
            if inputs is not None:
                check_graph_inputs(manifest, inputs, f"{where}/{manifest.files['onnx'].path}")
        encoder = None
        if "encoder_onnx" in manifest.files:
            encoder = OnnxBackend(real("encoder_onnx"), device=self.device, threads=self.threads)
        model = LoadedModel(manifest, backend, version_dir, encoder=encoder, manifest_json=text)
        if self.warm_up:
            warm_up_model(model)
        return model

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
        versions = self.models.get(name, {})
        if version in versions:
            return versions[version]
        if not version and versions:
            model = self._cached("latest", self._latest_by_name).get(name)
            return model if model is not None else versions[self.versions(name)[-1]]
        problem = self._problem(name, version)
        if problem is not None:
            what = f"model {shown(name)}" + (f" version {shown(version)}" if version else "")
            raise ModelUnavailable(f"{what} is unavailable: {problem.public}")
        if not versions:
            raise ModelNotFound(name, None, self.names())
        raise ModelNotFound(name, version, [f"{name}:{v}" for v in self.versions(name)])

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
