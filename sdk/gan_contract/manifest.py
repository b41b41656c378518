"""The model-repository manifest: schema, validation and (de)serialisation.

A model version lives in ``<repo>/<name>/<version>/`` with ``manifest.json``
beside its files. This module is the single definition of that file: the
trainer writes it through :func:`write_manifest`, the server reads it through
:func:`load_manifest`. It uses the standard library only, so the SDK, the
server and the trainer can all import it. The format is documented in
docs/model-repository.md; bump ``SCHEMA_VERSION`` on incompatible changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .files import write_text_atomic

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

CONDITIONING_KINDS = ("none", "class", "infogan")
LATENT_PRIORS = ("normal",)
FILE_FORMATS = ("onnx", "torchscript", "torch_export", "encoder_onnx")
_DTYPES = ("float32", "int64")
# How seeds become latent codes: gan_contract.latents.LATENT_SCHEMES (numpy),
# repeated here to keep this module standard-library only; a test keeps the
# two equal. A manifest without "latent_scheme" has the first.
LATENT_SCHEMES = ("philox4x64-per-image", "philox4x32-vectorised")

# A manifest is a few KiB; anything this large is not one.
MAX_MANIFEST_BYTES = 16 << 20


class ManifestError(ValueError):
    """A manifest that cannot be used. The message names the file and field."""

    def __init__(self, path: Path | str, field_name: str, problem: str) -> None:
        self.path = str(path)
        self.field = field_name
        self.problem = problem
        super().__init__(f"{path}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class ImageSpec:
    height: int
    width: int
    channels: int
    # The generator's output range; the server maps it linearly to 0..255.
    value_range: tuple[float, float] = (-1.0, 1.0)


@dataclass(frozen=True)
class LatentSpec:
    dim: int
    prior: str = "normal"


@dataclass(frozen=True)
class Conditioning:
    kind: str = "none"
    # class: label names by class index. infogan: names of the digits.
    class_names: tuple[str, ...] = ()
    # infogan only
    num_categories: int = 0
    num_continuous: int = 0
    continuous_range: tuple[float, float] = (-1.0, 1.0)
    # category_to_digit[c] = the digit that category c draws (infogan).
    category_to_digit: tuple[int, ...] = ()
    # Free-form facts about how the conditioning was learned (e.g. for
    # InfoGAN: {"training": "semi-supervised", "labelled_fraction": 0.02,
    # "matched_accuracy": 0.98, "per_digit_accuracy": {...}}).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 = dynamic (the batch axis)
    dtype: str


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    variant: str
    dataset: str
    image: ImageSpec
    latent: LatentSpec
    conditioning: Conditioning
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    files: dict[str, FileEntry]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    latent_scheme: str = LATENT_SCHEMES[0]

    def to_json(self) -> str:
        plain = _to_plain(asdict(self))
        if plain["latent_scheme"] == LATENT_SCHEMES[0]:
            del plain["latent_scheme"]  # manifests from before the field keep their bytes
        return json.dumps(plain, indent=2, sort_keys=False) + "\n"


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def expected_inputs(latent: LatentSpec, cond: Conditioning) -> tuple[TensorSpec, ...]:
    """The generator's graph inputs implied by its latent and conditioning.

    none:    z float32 (N, dim)
    class:   z, label int64 (N,)
    infogan: z, category float32 one-hot (N, K), continuous float32 (N, C)
    """
    z = TensorSpec("z", (-1, latent.dim), "float32")
    if cond.kind == "class":
        return (z, TensorSpec("label", (-1,), "int64"))
    if cond.kind == "infogan":
        return (
            z,
            TensorSpec("category", (-1, cond.num_categories), "float32"),
            TensorSpec("continuous", (-1, cond.num_continuous), "float32"),
        )
    return (z,)


class NotRegularFile(OSError):
    """A path that names a FIFO, a socket, a device or a directory where a file was expected."""

    def __init__(self, path: Path | str, kind: str) -> None:
        self.problem = f"is {kind}, not a regular file"
        super().__init__(f"{path} {self.problem}")


def open_regular(path: Path | str):
    """``path`` opened for reading in binary mode, if it is a regular file.

    The open is non-blocking (``O_NONBLOCK``): a FIFO in a file's place would
    otherwise block the opening thread until some writer came. The type is
    then checked on the open descriptor (``fstat``), so what is checked is
    what is read; anything but a regular file raises :class:`NotRegularFile`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else "a special file"
            raise NotRegularFile(path, kind)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_inside(path: Path | str, root: Path | str) -> bool:
    """Whether ``path``, all symbolic links followed, is ``root`` (links followed) or inside it."""
    real = Path(os.path.realpath(path))
    return real.is_relative_to(os.path.realpath(root))


# --------------------------------------------------------------------------
# Validation. Each helper raises ManifestError naming the dotted field.


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.path, name, problem)

    def get(
        self, obj: dict, key: str, prefix: str, kind: type | tuple, required: bool = True, default: Any = None
    ) -> Any:
        name = f"{prefix}{key}"
        if key not in obj:
            if required:
                raise self.fail(name, "is missing")
            return default
        value = obj[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(name, f"must be {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, "must be finite")
        return value

    def positive_int(self, obj: dict, key: str, prefix: str) -> int:
        value = self.get(obj, key, prefix, int)
        if value <= 0:
            raise self.fail(f"{prefix}{key}", f"must be a positive integer, got {value}")
        return value

    def pair(self, obj: dict, key: str, prefix: str, default: tuple[float, float]) -> tuple[float, float]:
        value = self.get(obj, key, prefix, list, required=False, default=list(default))
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self.fail(f"{prefix}{key}", "must be a list of two numbers [low, high]")
        low, high = float(value[0]), float(value[1])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise self.fail(f"{prefix}{key}", f"must satisfy low < high, got {value}")
        return (low, high)


def _kind_name(kind: type | tuple) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        dict: "an object",
        list: "a list",
        bool: "a boolean",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def parse_manifest(data: Any, path: Path | str = MANIFEST_NAME) -> Manifest:
    """Validate a decoded manifest and build a :class:`Manifest`."""
    r = _Reader(Path(path))
    if not isinstance(data, dict):
        raise r.fail("<root>", "must be a JSON object")
    schema = r.get(data, "schema_version", "", int)
    if schema != SCHEMA_VERSION:
        raise r.fail("schema_version", f"unsupported version {schema} (this build reads {SCHEMA_VERSION})")
    name = r.get(data, "name", "", str)
    version = r.get(data, "version", "", str)
    for key, value in (("name", name), ("version", version)):
        if not value or "/" in value or value.startswith("."):
            raise r.fail(key, f"must be a non-empty path segment, got {value!r}")
    variant = r.get(data, "variant", "", str)
    dataset = r.get(data, "dataset", "", str)

    img = r.get(data, "image", "", dict)
    image = ImageSpec(
        height=r.positive_int(img, "height", "image."),
        width=r.positive_int(img, "width", "image."),
        channels=r.positive_int(img, "channels", "image."),
        value_range=r.pair(img, "value_range", "image.", (-1.0, 1.0)),
    )

    lat = r.get(data, "latent", "", dict)
    prior = r.get(lat, "prior", "latent.", str, required=False, default="normal")
    if prior not in LATENT_PRIORS:
        raise r.fail("latent.prior", f"unknown prior {prior!r}; known: {', '.join(LATENT_PRIORS)}")
    latent = LatentSpec(dim=r.positive_int(lat, "dim", "latent."), prior=prior)
    latent_scheme = r.get(data, "latent_scheme", "", str, required=False, default=LATENT_SCHEMES[0])
    if latent_scheme not in LATENT_SCHEMES:
        raise r.fail("latent_scheme", f"unknown scheme {latent_scheme!r}; known: {', '.join(LATENT_SCHEMES)}")

    cond_raw = r.get(data, "conditioning", "", dict)
    kind = r.get(cond_raw, "kind", "conditioning.", str)
    if kind not in CONDITIONING_KINDS:
        raise r.fail("conditioning.kind", f"unknown kind {kind!r}; known: {', '.join(CONDITIONING_KINDS)}")
    class_names = r.get(cond_raw, "class_names", "conditioning.", list, required=False, default=[])
    if not all(isinstance(c, str) and c for c in class_names):
        raise r.fail("conditioning.class_names", "must be a list of non-empty strings")
    if len(set(class_names)) != len(class_names):
        raise r.fail("conditioning.class_names", "must not repeat a name")
    details = r.get(cond_raw, "details", "conditioning.", dict, required=False, default={})
    num_categories = num_continuous = 0
    category_to_digit: list[int] = []
    continuous_range = (-1.0, 1.0)
    if kind == "class":
        if len(class_names) < 2:
            raise r.fail("conditioning.class_names", "a class-conditional model needs at least two class names")
    elif kind == "infogan":
        num_categories = r.positive_int(cond_raw, "num_categories", "conditioning.")
        num_continuous = r.get(cond_raw, "num_continuous", "conditioning.", int)
        if num_continuous < 0:
            raise r.fail("conditioning.num_continuous", "must be >= 0")
        continuous_range = r.pair(cond_raw, "continuous_range", "conditioning.", (-1.0, 1.0))
        category_to_digit = r.get(cond_raw, "category_to_digit", "conditioning.", list, required=False, default=[])
        if category_to_digit:
            if len(category_to_digit) != num_categories or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in category_to_digit
            ):
                raise r.fail(
                    "conditioning.category_to_digit",
                    f"must list one integer digit per category ({num_categories})",
                )
            if class_names and not all(0 <= d < len(class_names) for d in category_to_digit):
                raise r.fail("conditioning.category_to_digit", "names a digit outside class_names")
    cond = Conditioning(
        kind=kind,
        class_names=tuple(class_names),
        num_categories=num_categories,
        num_continuous=num_continuous,
        continuous_range=continuous_range,
        category_to_digit=tuple(category_to_digit),
        details=details,
    )

    want = expected_inputs(latent, cond)
    raw_inputs = r.get(data, "inputs", "", list)
    inputs = tuple(_tensor(r, t, f"inputs[{i}].") for i, t in enumerate(raw_inputs))
    if [(t.name, t.dtype) for t in inputs] != [(t.name, t.dtype) for t in want]:
        raise r.fail(
            "inputs",
            f"do not match the conditioning {kind!r}: expected " + ", ".join(f"{t.name}:{t.dtype}" for t in want),
        )
    for got, exp in zip(inputs, want):
        if got.shape != exp.shape:
            raise r.fail("inputs", f"input {got.name!r} has shape {list(got.shape)}, expected {list(exp.shape)}")
    output = _tensor(r, r.get(data, "output", "", dict), "output.")
    exp_out = (-1, image.channels, image.height, image.width)
    if output.shape != exp_out or output.dtype != "float32":
        raise r.fail("output", f"must be float32 of shape {list(exp_out)} (N, C, H, W)")

    files_raw = r.get(data, "files", "", dict)
    files: dict[str, FileEntry] = {}
    for fmt, entry in files_raw.items():
        prefix = f"files.{fmt}."
        if fmt not in FILE_FORMATS:
            raise r.fail(f"files.{fmt}", f"unknown format; known: {', '.join(FILE_FORMATS)}")
        if not isinstance(entry, dict):
            raise r.fail(f"files.{fmt}", "must be an object with path and sha256")
        rel = r.get(entry, "path", prefix, str)
        if not rel or rel.startswith("/") or ".." in Path(rel).parts:
            raise r.fail(f"{prefix}path", f"must be a relative path inside the version directory, got {rel!r}")
        digest = r.get(entry, "sha256", prefix, str)
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise r.fail(f"{prefix}sha256", "must be 64 lowercase hex digits")
        files[fmt] = FileEntry(rel, digest)
    if "onnx" not in files:
        raise r.fail("files.onnx", "is missing (every model ships an ONNX generator)")

    return Manifest(
        name=name,
        version=version,
        variant=variant,
        dataset=dataset,
        image=image,
        latent=latent,
        conditioning=cond,
        inputs=inputs,
        output=output,
        files=files,
        training=r.get(data, "training", "", dict, required=False, default={}),
        metrics=r.get(data, "metrics", "", dict, required=False, default={}),
        schema_version=schema,
        latent_scheme=latent_scheme,
    )


def _tensor(r: _Reader, raw: Any, prefix: str) -> TensorSpec:
    if not isinstance(raw, dict):
        raise r.fail(prefix.rstrip("."), "must be an object with name, shape and dtype")
    name = r.get(raw, "name", prefix, str)
    shape = r.get(raw, "shape", prefix, list)
    if not all(isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in shape):
        raise r.fail(f"{prefix}shape", "must be a list of positive integers or -1")
    dtype = r.get(raw, "dtype", prefix, str)
    if dtype not in _DTYPES:
        raise r.fail(f"{prefix}dtype", f"unknown dtype {dtype!r}; known: {', '.join(_DTYPES)}")
    return TensorSpec(name, tuple(shape), dtype)


def load_manifest(version_dir: Path | str, verify_files: bool = True, root: Path | str | None = None) -> Manifest:
    """Read and validate ``version_dir/manifest.json``.

    With ``verify_files`` every listed file must be a regular file matching
    its sha256. With ``root`` (a model repository) the manifest and every
    listed file must resolve inside ``root``: a symbolic link out is refused.
    """
    return read_manifest(version_dir, verify_files, root)[0]


def read_manifest(
    version_dir: Path | str, verify_files: bool = True, root: Path | str | None = None
) -> tuple[Manifest, str]:
    """:func:`load_manifest`, and the manifest's text as read."""
    version_dir = Path(version_dir)
    path = version_dir / MANIFEST_NAME
    if root is not None and not is_inside(path, root):
        raise ManifestError(path, "<file>", "resolves outside the model repository")
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_MANIFEST_BYTES:
                raise ManifestError(path, "<file>", f"is {size} bytes; a manifest has at most {MAX_MANIFEST_BYTES}")
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(path, "<file>", "does not exist") from None
    except NotRegularFile as exc:
        raise ManifestError(path, "<file>", exc.problem) from None
    except OSError as exc:
        raise ManifestError(path, "<file>", f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ManifestError(path, "<file>", "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(path, "<file>", f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    manifest = parse_manifest(data, path)
    for fmt, entry in manifest.files.items():
        target = version_dir / entry.path
        if root is not None and not is_inside(target, root):
            raise ManifestError(path, f"files.{fmt}.path", f"{entry.path} resolves outside the model repository")
        if not verify_files:
            continue
        try:
            actual = sha256_file(target)
        except FileNotFoundError:
            raise ManifestError(path, f"files.{fmt}.path", f"{entry.path} does not exist") from None
        except NotRegularFile as exc:
            raise ManifestError(path, f"files.{fmt}.path", f"{entry.path} {exc.problem}") from None
        except OSError as exc:
            raise ManifestError(path, f"files.{fmt}.path", f"{entry.path} cannot be read: {exc.strerror}") from None
        if actual != entry.sha256:
            raise ManifestError(
                path, f"files.{fmt}.sha256", f"{entry.path} has sha256 {actual}, manifest says {entry.sha256}"
            )
    return manifest, text


def write_manifest(version_dir: Path | str, manifest: Manifest) -> Path:
    """Validate ``manifest`` (round trip) and write it to ``version_dir``."""
    version_dir = Path(version_dir)
    path = version_dir / MANIFEST_NAME
    text = manifest.to_json()
    parse_manifest(json.loads(text), path)  # never write what we could not read
    return write_text_atomic(path, text)
