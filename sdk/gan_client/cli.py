"""``gan-client``: sample images from a gan-server from the command line.

    gan-client sample --model infogan --digit 7
    gan-client --server host:50051 --tls --ca-cert ca.pem --token "$TOKEN" list
    gan-client batch --model dcgan --total 100000 --seed 1 --out /data/imgs   # in an Indexed Job

Results go to stdout, diagnostics to stderr. Exit codes:

    0  success
    1  unexpected error (rerun with --debug for the traceback)
    2  bad usage (a wrong flag or value, caught before any call)
    3  server unavailable (nothing answered, TLS handshake failed, or health not SERVING)
    4  not found (unknown model or version)
    5  invalid argument (the server rejected a request field)
    6  other server error (limits, deadline, internal)
    7  not authorized (missing or wrong token, permission denied)
"""

from __future__ import annotations

import os

# Before grpc is first imported (the package imports it lazily): gRPC core
# otherwise logs each failed TLS handshake at INFO on stderr, and an error
# should be one line there.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import contextlib  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import click  # noqa: E402
import numpy as np  # noqa: E402

from . import _core, _images
from ._batch import BatchMismatch, Shard, run_shard
from ._client import GanClient
from ._config import (
    BATCH_CHUNK,
    DEFAULT_SERVER,
    SERVER_ENV,
    SHARD_COUNT_ENV,
    SHARD_INDEX_ENV,
    TOKEN_ENV,
)
from ._exceptions import (
    APIError,
    GanError,
    InvalidArgument,
    ModelNotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from ._interp import METHODS
from ._progress import Progress, progress_enabled
from ._types import ModelInfo, SampleResult

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_INVALID, EXIT_SERVER, EXIT_AUTH = range(8)


def _exit_code(exc: GanError) -> int:
    if isinstance(exc, Unavailable):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ModelNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, InvalidArgument):
        return EXIT_INVALID
    if isinstance(exc, (Unauthenticated, PermissionDenied)):
        return EXIT_AUTH
    if isinstance(exc, APIError):
        return EXIT_SERVER
    return EXIT_ERROR


class _Group(click.Group):
    """Turns SDK errors into one line on stderr and a distinct exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanError as exc:
            if ctx.meta.get("gan_debug"):
                raise
            _fail(str(exc), _exit_code(exc))
        except OSError as exc:
            if ctx.meta.get("gan_debug"):
                raise
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_ERROR)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"gan-client: error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _usage_errors(param_hint: str | None = None) -> Iterator[None]:
    """The SDK's client-side ValueError/TypeError (bad shapes, files, combinations) → exit 2."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        if param_hint:
            raise click.BadParameter(str(exc), param_hint=param_hint) from None
        raise click.UsageError(str(exc)) from None


pass_client = click.make_pass_decorator(GanClient)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=DEFAULT_SERVER,
    show_default=True,
    help=f"HOST:PORT of the gan-server (env {SERVER_ENV}).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Per-call deadline in seconds (default 60; a stream's covers the whole stream).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    show_envvar=True,
    help="Bearer token for servers started with --token-file.",
)
@click.option("--tls", is_flag=True, help="Connect with TLS (system CAs unless --ca-cert).")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle that signed the server's certificate (implies --tls).",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate, for servers that require mTLS (implies --tls).",
)
@click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --client-cert.",
)
@click.option("--tls-server-name", default=None, help="Name to verify in the server certificate, if not the host.")
@click.option(
    "--retries/--no-retries",
    default=True,
    show_default=True,
    help="Retry UNAVAILABLE with exponential backoff (gRPC retry policy).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr for long work. Default: when stdout and stderr are terminals.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    server: str,
    timeout: float | None,
    token: str | None,
    tls: bool,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    tls_server_name: str | None,
    retries: bool,
    progress: bool | None,
    debug: bool,
) -> None:
    """Sample images from GAN generators served by gan-server."""
    ctx.meta["gan_debug"] = debug
    ctx.meta["gan_progress"] = progress_enabled(progress)
    with _usage_errors():
        client = GanClient(
            server,
            timeout=timeout,
            token=token,
            tls=tls,
            root_certificates=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            tls_server_name=tls_server_name,
            retry=retries,
        )
    ctx.obj = ctx.with_resource(client)


@cli.command()
@click.option("--service", default="", help='Service to check: "" (the server) or gan.v1.Generator.')
@pass_client
def health(client: GanClient, service: str) -> None:
    """Check the server's health (grpc.health.v1; needs no token). Exit 0 when SERVING."""
    status = client.health(service)
    click.echo(status)
    if status == "SERVICE_UNKNOWN":
        sys.exit(EXIT_NOT_FOUND)
    if status != "SERVING":
        sys.exit(EXIT_UNAVAILABLE)


def _describe_conditioning(info: ModelInfo) -> str:
    c = info.conditioning
    if c.kind == "class":
        return f"class label ({', '.join(c.class_names)})"
    if c.kind == "infogan":
        mapped = " (digit map)" if c.category_to_digit else ""
        return f"infogan: {c.num_categories} categories{mapped}, {c.num_continuous} continuous codes"
    return "none"


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_client
def list_models(client: GanClient, as_json: bool) -> None:
    """List the models the server has loaded."""
    models = client.list_models()
    if as_json:
        click.echo(json.dumps([_info_dict(m) for m in models], indent=2))
        return
    rows = [("NAME", "VERSION", "VARIANT", "DATASET", "IMAGE", "CONDITIONING")]
    for m in models:
        rows.append(
            (m.name, m.version, m.variant, m.dataset, f"{m.height}x{m.width}x{m.channels}", _describe_conditioning(m))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])


def _info_dict(m: ModelInfo) -> dict[str, Any]:
    c = m.conditioning
    return {
        "name": m.name,
        "version": m.version,
        "versions": list(m.versions),
        "variant": m.variant,
        "dataset": m.dataset,
        "image": [m.height, m.width, m.channels],
        "latent_dim": m.latent_dim,
        "latent_prior": m.latent_prior,
        "conditioning": {
            "kind": c.kind,
            "class_names": list(c.class_names),
            "num_categories": c.num_categories,
            "num_continuous": c.num_continuous,
            "category_to_digit": list(c.category_to_digit),
            "continuous_range": list(c.continuous_range),
        },
    }


@cli.command()
@click.argument("model")
@click.option("--version", default=None, help="A specific version (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the full manifest as JSON.")
@pass_client
def info(client: GanClient, model: str, version: str | None, as_json: bool) -> None:
    """Show a model's inputs, conditioning, training and metrics."""
    m = client.model_info(model, version)
    if as_json:
        click.echo(json.dumps({**_info_dict(m), "manifest": m.manifest}, indent=2))
        return
    c = m.conditioning
    lines = [
        f"model:         {m.name} (version {m.version}; versions: {', '.join(m.versions)})",
        f"variant:       {m.variant}",
        f"dataset:       {m.dataset}",
        f"image:         {m.height}x{m.width}x{m.channels} uint8",
        f"latent:        {m.latent_dim}-d, prior {m.latent_prior}",
        f"conditioning:  {_describe_conditioning(m)}",
    ]
    if c.kind == "infogan" and c.category_to_digit:
        lines.append("digit map:     " + ", ".join(f"category {i} -> {d}" for i, d in enumerate(c.category_to_digit)))
        lines.append(f"codes range:   [{c.continuous_range[0]:g}, {c.continuous_range[1]:g}]")
    details = m.manifest.get("conditioning", {}).get("details", {})
    for key, value in details.items():
        lines.append(f"{key + ':':<14} {_fmt(value)}")
    training = m.manifest.get("training", {})
    if training:
        lines.append(
            "training:      " + ", ".join(f"{k}={_fmt(v)}" for k, v in training.items() if not isinstance(v, dict))
        )
    for key, value in m.manifest.get("metrics", {}).items():
        lines.append(f"{key + ':':<14} {_fmt(value)}")
    click.echo("\n".join(lines))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _parse_codes(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        codes = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 1.5,0; got {value!r}") from None
    if not all(np.isfinite(codes)):
        raise click.BadParameter("codes must be finite numbers")
    return codes


def _conditioning_options(f: Any) -> Any:
    """--digit/--label/--category/--code/--version, shared by sample, interpolate and batch."""
    for decorator in reversed(
        [
            click.option("--digit", type=click.IntRange(0, 9), default=None, help="Digit to draw (cgan, infogan)."),
            click.option("--label", default=None, help="Class name to draw, e.g. sneaker (cgan, infogan digit names)."),
            click.option("--category", type=click.IntRange(min=0), default=None, help="Raw InfoGAN category."),
            click.option(
                "--code",
                "codes",
                callback=_parse_codes,
                default=None,
                help="InfoGAN continuous codes, comma-separated, e.g. 1.5,0.",
            ),
            click.option("--version", default=None, help="Model version (default: latest)."),
        ]
    ):
        f = decorator(f)
    return f


def _conditioning(
    digit: int | None, label: str | None, category: int | None, codes: list[float] | None
) -> dict[str, Any]:
    with _usage_errors():
        _core.check_one_condition(digit, label, category)
    return {"digit": digit, "label": label, "category": category, "continuous": codes}


def _load_latents(ctx: click.Context, param: click.Parameter, value: Path | None) -> np.ndarray | None:
    if value is None:
        return None
    with _usage_errors(param.opts[0]):
        arr = _images.read_npy(value)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise click.BadParameter(f"{value} must hold a float array (n, latent_dim), got {arr.dtype} {arr.shape}")
    return arr.astype(np.float32)


@cli.command()
@click.option("--model", "-m", required=True, help="Model name (see `gan-client list`).")
@click.option(
    "-n",
    "--count",
    "n",
    type=click.IntRange(min=1),
    default=None,
    help="Number of images (default 16, or one per row of --latents).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**64 - 1),
    default=None,
    help="Seed; the same seed gives byte-identical images. Default: random, printed on stderr.",
)
@click.option(
    "--first-index",
    type=click.IntRange(0, 2**64 - 1),
    default=0,
    show_default=True,
    help="Index of the first image in the seed's sequence.",
)
@_conditioning_options
@click.option(
    "--latents",
    "latents",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    callback=_load_latents,
    help="Explicit latent vectors: a .npy float array (n, latent_dim).",
)
@click.option(
    "--save-latents",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the latent vectors used to this .npy file.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="X.png: one grid; X.npy: uint8 array (N,H,W,C); a directory: one PNG per image. "
    "Default: a grid PNG in the current folder.",
)
@click.option("--cols", type=click.IntRange(min=1), default=None, help="Grid columns (default: square).")
@click.pass_context
def sample(
    ctx: click.Context,
    model: str,
    n: int | None,
    seed: int | None,
    first_index: int,
    digit: int | None,
    label: str | None,
    category: int | None,
    codes: list[float] | None,
    version: str | None,
    latents: np.ndarray | None,
    save_latents: Path | None,
    out: Path | None,
    cols: int | None,
) -> None:
    """Generate images and write them as a grid PNG, a .npy array or a folder of PNGs."""
    client: GanClient = ctx.obj
    cond = _conditioning(digit, label, category, codes)
    if latents is not None and n is not None and n != len(latents):
        raise click.BadParameter(f"--latents holds {len(latents)} vectors but -n is {n}", param_hint="-n")
    if n is None:
        n = len(latents) if latents is not None else 16
    _check_out(out)
    if save_latents is not None:
        with _usage_errors("--save-latents"):
            _images.check_parent(save_latents)
    if seed is None:
        seed = secrets.randbits(63)
        click.echo(f"seed {seed}", err=True)
    with _usage_errors():
        stream = client.sample_stream(
            model,
            n,
            seed,
            first_index=first_index,
            latents=latents,
            version=version,
            return_latents=save_latents is not None,
            **cond,
        )
    parts = []
    with Progress(n, f"{model}", ctx.meta["gan_progress"]) as bar:
        for part in stream:
            parts.append(part)
            bar.advance(len(part))
    result = SampleResult.concatenate(parts)
    paths = _write(result, out, _default_name(model, seed, digit, label, category), cols)
    if save_latents is not None and result.latents is not None:
        paths.append(_images.write_npy(result.latents, save_latents))
    for path in paths:
        click.echo(str(path))


@cli.command()
@click.option("--model", "-m", required=True, help="Model name (see `gan-client list`).")
@click.option("--from", "start", type=click.IntRange(0, 2**64 - 1), required=True, help="Seed of the first frame.")
@click.option("--to", "end", type=click.IntRange(0, 2**64 - 1), required=True, help="Seed of the last frame.")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True, help="Frames, ends included.")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="lerp",
    show_default=True,
    help="Linear or spherical interpolation of the latent vectors.",
)
@_conditioning_options
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="X.png: a one-row strip; X.npy: uint8 frames (steps,H,W,C); a directory: one PNG per frame. "
    "Default: a strip PNG in the current folder.",
)
@pass_client
def interpolate(
    client: GanClient,
    model: str,
    start: int,
    end: int,
    steps: int,
    method: str,
    digit: int | None,
    label: str | None,
    category: int | None,
    codes: list[float] | None,
    version: str | None,
    out: Path | None,
) -> None:
    """A strip of frames whose latent vector walks from one seed's image 0 to another's.

    Conditional models need --digit/--label (or --category); InfoGAN codes
    default to the middle of their range (--code to choose). The end frames
    are the images `sample -n 1` gives for the two seeds with that conditioning.
    """
    cond = _conditioning(digit, label, category, codes)
    _check_out(out)
    with _usage_errors():
        result = client.interpolate(model, start, end, steps, method, version=version, **cond)
    default = f"{model}{_cond_suffix(digit, label, category)}-{method}-s{start}-s{end}.png"
    for path in _write(result, out, default, cols=steps):
        click.echo(str(path))


@cli.command()
@click.option("--model", "-m", required=True, help="A model with an encoder (BiGAN, VAE-GAN).")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", default=None, help="Model version (default: latest).")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the latents: a .npy float32 array (N, latent_dim), in argument order.",
)
@pass_client
def encode(client: GanClient, model: str, images: tuple[Path, ...], version: str | None, out: Path) -> None:
    """Map images to latent vectors with the model's encoder.

    IMAGES are image files (PNG, ...; converted to the model's channels) or
    .npy files of uint8 images ([N,] H, W[, C]); sizes must be the model's.
    """
    with _usage_errors("--out"):
        _images.check_parent(out)
    info = client.model_info(model, version)
    with _usage_errors("IMAGES"):
        batch = _images.read_images(images, info)
    latents = client.encode(model, batch, version=info.version)
    click.echo(str(_images.write_npy(latents, out)))


@cli.command()
@click.option("--model", "-m", required=True, help="Model name.")
@click.option("--total", type=click.IntRange(min=1), required=True, help="Images in the whole job (all shards).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), required=True, help="Seed of the whole job.")
@click.option(
    "--shard-index",
    type=click.IntRange(min=0),
    envvar=SHARD_INDEX_ENV,
    default=None,
    help=f"This shard's index (env {SHARD_INDEX_ENV}, set by Kubernetes Indexed Jobs).",
)
@click.option(
    "--shard-count",
    type=click.IntRange(min=1),
    envvar=SHARD_COUNT_ENV,
    default=None,
    help=f"Number of shards (env {SHARD_COUNT_ENV}: set it to the Job's completions).",
)
@_conditioning_options
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory (shared by all shards).",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=BATCH_CHUNK,
    show_default=True,
    help="Images per request; a killed shard redoes at most one chunk.",
)
@click.pass_context
def batch(
    ctx: click.Context,
    model: str,
    total: int,
    seed: int,
    shard_index: int | None,
    shard_count: int | None,
    digit: int | None,
    label: str | None,
    category: int | None,
    codes: list[float] | None,
    version: str | None,
    out: Path,
    chunk: int,
) -> None:
    """Generate one shard of a large, resumable batch: one PNG per image.

    Shard I of K owns images [I*N//K, (I+1)*N//K) of the seed's sequence and
    writes them as OUT/img-<index>.png (atomically); files already there are
    skipped, so a retried shard resumes. At the end it writes
    OUT/shard-I-of-K.json with each file's sha256 and prints its path.
    """
    client: GanClient = ctx.obj
    cond = _conditioning(digit, label, category, codes)
    if shard_index is None:
        raise click.UsageError(f"--shard-index is required (or set {SHARD_INDEX_ENV}, as Kubernetes Indexed Jobs do)")
    if shard_count is None:
        raise click.UsageError(f"--shard-count is required (or set {SHARD_COUNT_ENV} to the Job's completions)")
    if shard_index >= shard_count:
        raise click.BadParameter(
            f"must be below --shard-count ({shard_count}), got {shard_index}", param_hint="--shard-index"
        )
    if shard_count > total:
        raise click.BadParameter(f"more shards ({shard_count}) than images ({total})", param_hint="--shard-count")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is not a directory", param_hint="--out")
    shard = Shard(shard_index, shard_count, total)
    try:
        manifest = run_shard(
            client,
            out,
            shard,
            model=model,
            seed=seed,
            version=version,
            conditioning=cond,
            chunk=chunk,
            progress=ctx.meta["gan_progress"],
        )
    except BatchMismatch as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        f"shard {shard.index}/{shard.count}: images [{shard.start}, {shard.end}) of seed {seed}: "
        f"{manifest['written']} written, {manifest['count'] - manifest['written']} already there",
        err=True,
    )
    click.echo(str(out / shard.manifest_name))


def _cond_suffix(digit: int | None, label: str | None, category: int | None) -> str:
    if digit is not None:
        return f"-d{digit}"
    if label:
        return f"-{label}"
    return f"-c{category}" if category is not None else ""


def _default_name(model: str, seed: int, digit: int | None, label: str | None, category: int | None) -> str:
    return f"{model}{_cond_suffix(digit, label, category)}-s{seed}.png"


def _check_out(out: Path | None) -> None:
    """Fail on an unusable --out before any work is done."""
    if out is not None:
        with _usage_errors("--out"):
            _images.output_kind(out)


def _write(result: SampleResult, out: Path | None, default_name: str, cols: int | None) -> list[Path]:
    """Write to --out (default: a grid PNG in the current folder); a directory of many files prints as itself."""
    with _usage_errors("--out"):
        paths = result.write(Path.cwd() / default_name if out is None else out, cols)
    return [out] if out is not None and len(paths) > 1 else paths


def main() -> None:
    cli(prog_name="gan-client")


if __name__ == "__main__":  # pragma: no cover
    main()
