"""Cached virtualenvs holding this repository's wheel and a chosen set of dependencies.

A venv lives in ``$GAN_COMPAT_VENVS/<name>`` (default ``.venv-compat/<name>``,
ignored by git). It is rebuilt when its requirements, the Python or the
dependencies declared in pyproject.toml change; when only the code changes,
just the wheel is reinstalled. Every step has a timeout. torch is never
installed: a constraint rules it out, so a dependency that pulls it in fails
the install instead of downloading it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tests import pins

ROOT = pins.ROOT
CACHE = Path(os.environ.get("GAN_COMPAT_VENVS") or ROOT / ".venv-compat")
INSTALL_TIMEOUT_S = 900
NO_TORCH = "# compat venvs never install torch (the platform's is a local CPU wheel)\ntorch<0\n"


class CommandFailed(RuntimeError):
    pass


def child_env() -> dict[str, str]:
    """This process's environment without what would leak its packages into a venv's Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def run(cmd: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    if out.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)} exited {out.returncode}:\n{(out.stdout + out.stderr)[-4000:]}")
    return out


# What a wheel is built from (as the Dockerfile copies it); built from a copy so
# a stale build/ or egg-info in the checkout cannot leak into it.
SOURCES = ["pyproject.toml", "README.md", "sdk", "serving", "training"]


def build_wheel(out_dir: Path) -> Path:
    """This repository as users get it from `pip install .` (no editable install)."""
    src = out_dir / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out_dir), str(src)], timeout=600)
    (wheel,) = out_dir.glob("gan_platform-*.whl")
    return wheel


def wheel_digest(wheel: Path) -> str:
    """Of the files in the wheel, not of the zip (which carries timestamps)."""
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            h.update(name.encode() + b"\0" + z.read(name) + b"\0")
    return h.hexdigest()


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def python(venv: Path) -> Path:
    return bin_dir(venv) / ("python.exe" if os.name == "nt" else "python")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_install(venv: Path, args: list[str]) -> None:
    guard = venv / "no-torch.txt"
    guard.write_text(NO_TORCH)
    run(
        [str(python(venv)), "-m", "pip", "install", "--quiet", "--only-binary", ":all:", "-c", str(guard), *args],
        timeout=INSTALL_TIMEOUT_S,
    )


def ensure(
    name: str, requirements: list[str], wheel: Path, extras: tuple[str, ...] = (), sdk_first: bool = False
) -> Path:
    """``CACHE/name`` with ``wheel`` (with ``extras``) and ``requirements`` installed, resolved together.

    ``sdk_first``: install the wheel alone first, as a user who adds
    ``requirements`` to an existing install does.
    """
    venv = CACHE / name
    spec = f"gan-platform[{','.join(extras)}] @ {wheel.as_uri()}" if extras else f"gan-platform @ {wheel.as_uri()}"
    deps_key = json.dumps(
        {
            "python": sys.version,
            "requirements": requirements,
            "extras": list(extras),
            "sdk_first": sdk_first,
            "declared": [str(r) for r in pins.requirements(*extras)],
        },
        sort_keys=True,
    )
    code_key = wheel_digest(wheel)
    deps_stamp, code_stamp = venv / ".compat-deps", venv / ".compat-wheel"
    with _locked(CACHE / f"{name}.lock"):
        fresh = python(venv).exists() and deps_stamp.is_file() and deps_stamp.read_text() == deps_key
        if not fresh:
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", str(venv)], timeout=300)
            if sdk_first:
                _pip_install(venv, [spec])
            _pip_install(venv, [spec, *requirements])
        elif not code_stamp.is_file() or code_stamp.read_text() != code_key:
            _pip_install(venv, ["--no-deps", "--force-reinstall", str(wheel)])
        else:
            return venv
        run([str(python(venv)), "-m", "pip", "check"], timeout=120)
        deps_stamp.write_text(deps_key)
        code_stamp.write_text(code_key)
    return venv


def installed(venv: Path) -> dict[str, str]:
    """Distribution name (lower case) -> version."""
    out = run([str(python(venv)), "-m", "pip", "list", "--format", "json"], timeout=120)
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(out.stdout)}
