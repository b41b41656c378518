"""Atomic writes: the old file or the new one, never half of one, and no temporary files left."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gan_contract.files import atomic_path, write_bytes_atomic, write_text_atomic

SDK = Path(__file__).resolve().parents[2] / "sdk"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    assert write_bytes_atomic(target, b"first") == target
    assert target.read_bytes() == b"first"
    write_bytes_atomic(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_text_is_utf8(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "t.txt", "é ✓\n")
    assert target.read_bytes() == b"\xc3\xa9 \xe2\x9c\x93\n"


def test_temporary_file_is_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path  # same directory: the rename is atomic
        assert tmp.name.startswith(".model.onnx.") and tmp.name.endswith(".tmp")
        assert tmp.exists() and not target.exists()
        tmp.write_bytes(b"x")
    assert not tmp.exists()
    assert target.read_bytes() == b"x"


def test_concurrent_writers_get_different_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "f"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the outer context finishes last
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize("error", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_failure_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            tmp.write_text("new but half written")
            raise error
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failure_without_an_old_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_removes_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    (target / "keep").write_text("inside")
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"cannot replace a non-empty directory")
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]
    assert (target / "keep").read_text() == "inside"


def test_relative_path_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_bytes_atomic("plain.bin", b"here")
    assert (tmp_path / "plain.bin").read_bytes() == b"here"
    assert [p.name for p in tmp_path.iterdir()] == ["plain.bin"]


def test_mode_is_what_open_gives(tmp_path: Path) -> None:
    # mkstemp alone would give 0600; the file must get what a plain open() gives
    with open(tmp_path / "plain", "w"):
        pass
    write_bytes_atomic(tmp_path / "atomic", b"")
    assert _mode(tmp_path / "atomic") == _mode(tmp_path / "plain")


def test_overwrite_does_not_keep_the_old_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o600)
    write_bytes_atomic(target, b"new")
    plain = tmp_path / "plain"
    plain.write_text("")
    assert _mode(target) == _mode(plain)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_mode_honours_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    # The umask is read when gan_contract.files is imported, so each umask needs a fresh process.
    target = tmp_path / "out"
    code = (
        "import os, sys\n"
        f"os.umask({umask})\n"
        f"sys.path.insert(0, {str(SDK)!r})\n"
        "from gan_contract.files import write_bytes_atomic\n"
        f"write_bytes_atomic({str(target)!r}, b'x')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert _mode(target) == mode
