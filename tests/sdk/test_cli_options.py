"""gan_contract.cli_options on a small dataclass: derived flags, overrides,
fields without an option, and what build() leaves to the command."""

from __future__ import annotations

from dataclasses import dataclass

import click
import pytest
from click.testing import CliRunner
from gan_contract.cli_options import build, option_fields, options, setting


@dataclass(frozen=True)
class _Config:
    name: str = setting("a", "A name.", type=click.Choice(["a", "b"]))
    fast: bool = setting(True, "Go fast.")
    verbose: bool = setting(False)
    internal: int = setting(7, cli=False)
    secret: str | None = setting(None, flag="--secret-file", param="secret_file", repr=False)


def _command(**overrides):
    seen = {}

    @click.command()
    @options(_Config, **overrides)
    @click.option("--dry-run", is_flag=True)
    def cmd(dry_run: bool, **values) -> None:
        seen["config"] = build(_Config, values, internal=8)
        seen["rest"] = {"dry_run": dry_run, **values}

    return cmd, seen


def test_flags_come_from_the_field_names() -> None:
    cmd, seen = _command()
    assert [p.opts for p in cmd.params] == [["--name"], ["--fast"], ["--verbose"], ["--secret-file"], ["--dry-run"]]
    assert cmd.params[1].secondary_opts == ["--no-fast"]
    assert [f.name for f in option_fields(_Config)] == ["name", "fast", "verbose", "secret"]
    result = CliRunner().invoke(cmd, ["--no-fast", "--verbose", "--secret-file", "x", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert seen["config"] == _Config(fast=False, verbose=True, internal=8, secret="x")
    assert seen["rest"] == {"dry_run": True}, "build() takes the config's values, leaves the command's"


def test_overrides_replace_the_fields_click_keywords() -> None:
    cmd, seen = _command(overrides={"name": {"type": click.Choice(["a", "c"])}})
    assert CliRunner().invoke(cmd, ["--name", "c"]).exit_code == 0
    assert seen["config"].name == "c"
    assert CliRunner().invoke(cmd, ["--name", "b"]).exit_code == 2
    with pytest.raises(ValueError, match="internal"):
        options(_Config, overrides={"internal": {}})
