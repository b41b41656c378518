"""``gan-client``: sample images from a gan-server from the command line.

    gan-client sample --model infogan --digit 7
    gan-client --server host:50051 list

Results go to stdout, diagnostics to stderr. Exit codes:

    0  success
    1  unexpected error (rerun with --debug for the traceback)
    2  bad usage (a wrong flag or value, caught before any call)
    3  server unavailable (nothing answered at the address)
    4  not found (unknown model or version)
    5  invalid argument (the server rejected a request field)
    6  other server error (limits, authentication, deadline, internal)
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import numpy as np

from ._client import GanClient
from ._config import DEFAULT_SERVER, SERVER_ENV
from ._exceptions import APIError, ConnectionFailed, GanError, InvalidArgument, ModelNotFound
from ._types import ModelInfo, SampleResult

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_INVALID, EXIT_SERVER = range(7)


def _exit_code(exc: GanError) -> int:
    if isinstance(exc, ConnectionFailed):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ModelNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, InvalidArgument):
        return EXIT_INVALID
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


pass_client = click.make_pass_decorator(GanClient)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--server", envvar=SERVER_ENV, default=DEFAULT_SERVER, show_default=True,
              help=f"HOST:PORT of the gan-server (env {SERVER_ENV}).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Per-call deadline in seconds (default 60).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, server: str, timeout: float | None, debug: bool) -> None:
    """Sample images from GAN generators served by gan-server."""
    ctx.meta["gan_debug"] = debug
    ctx.obj = ctx.with_resource(GanClient(server, timeout=timeout))


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
        rows.append((m.name, m.version, m.variant, m.dataset, f"{m.height}x{m.width}x{m.channels}",
                     _describe_conditioning(m)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])


def _info_dict(m: ModelInfo) -> dict[str, Any]:
    c = m.conditioning
    return {
        "name": m.name, "version": m.version, "versions": list(m.versions), "variant": m.variant,
        "dataset": m.dataset, "image": [m.height, m.width, m.channels], "latent_dim": m.latent_dim,
        "latent_prior": m.latent_prior,
        "conditioning": {
            "kind": c.kind, "class_names": list(c.class_names), "num_categories": c.num_categories,
            "num_continuous": c.num_continuous, "category_to_digit": list(c.category_to_digit),
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
        lines.append(f"{key + ':':<15}{_fmt(value)}")
    training = m.manifest.get("training", {})
    if training:
        lines.append("training:      " + ", ".join(f"{k}={_fmt(v)}" for k, v in training.items() if not isinstance(v, dict)))
    for key, value in m.manifest.get("metrics", {}).items():
        lines.append(f"{key + ':':<15}{_fmt(value)}")
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


@cli.command()
@click.option("--model", "-m", required=True, help="Model name (see `gan-client list`).")
@click.option("-n", "--count", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Number of images.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=None,
              help="Seed; the same seed gives byte-identical images. Default: random, printed on stderr.")
@click.option("--digit", type=click.IntRange(0, 9), default=None, help="Digit to draw (cgan, infogan).")
@click.option("--label", default=None, help="Class name to draw, e.g. sneaker.")
@click.option("--category", type=click.IntRange(min=0), default=None, help="Raw InfoGAN category.")
@click.option("--code", "codes", callback=_parse_codes, default=None,
              help="InfoGAN continuous codes, comma-separated, e.g. 1.5,0.")
@click.option("--version", default=None, help="Model version (default: latest).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="X.png: one grid; X.npy: uint8 array (N,H,W,C); a directory: one PNG per image. "
                   "Default: a grid PNG in the current folder.")
@click.option("--cols", type=click.IntRange(min=1), default=None, help="Grid columns (default: square).")
@pass_client
def sample(client: GanClient, model: str, n: int, seed: int | None, digit: int | None, label: str | None,
           category: int | None, codes: list[float] | None, version: str | None, out: Path | None,
           cols: int | None) -> None:
    """Generate images and write them as a grid PNG, a .npy array or a folder of PNGs."""
    chosen = [name for name, v in (("--digit", digit), ("--label", label), ("--category", category)) if v is not None]
    if len(chosen) > 1:
        raise click.UsageError(f"give at most one of --digit, --label, --category (got {', '.join(chosen)})")
    if seed is None:
        seed = secrets.randbits(63)
        click.echo(f"seed {seed}", err=True)
    result = client.sample(model, n=n, seed=seed, digit=digit, label=label, category=category,
                           continuous=codes, version=version)
    for path in _write(result, out, _default_name(model, seed, digit, label, category), cols):
        click.echo(str(path))


def _default_name(model: str, seed: int, digit: int | None, label: str | None, category: int | None) -> str:
    cond = f"-d{digit}" if digit is not None else f"-{label}" if label else f"-c{category}" if category is not None else ""
    return f"{model}{cond}-s{seed}.png"


def _write(result: SampleResult, out: Path | None, default_name: str, cols: int | None) -> list[Path]:
    if out is None:
        return [result.save_grid(Path.cwd() / default_name, cols)]
    suffix = out.suffix.lower()
    if suffix == ".png" and not out.is_dir():
        _parent_must_exist(out)
        return [result.save_grid(out, cols)]
    if suffix == ".npy" and not out.is_dir():
        _parent_must_exist(out)
        tmp = out.with_name(f".{out.name}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, result.images)
        tmp.replace(out)
        return [out]
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory; use a .png or .npy name", param_hint="--out")
    paths = result.save(out)
    return [out] if len(paths) > 1 else paths


def _parent_must_exist(path: Path) -> None:
    if not path.parent.is_dir():
        raise click.BadParameter(f"directory {path.parent} does not exist", param_hint="--out")


def main() -> None:
    cli(prog_name="gan-client")


if __name__ == "__main__":  # pragma: no cover
    main()
