"""Package a model version as a TorchServe model archive (``.mar``).

    from gan_training.interop.torchserve import build_mar
    build_mar("models/cgan/1", "model-store")        # → model-store/cgan.mar

The archive holds

    model.ts          the TorchScript generator (the version's ``files.torchscript``)
    manifest.json     the version's manifest, unchanged
    ts_handler.py     the handler (gan_training/interop/ts_handler.py)
    gan_contract/     the platform's contract package as installed (manifest
                      parsing, the seed scheme, request planning, pixels),
                      without its generated protobuf code

and is built by the real ``torch-model-archiver`` (run as a subprocess with
its own TMPDIR: the archiver stages files in ``$TMPDIR/<model name>`` and
deletes whatever is there first). See docs/deploy.md, "TorchServe", for the
request contract and how to serve the archive.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gan_contract
from gan_contract.manifest import MANIFEST_NAME, Manifest, load_manifest

HANDLER = Path(__file__).with_name("ts_handler.py")
CONTRACT = Path(gan_contract.__file__).parent
# What of the contract package the handler needs: all but the generated gRPC code.
_CONTRACT_IGNORE = shutil.ignore_patterns("proto", "__pycache__", "*.pyc")
# What torch-model-archiver accepts as a model name.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")


class MarError(RuntimeError):
    """The archive cannot be built (no TorchScript file, archiver missing or failing)."""


def stage_archive_files(version_dir: Path | str, dest: Path | str) -> tuple[Manifest, Path, list[Path]]:
    """Copy what goes into the archive into ``dest``.

    Returns the manifest, the serialized model file and the extra files
    (manifest.json and the ``gan_contract`` package directory). The handler
    is :data:`HANDLER`, copied as ``dest/ts_handler.py``.
    """
    version_dir, dest = Path(version_dir), Path(dest)
    manifest = load_manifest(version_dir)  # validates the schema and every file's sha256
    entry = manifest.files.get("torchscript")
    if entry is None:
        raise MarError(
            f"{version_dir / MANIFEST_NAME}: no TorchScript generator (files.torchscript); "
            "TorchServe runs model.ts, re-export the model with TorchScript"
        )
    dest.mkdir(parents=True, exist_ok=True)
    serialized = dest / Path(entry.path).name
    if serialized.name in (MANIFEST_NAME, "ts_handler.py", "gan_contract"):
        raise MarError(f"files.torchscript.path {entry.path!r} clashes with a file of the archive")
    shutil.copyfile(version_dir / entry.path, serialized)
    extras = [dest / MANIFEST_NAME, dest / "gan_contract"]
    shutil.copyfile(version_dir / MANIFEST_NAME, extras[0])
    shutil.rmtree(extras[1], ignore_errors=True)
    shutil.copytree(CONTRACT, extras[1], ignore=_CONTRACT_IGNORE)
    shutil.copyfile(HANDLER, dest / "ts_handler.py")
    return manifest, serialized, extras


def build_mar(version_dir: Path | str, out_dir: Path | str, model_name: str | None = None) -> Path:
    """Build ``<out_dir>/<model_name>.mar`` from a model version directory.

    ``model_name`` defaults to the manifest's name; the archive's version is
    the manifest's version. An existing archive of that name is replaced.
    Raises :class:`MarError` (or ``ManifestError`` for an invalid version).
    """
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="gan-mar-") as tmp:
        staging = Path(tmp) / "files"
        manifest, serialized, extras = stage_archive_files(version_dir, staging)
        name = model_name or manifest.name
        if not _NAME.match(name):
            raise MarError(f"model name {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit")
        out_dir.mkdir(parents=True, exist_ok=True)
        archiver_tmp = Path(tmp) / "archiver"
        archiver_tmp.mkdir()
        # The archiver copies a directory's *contents* into the archive root, so
        # a package directory travels inside a parent of its own.
        extra_paths = []
        for path in extras:
            if path.is_dir():
                parent = Path(tmp) / "trees" / path.name
                shutil.copytree(path, parent / path.name)
                path = parent
            extra_paths.append(str(path))
        cmd = [
            sys.executable, "-m", "model_archiver.model_packaging",
            "--model-name", name,
            "--version", manifest.version,
            "--serialized-file", str(serialized),
            "--handler", str(staging / "ts_handler.py"),
            "--extra-files", ",".join(extra_paths),
            "--export-path", str(out_dir.resolve()),
            "--archive-format", "default",
            "--force",
        ]
        env = {**os.environ, "TMPDIR": str(archiver_tmp), "TEMP": str(archiver_tmp), "TMP": str(archiver_tmp)}
        try:
            proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise MarError("torch-model-archiver did not finish within 300 s") from None
        if proc.returncode != 0:
            output = (proc.stderr + proc.stdout).strip()
            if "No module named model_archiver" in output:
                raise MarError("torch-model-archiver is not installed: pip install torch-model-archiver")
            raise MarError(f"torch-model-archiver failed (exit {proc.returncode}): {output[-2000:]}")
    mar = out_dir / f"{name}.mar"
    if not mar.is_file():
        raise MarError(f"torch-model-archiver reported success but {mar} does not exist")
    return mar
