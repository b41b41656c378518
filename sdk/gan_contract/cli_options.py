"""Command-line options written once, on the dataclass fields they set.

A configuration dataclass declares each field with :func:`setting`: its
default, its help text and, where click cannot tell them from the default,
its flag and its click type. :func:`options` turns the fields into click
options and :func:`build` turns the parsed values back into the dataclass,
so a default, a range or a help line is never written a second time in a
command::

    @dataclass(frozen=True)
    class Config:
        port: int = setting(50051, "TCP port.", type=click.IntRange(0, 65535))

    @click.command()
    @options(Config)
    def main(**values):
        config = build(Config, values)

The flag is ``--`` plus the field name with dashes; a boolean that defaults
to true gets ``--name/--no-name``. The click parameter (hence the
``auto_envvar_prefix`` variable) is named after the field unless ``param``
says otherwise. This module imports click only when :func:`options` runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_KEY = "cli"


def setting(
    default: Any = dataclasses.MISSING,
    help: str | None = None,
    *,
    flag: str | tuple[str, ...] | None = None,
    param: str | None = None,
    type: Any = None,
    required: bool = False,
    cli: bool = True,
    repr: bool = True,
    **click_kwargs: Any,
) -> Any:
    """A dataclass field with its command-line option.

    ``flag``: the option's declaration(s) when not the one derived from the
    field name. ``param``: the click parameter name (what the command
    receives and what ``auto_envvar_prefix`` appends) when not the field
    name. ``required``: the option must be given; the dataclass default then
    serves only code that builds the dataclass itself. ``cli=False``: a field
    with no option. Other keywords (``callback``, ``metavar``...) go to
    ``click.Option`` as they are.
    """
    spec = None
    if cli:
        spec = {"flag": flag, "param": param, "type": type, "required": required, "extra": click_kwargs}
    return dataclasses.field(default=default, repr=repr, metadata={"help": help, _KEY: spec})


def _spec(f: dataclasses.Field) -> dict[str, Any] | None:
    return f.metadata.get(_KEY)


def param_name(f: dataclasses.Field) -> str:
    """The click parameter name of field ``f``'s option."""
    spec = _spec(f) or {}
    return spec.get("param") or f.name


def default_of(f: dataclasses.Field) -> Any:
    """Field ``f``'s default (``dataclasses.MISSING`` when it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that have an option, in declaration order."""
    return [f for f in dataclasses.fields(cls) if _spec(f) is not None]


def options(
    cls: type, *, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one click option per field of dataclass ``cls``.

    ``overrides`` maps a field name to ``click.Option`` keywords that replace
    the field's own for this command (e.g. a ``type`` whose choices come
    from a registry the configuration module must not import).
    """
    import click

    overrides = overrides or {}
    unknown = set(overrides) - {f.name for f in option_fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__} has no option fields {sorted(unknown)}")
    made = []
    for f in option_fields(cls):
        spec = _spec(f)
        default = default_of(f)
        kwargs: dict[str, Any] = {"help": f.metadata.get("help"), **spec["extra"]}
        if spec["type"] is not None:
            kwargs["type"] = spec["type"]
        if spec["required"]:
            kwargs["required"] = True
        elif default is not dataclasses.MISSING:
            kwargs["default"] = default
        flag = spec["flag"]
        if isinstance(default, bool):
            kwargs["is_flag"] = True
        if flag is None:
            dashed = "--" + f.name.replace("_", "-")
            flag = f"{dashed}/--no-{dashed[2:]}" if default is True else dashed
        decls = (flag,) if isinstance(flag, str) else tuple(flag)
        kwargs.update(overrides.get(f.name, {}))
        made.append(click.option(*decls, param_name(f), **kwargs))

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for add in reversed(made):  # click lists options in decorator order, top first
            func = add(func)
        return func

    return decorate


def build(cls: type[T], values: dict[str, Any], **more: Any) -> T:
    """An instance of dataclass ``cls`` from the values its :func:`options` parsed.

    The values are popped from ``values``, leaving the command's own options
    there; ``more`` sets fields that have no option.
    """
    kwargs = {f.name: values.pop(param_name(f)) for f in option_fields(cls) if param_name(f) in values}
    return cls(**kwargs, **more)
