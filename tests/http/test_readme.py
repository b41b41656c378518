"""The README's curl lines run as written against a server started like `make serve`."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..conftest import ROOT

MARKER = "<!-- tests/http/test_readme.py runs these lines against a real server -->"


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert MARKER in text, "the README lost its curl block (or its marker)"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block, "no ```sh block after the marker"
    commands, current = [], ""
    for line in block.group(1).splitlines():
        current += line.removesuffix("\\") + ("\n" if not line.endswith("\\") else " ")
        # a command ends at a line without a continuation, outside single quotes
        if not line.endswith("\\") and current.count("'") % 2 == 0:
            if current.strip():
                commands.append(current.strip())
            current = ""
    return commands


def test_make_serve_uses_the_readmes_ports() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^HTTP_PORT \?= 8080$", makefile, re.M)
    assert re.search(r"^PORT \?= 50051$", makefile, re.M)
    serve = makefile[makefile.index("\nserve:") :].split("\n\n")[0]
    assert "--port $(PORT) --http-port $(HTTP_PORT)" in serve
    assert all("localhost:8080" in c for c in _readme_commands())


def test_readme_curl_lines_run_as_written(http_server, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    commands = _readme_commands()
    assert len(commands) >= 5 and all(c.startswith("curl ") for c in commands), commands
    outputs = []
    for command in commands:
        line = command.replace("localhost:8080", http_server.http_address)
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, timeout=60)
        assert done.returncode == 0, f"{command}\n{done.stderr.decode()}"
        outputs.append(done.stdout)
    with Image.open(tmp_path / "sevens.png") as img:
        assert img.size == (8 * 30 + 2, 8 * 30 + 2)
        assert (img.text["gan:model"], img.text["gan:seed"], json.loads(img.text["gan:request"])) == (
            "infogan",
            "3",
            {"digit": 7},
        )
    with Image.open(tmp_path / "bold.png") as img:
        assert img.size == ((4 * 30 + 2) * 4,) * 2
    with Image.open(tmp_path / "strip.png") as img:
        assert img.size == (8 * 30 + 2, 32)
    twos = np.load(io.BytesIO((tmp_path / "twos.npy").read_bytes()))
    assert twos.shape == (16, 28, 28, 1) and twos.dtype == np.uint8
    assert "infogan" in {m["name"] for m in json.loads(outputs[4])["models"]}
    assert json.loads(outputs[5]) == {"ready": True}
    infer = json.loads(outputs[6])
    assert infer["outputs"][0]["shape"] == [1, 28, 28, 1]
