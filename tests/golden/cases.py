"""The fixed requests whose bytes must not change, and how their digests are taken."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("served.json")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _latest(models: Path, name: str) -> Path:
    versions = [p for p in (models / name).iterdir() if p.is_dir()]
    return max(versions, key=lambda p: [int(x) if x.isdigit() else x for x in p.name.split(".")])


def cases_for(manifest: dict) -> list[dict]:
    """Requests for one model: unconditional draws, edge seeds and every kind of conditioning it takes."""
    cases: list[dict] = [
        {"n": 4, "seed": 0},
        {"n": 7, "seed": 12345, "first_index": 3},
        {"n": 2, "seed": 2**64 - 1},
        {"n": 3, "seed": 42, "return_latents": True},
    ]
    cond = manifest["conditioning"]
    kind = cond["kind"]
    names = list(cond.get("class_names", []))
    if kind == "class":
        cases.append({"n": 5, "seed": 7, "label": names[-1]})
        if "7" in names:
            cases.append({"n": 5, "seed": 7, "digit": 7})
    elif kind == "infogan":
        cases.append({"n": 5, "seed": 7, "category": 2})
        if cond.get("category_to_digit"):
            cases.append({"n": 5, "seed": 7, "digit": 7})
            cases.append({"n": 4, "seed": 9, "label": names[3]})
        k = cond.get("num_continuous", 0)
        if k:
            cases.append(
                {"n": 4, "seed": 9, "category": 1, "continuous": [0.5, -1.0, 0.25][:k] + [0.0] * max(0, k - 3)}
            )
    return cases


def _key(name: str, case: dict) -> str:
    return name + " " + json.dumps(case, sort_keys=True)


def served_digests(address: str, models: Path) -> dict[str, dict[str, str]]:
    """Sample every case through the real SDK (gan.v1 Sample); digest images, classes, latents."""
    from gan_client import GanClient

    out: dict[str, dict[str, str]] = {}
    with GanClient(address) as client:
        for model_dir in sorted(p for p in models.iterdir() if p.is_dir()):
            name = model_dir.name
            manifest = json.loads((_latest(models, name) / "manifest.json").read_text())
            for case in cases_for(manifest):
                kwargs = {k: v for k, v in case.items() if k != "n"}
                res = client.sample(name, case["n"], **kwargs)
                entry = {
                    "images": _sha(np.ascontiguousarray(res.images).tobytes()),
                    "classes": _sha(np.asarray(res.classes, np.int32).tobytes()),
                }
                if case.get("return_latents"):
                    entry["latents"] = _sha(np.asarray(res.latents, np.float32).tobytes())
                out[_key(name, case)] = entry
    return out


def handler_digests(models: Path, staging: Path) -> dict[str, dict[str, str]]:
    """The TorchServe handler, run in process from a staged archive, on the same cases (raw format)."""
    from gan_training.interop.torchserve import stage_archive_files
    from ts.context import Context, RequestProcessor

    class _Metrics:
        def add_time(self, *args, **kwargs) -> None:
            pass

        def add_metric(self, *args, **kwargs) -> None:
            pass

    out: dict[str, dict[str, str]] = {}
    module = None
    for model_dir in sorted(p for p in models.iterdir() if p.is_dir()):
        name = model_dir.name
        version_dir = _latest(models, name)
        manifest = json.loads((version_dir / "manifest.json").read_text())
        if "torchscript" not in manifest["files"]:
            continue
        dest = staging / name
        stage_archive_files(version_dir, dest)
        if module is None:
            for mod in [
                m
                for m in sys.modules
                if m in ("ts_handler", "gan_latents", "gan_manifest") or m.startswith("gan_contract_archive")
            ]:
                sys.modules.pop(mod, None)
            sys.path.insert(0, str(dest))
            try:
                module = importlib.import_module("ts_handler")
            finally:
                sys.path.remove(str(dest))
        mar = {"model": {"modelName": name, "serializedFile": "model.ts", "handler": "ts_handler.py"}}
        ctx = Context(name, str(dest), mar, 1, None, "0.12.0", metrics=_Metrics(), model_yaml_config={})
        ctx.request_processor = [RequestProcessor({})]
        handler = module.GanHandler()
        handler.initialize(ctx)
        for case in cases_for(manifest):
            body = {k: v for k, v in case.items() if k != "return_latents"}
            body["format"] = "raw"
            (output,) = handler.handle([{"body": json.dumps(body).encode()}], ctx)
            images = np.load(io.BytesIO(output), allow_pickle=False)
            out[_key(name, case)] = {"images": _sha(np.ascontiguousarray(images).tobytes())}
    return out
