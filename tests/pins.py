"""The dependency pins declared in pyproject.toml, for tests that check or install them."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def requirements(*extras: str) -> list[Requirement]:
    """The base dependencies plus those of ``extras``, one entry per distribution (first wins)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    seen: dict[str, Requirement] = {}
    for line in lines:
        req = Requirement(line)
        seen.setdefault(req.name.lower(), req)
    return list(seen.values())


def requirement(name: str, *extras: str) -> Requirement:
    for req in requirements(*extras):
        if req.name.lower() == name.lower():
            return req
    raise KeyError(f"{name} is not declared in {PYPROJECT}")


def floor(req: Requirement) -> Version:
    """The version of the ``>=`` bound; every base and serve dependency must declare one."""
    lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
    if len(lows) != 1:
        raise ValueError(f"{req}: declare exactly one lower bound (>=) so the lowest versions can be tested")
    return lows[0]


def lowest(*extras: str) -> list[str]:
    """``name==floor`` for the base dependencies and those of ``extras``."""
    return [f"{req.name}=={floor(req)}" for req in requirements(*extras)]
