"""What the CLI tests need to check that a command's options are its
configuration dataclass's fields (gan_contract.cli_options): the option of a
field, a value it accepts other than its default, and one it rejects."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner
from gan_contract.cli_options import default_of, param_name


def option(command: click.Command, f: dataclasses.Field) -> click.Option:
    """The option of ``command`` that sets field ``f``."""
    (opt,) = [p for p in command.params if p.name == param_name(f)]
    assert isinstance(opt, click.Option)
    return opt


def _number(opt: click.Option, default: Any) -> str:
    t = opt.type
    lo, hi = getattr(t, "min", None), getattr(t, "max", None)
    step = 1 if t.name.startswith("integer") else 0.25
    start = default if default is not None else (lo if lo is not None else 0)
    value = start + step
    if hi is not None and value >= hi:
        value = start - step
    return str(value)


def other_value(opt: click.Option, default: Any, tmp_path: Path, strings: dict[str, str]) -> str:
    """Text (as on the command line or in a variable) for a value other than ``default``."""
    t = opt.type
    if opt.is_flag:
        return "false" if default else "true"
    if isinstance(t, click.Choice):
        return next(c for c in t.choices if c != default)
    if isinstance(t, click.Path):
        path = tmp_path / f"{opt.name}-value"
        if not t.dir_okay:  # a file: some options read it (--token-file)
            path.write_text(f"contents of {opt.name}\n")
        return str(path)
    if t.name in ("integer", "float", "integer range", "float range"):
        return _number(opt, default)
    return strings.get(opt.name, f"other-{opt.name}")


def bad_value(opt: click.Option, tmp_path: Path) -> str | None:
    """Text the option's type rejects, or None where it takes any text."""
    t = opt.type
    if opt.is_flag:
        return "maybe"
    if isinstance(t, click.Choice):
        return "no-such-choice"
    if isinstance(t, click.Path):
        if t.dir_okay:
            (tmp_path / "a-file").write_text("")
            return str(tmp_path / "a-file")
        return str(tmp_path)  # a directory where a file belongs
    if t.name.endswith("range") and getattr(t, "min", None) is not None:
        return str(t.min - 1)
    if t.name in ("integer", "float", "integer range", "float range"):
        return "not-a-number"
    return None


def argv(opt: click.Option, text: str) -> list[str]:
    """The command-line words setting ``opt`` to ``text``."""
    if opt.is_flag:
        on = text == "true"
        return [opt.opts[0]] if on else list(opt.secondary_opts[:1])
    return [opt.opts[0], text]


def typed(command: click.Command, opt: click.Option, text: str) -> Any:
    """``text`` as the option's type (and callback) makes it."""
    if opt.is_flag:
        return text == "true"
    ctx = click.Context(command)
    value = opt.type_cast_value(ctx, text)
    return opt.callback(ctx, opt, value) if opt.callback else value


def expect_default(f: dataclasses.Field, opt: click.Option) -> None:
    assert opt.default == default_of(f), f"{opt.opts[0]} defaults to {opt.default!r}, {f.name} to {default_of(f)!r}"
    assert opt.help == f.metadata.get("help")


def help_lines(command: click.Command, args: list[str]) -> dict[str, str]:
    """``--help``, unwrapped: first flag of each option -> its text."""
    out = CliRunner().invoke(command, [*args, "--help"], terminal_width=1000, max_content_width=1000)
    assert out.exit_code == 0, out.output
    lines: dict[str, str] = {}
    flag = None
    for line in out.output.splitlines():
        words = line.split()
        if words and words[0].startswith("-"):
            flag = words[0]
            lines[flag] = line
        elif words and flag:  # a long flag's help goes on the next line
            lines[flag] += " " + " ".join(words)
    return lines


def shown_default(opt: click.Option, default: Any) -> str | None:
    """What ``--help`` shows as the default, or None where it shows none."""
    if default is None or default is False:
        return None
    if opt.is_flag:
        return opt.opts[0].lstrip("-") if default else opt.secondary_opts[0].lstrip("-")
    return str(default)


def one_line_error(output: str, flag: str) -> str:
    """The error click printed: one line, naming ``flag``."""
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert output.rstrip().endswith(errors[0]), output
    assert flag in errors[0], output
    return errors[0]
