"""Sharded, resumable batch generation (``gan-client batch``).

Shard I of K owns the fixed index range [I*N//K, (I+1)*N//K) of one seed's
sequence. Image i is written once, atomically, as ``img-<i>.png``; a rerun of a
shard (a retried pod) skips the files that exist, so it only computes what is
missing, and ends by writing ``shard-I-of-K.json`` with every file's sha256.
Because image i depends only on (seed, i) and the conditioning, any K, any
chunking and any number of interruptions give the same bytes.

``batch.json`` in the output directory pins the job (model, version, seed,
total, conditioning): a shard started with other settings refuses to mix its
images in, and shards started without ``--version`` adopt the pinned one, so a
model hot-reloaded mid-job cannot mix two versions.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_contract.files import write_bytes_atomic, write_text_atomic

from ._client import GanClient
from ._images import encode_png
from ._progress import Progress

JOB_FILE = "batch.json"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"total must be >= 1, got {self.total}")
        if self.count < 1:
            raise ValueError(f"shard count must be >= 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be in [0, {self.count - 1}], got {self.index}")

    @property
    def start(self) -> int:
        return self.index * self.total // self.count

    @property
    def end(self) -> int:
        return (self.index + 1) * self.total // self.count

    @property
    def manifest_name(self) -> str:
        return f"shard-{self.index}-of-{self.count}.json"


class BatchMismatch(ValueError):
    """The output directory holds a batch made with other settings."""


def image_name(index: int, total: int) -> str:
    return f"img-{index:0{max(8, len(str(total - 1)))}d}.png"


def runs(indices: Iterable[int], chunk: int) -> list[tuple[int, int]]:
    """Sorted indices → (first_index, count) requests of consecutive indices, at most ``chunk`` each."""
    out: list[tuple[int, int]] = []
    for i in sorted(indices):
        if out and out[-1][0] + out[-1][1] == i and out[-1][1] < chunk:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def pin_job(out: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Write ``batch.json`` if absent; else check that ``job`` matches it.

    ``job["version"]`` None means "whatever is pinned, else the caller's
    resolved latest" and is filled in by the caller before writing.
    """
    path = out / JOB_FILE
    if not path.exists():
        _write_json_atomic(path, job)
        return job
    pinned = json.loads(path.read_text(encoding="utf-8"))
    diffs = [
        f"{k} {pinned.get(k)!r} (asked: {job.get(k)!r})"
        for k in sorted(set(job) | set(pinned))
        if pinned.get(k) != job.get(k)
    ]
    if diffs:
        raise BatchMismatch(
            f"{path} pins another batch: {'; '.join(diffs)}. Use a new --out directory, or rerun with the "
            f"pinned settings"
        )
    return pinned


def pinned_version(out: Path) -> str | None:
    path = out / JOB_FILE
    if path.exists():
        version = json.loads(path.read_text(encoding="utf-8")).get("version")
        return str(version) if version else None
    return None


def _present(out: Path, shard: Shard) -> set[int]:
    """Indices of this shard whose PNG exists; this shard's stale temp files are removed."""
    width = len(image_name(0, shard.total)) - len("img-.png")
    present: set[int] = set()
    with os.scandir(out) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("img-") and name.endswith(".png") and len(name) == width + 8:
                idx = name[4:-4]
                if idx.isdigit() and shard.start <= int(idx) < shard.end:
                    present.add(int(idx))
            elif name.startswith(".img-") and name.endswith(".tmp"):
                idx = name[5 : 5 + width]
                if idx.isdigit() and shard.start <= int(idx) < shard.end:
                    Path(entry.path).unlink(missing_ok=True)  # left by a killed run of this shard
    return present


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_shard(
    client: GanClient,
    out: Path,
    shard: Shard,
    *,
    model: str,
    seed: int,
    version: str | None,
    conditioning: dict[str, Any],
    chunk: int,
    progress: bool,
) -> dict[str, Any]:
    """Generate this shard's missing images, then write and return its manifest."""
    out.mkdir(parents=True, exist_ok=True)
    version = version or pinned_version(out) or client.model_info(model).version
    request = {k: v for k, v in conditioning.items() if v is not None}
    job = pin_job(
        out, {"model": model, "version": version, "seed": seed, "total": shard.total, "conditioning": request}
    )
    present = _present(out, shard)
    missing = [i for i in range(shard.start, shard.end) if i not in present]
    label = f"shard {shard.index}/{shard.count}" + (f" ({len(present)} already done)" if present else "")
    digests: dict[int, str] = {}
    with Progress(len(missing), label, progress) as bar:
        for first, n in runs(missing, chunk):
            for part in client.sample_stream(model, n, seed, first_index=first, version=version, **conditioning):
                for j, image in enumerate(part.images):
                    # A concurrent run of the same shard writes the same bytes: replacing is harmless.
                    data = encode_png(image, part.metadata(j))
                    write_bytes_atomic(out / image_name(part.start + j, shard.total), data)
                    digests[part.start + j] = hashlib.sha256(data).hexdigest()
                bar.advance(len(part))
    written = len(digests)
    files = {}
    for i in range(shard.start, shard.end):
        name = image_name(i, shard.total)
        files[name] = digests[i] if i in digests else _sha256(out / name)
    manifest = {
        **job,
        "shard_index": shard.index,
        "shard_count": shard.count,
        "first_index": shard.start,
        "end_index": shard.end,
        "count": len(files),
        "written": written,
        "files": files,
    }
    _write_json_atomic(out / shard.manifest_name, manifest)
    return manifest
