"""Helpers for the deployment tests: render kustomizations, read Dockerfiles,
and rebuild the exact command line a container runs.

The container command follows Kubernetes' rules: ``command`` replaces the
image ENTRYPOINT (and drops its CMD), ``args`` replaces CMD. Our images have
an ENTRYPOINT and no CMD, so a server container runs
``ENTRYPOINT + args`` and the batch Job runs ``command + args``.

For the test of the batch Job's command (once ``gan-client batch`` is part of
the suite), the intended use is::

    job = find(render(JOB_DIR), "Job", "gan-batch-generate")
    inv = job_invocation(job)                   # argv + literal env of the Job
    argv = rewrite_flags(inv.argv, {"--out": str(tmp_path / "out")})
    env = {**inv.env, "GAN_SERVER": server.address, "JOB_COMPLETION_INDEX": "0"}
    subprocess.run(local_argv(argv), env=clean_env(env), check=True)

and then once per index ``range(int(inv.env["GAN_SHARD_COUNT"]))``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CPU_OVERLAY = K8S / "overlays" / "cpu"
GPU_OVERLAY = K8S / "overlays" / "gpu"
JOB_DIR = K8S / "jobs" / "batch-generate"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERFILE_GPU = ROOT / "Dockerfile.gpu"
BIN = Path(sys.executable).parent

# The Kubernetes version the rendered objects are validated against: the
# newest whose schemas kubernetes-validate ships (offline). docs/deploy.md
# states the same version.
K8S_VERSION = "1.37.0"

SERVER_ENV_PREFIX = "GAN_SERVER_"


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize PATH``, parsed into a list of objects."""
    exe = kubectl()
    if exe is None:
        raise RuntimeError("kubectl is not on PATH")
    out = subprocess.run([exe, "kustomize", str(path)], check=False, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects: Iterable[dict], kind: str, name: str | None = None) -> dict:
    """The one object of ``kind`` (and ``name``, when given)."""
    hits = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(hits) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str | None = None) -> dict:
    containers = pod_spec(workload)["containers"]
    if name is None:
        if len(containers) != 1:
            raise LookupError(f"{workload['metadata']['name']} has {len(containers)} containers; name one")
        return containers[0]
    for c in containers:
        if c["name"] == name:
            return c
    raise LookupError(f"{workload['metadata']['name']} has no container {name!r}")


# ---------------------------------------------------------------- Dockerfiles


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs with continuation lines joined, comments dropped."""
    joined: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    if buf:
        joined.append(buf)
    out = []
    for line in joined:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    """The instructions of the last stage (from its FROM on)."""
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def dockerfile_entrypoint(path: Path) -> list[str]:
    """The final stage's ENTRYPOINT, which must be in exec (JSON) form."""
    entries = [rest for word, rest in final_stage(path) if word == "ENTRYPOINT"]
    if not entries:
        raise LookupError(f"{path.name} has no ENTRYPOINT in its final stage")
    value = json.loads(entries[-1])
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{path.name}: ENTRYPOINT must be a JSON array of strings")
    return value


def dockerfile_cmd(path: Path) -> list[str]:
    entries = [rest for word, rest in final_stage(path) if word == "CMD"]
    return json.loads(entries[-1]) if entries else []


def dockerfile_healthcheck(path: Path) -> list[str]:
    """The final stage's HEALTHCHECK command (exec form), options stripped."""
    entries = [rest for word, rest in final_stage(path) if word == "HEALTHCHECK"]
    if not entries:
        raise LookupError(f"{path.name} has no HEALTHCHECK")
    _, sep, cmd = entries[-1].partition("CMD ")
    if not sep:
        raise ValueError(f"{path.name}: HEALTHCHECK has no CMD")
    return json.loads(cmd)


def dockerfile_user(path: Path) -> str:
    users = [rest for word, rest in final_stage(path) if word == "USER"]
    if not users:
        raise LookupError(f"{path.name} sets no USER in its final stage")
    return users[-1]


# ------------------------------------------------------ container invocation


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]


def container_argv(c: dict, image_entrypoint: list[str], image_cmd: list[str] | None = None) -> list[str]:
    """What the container runs, by Kubernetes' command/args rules."""
    image_cmd = image_cmd or []
    if "command" in c:
        return [*c["command"], *c.get("args", [])]
    return [*image_entrypoint, *c.get("args", image_cmd)]


def container_env(c: dict, objects: Iterable[dict]) -> dict[str, str]:
    """The container's environment from envFrom ConfigMaps and literal env.

    ``env`` entries win over ``envFrom``, as in Kubernetes. Entries taken from
    other sources (valueFrom: secrets, field refs) are not resolved and raise,
    so a test notices when the manifests start relying on them.
    """
    objects = list(objects)
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        if "configMapRef" not in src:
            raise NotImplementedError(f"envFrom source {src} is not resolved by this helper")
        cm = find(objects, "ConfigMap", src["configMapRef"]["name"])
        prefix = src.get("prefix", "")
        env.update({prefix + k: str(v) for k, v in cm.get("data", {}).items()})
    for entry in c.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif "valueFrom" in entry:
            raise NotImplementedError(f"env {entry['name']} uses valueFrom; resolve it in the test")
        else:
            env[entry["name"]] = ""
    return env


def server_invocation(objects: list[dict], dockerfile: Path = DOCKERFILE) -> Invocation:
    """The gan-server Deployment's command line and environment."""
    dep = find(objects, "Deployment", "gan-server")
    c = container(dep, "gan-server")
    argv = container_argv(c, dockerfile_entrypoint(dockerfile), dockerfile_cmd(dockerfile))
    return Invocation(argv, container_env(c, objects))


def job_invocation(job: dict, objects: Iterable[dict] = (), dockerfile: Path = DOCKERFILE) -> Invocation:
    """The batch Job's command line and literal environment.

    Kubernetes adds JOB_COMPLETION_INDEX to each pod of an Indexed Job; it is
    not in the manifest, so the caller sets it per shard.
    """
    c = container(job, "gan-client")
    argv = container_argv(c, dockerfile_entrypoint(dockerfile), dockerfile_cmd(dockerfile))
    return Invocation(argv, container_env(c, objects))


def _flag_positions(argv: list[str], flag: str) -> list[int]:
    return [i for i, a in enumerate(argv) if a == flag or a.startswith(flag + "=")]


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` (``--f v`` or ``--f=v``), in order."""
    values = []
    for i in _flag_positions(argv, flag):
        a = argv[i]
        values.append(a.split("=", 1)[1] if "=" in a else argv[i + 1])
    return values


def rewrite_flags(argv: list[str], values: Mapping[str, str]) -> list[str]:
    """A copy of argv with every occurrence of each flag's value replaced.

    Raises when a flag does not occur, so a test cannot silently run with the
    manifest's value (e.g. bind 0.0.0.0 on a test machine).
    """
    out = list(argv)
    for flag, value in values.items():
        positions = _flag_positions(out, flag)
        if not positions:
            raise LookupError(f"{flag} does not occur in {argv}")
        for i in positions:
            if "=" in out[i]:
                out[i] = f"{flag}={value}"
            else:
                out[i + 1] = value
    return out


def local_argv(argv: list[str]) -> list[str]:
    """Run the console script from this test environment's venv."""
    exe = BIN / argv[0]
    if not exe.exists():
        raise FileNotFoundError(f"{argv[0]} is not installed in {BIN}")
    return [str(exe), *argv[1:]]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """os.environ without GAN_* settings of the machine running the tests, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GAN_SERVER", "GAN_SHARD", "JOB_COMPLETION"))}
    return {**base, **extra, "PYTHONUNBUFFERED": "1"}


def server_setting(inv: Invocation, flag: str) -> str | None:
    """The value gan-server uses for ``--flag``: last on the command line,
    else its GAN_SERVER_* variable, else None (the CLI default)."""
    values = flag_values(inv.argv, flag)
    if values:
        return values[-1]
    return inv.env.get(SERVER_ENV_PREFIX + flag[2:].upper().replace("-", "_"))


def server_option_envvars() -> dict[str, Any]:
    """GAN_SERVER_* variable name -> click option of gan-server."""
    from gan_server.cli import main

    return {SERVER_ENV_PREFIX + p.name.upper(): p for p in main.params if p.name}


def effective_security(pod: dict, c: dict) -> dict[str, Any]:
    """Container securityContext fields, falling back to the pod's (Kubernetes' precedence)."""
    pod_sc = pod.get("securityContext", {})
    c_sc = c.get("securityContext", {})
    keys = ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")
    merged = {k: c_sc.get(k, pod_sc.get(k)) for k in keys}
    merged.update({k: v for k, v in c_sc.items() if k not in keys})
    return merged


def prestop_seconds(c: dict) -> float:
    """How long the preStop hook delays SIGTERM (a sleep action or `sleep N`)."""
    hook = c.get("lifecycle", {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    cmd = hook.get("exec", {}).get("command", [])
    if cmd and re.fullmatch(r"(/usr)?(/bin/)?sleep", cmd[0]) and len(cmd) == 2:
        return float(cmd[1])
    raise ValueError(f"cannot tell how long preStop {hook} takes")
