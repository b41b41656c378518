"""gan-server's options are ServerConfig's fields: each one a flag and a
GAN_SERVER_* variable with the dataclass default, shown in --help, and a bad
value is a one-line error naming the flag.

The real click command parses; only the server it would start is replaced by
a recorder of the configuration it is given."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import pytest
from click.testing import CliRunner
from gan_contract.cli_options import default_of, option_fields
from gan_server import cli
from gan_server.config import ENV_PREFIX, ServerConfig

from .. import option_checks as checks

FIELDS = option_fields(ServerConfig)
STRINGS = {"host": "0.0.0.0"}


def _variable(flag: str) -> str:
    """The documented variable of a flag: --some-flag -> GAN_SERVER_SOME_FLAG."""
    return f"{ENV_PREFIX}_{flag.removeprefix('--').replace('-', '_').upper()}"


@pytest.fixture()
def invoke(monkeypatch):
    """Run gan-server's command; return (result, the ServerConfig it would serve)."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    served: list[ServerConfig] = []
    monkeypatch.setattr(cli, "run", lambda config, **_: served.append(config) or 0)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def go(args: list[str], env: dict[str, str] | None = None):
        served.clear()
        try:
            result = CliRunner().invoke(cli.main, args, env=env)
        finally:  # main() points the root logger at the runner's stderr
            root.handlers[:] = handlers
            root.setLevel(level)
        return result, (served[0] if served else None)

    return go


def test_no_flags_serve_the_dataclass_defaults(invoke) -> None:
    result, config = invoke([])
    assert result.exit_code == 0, result.output
    assert config == ServerConfig()
    assert config.token is None


def test_every_field_has_its_default_and_help_on_the_option() -> None:
    lines = checks.help_lines(cli.main, [])
    for f in FIELDS:
        opt = checks.option(cli.main, f)
        checks.expect_default(f, opt)
        assert opt.envvar is None, f"{opt.opts[0]}: the variable comes from GAN_SERVER_ + the flag"
        line = lines[opt.opts[0]]
        shown = checks.shown_default(opt, default_of(f))
        if shown is not None:
            assert f"[default: {shown}" in line, line


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_every_field_is_a_flag_and_a_variable(invoke, tmp_path, f) -> None:
    opt = checks.option(cli.main, f)
    text = checks.other_value(opt, default_of(f), tmp_path, STRINGS)
    value = checks.typed(cli.main, opt, text)
    assert value != default_of(f)
    expected = replace(ServerConfig(), **{f.name: value})

    result, config = invoke(checks.argv(opt, text))
    assert result.exit_code == 0, result.output
    assert config == expected and config.token == expected.token

    result, config = invoke([], env={_variable(opt.opts[0]): text})
    assert result.exit_code == 0, result.output
    assert config == expected and config.token == expected.token


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_a_bad_value_is_a_one_line_error_naming_the_flag(invoke, tmp_path, f) -> None:
    opt = checks.option(cli.main, f)
    bad = checks.bad_value(opt, tmp_path)
    if bad is None:
        pytest.skip(f"{opt.opts[0]} takes any text")
    if not opt.is_flag:
        result, config = invoke([opt.opts[0], bad])
        assert result.exit_code == 2 and config is None
        checks.one_line_error(result.output, opt.opts[0])
    result, config = invoke([], env={_variable(opt.opts[0]): bad})
    assert result.exit_code == 2 and config is None
    checks.one_line_error(result.output, opt.opts[0])


def test_token_file_and_token_variable(invoke, tmp_path) -> None:
    (tmp_path / "token").write_text("from-the-file\n")
    (tmp_path / "empty").write_text("\n")
    _, config = invoke([], env={f"{ENV_PREFIX}_TOKEN": "from-the-variable"})
    assert config.token == "from-the-variable"
    _, config = invoke(["--token-file", str(tmp_path / "token")], env={f"{ENV_PREFIX}_TOKEN": "from-the-variable"})
    assert config.token == "from-the-file", "--token-file wins over $GAN_SERVER_TOKEN"
    assert "from-the-file" not in repr(config)
    result, _ = invoke(["--token-file", str(tmp_path / "empty")])
    assert "is empty" in checks.one_line_error(result.output, "--token-file")
    result, _ = invoke(["--token-file", str(tmp_path / "missing")])
    assert "cannot read" in checks.one_line_error(result.output, "--token-file")


def test_logging_options_are_variables_too(invoke) -> None:
    result, config = invoke([], env={f"{ENV_PREFIX}_LOG_LEVEL": "loud"})
    assert result.exit_code == 2 and config is None
    checks.one_line_error(result.output, "--log-level")
    result, config = invoke(["--log-format", "json"], env={f"{ENV_PREFIX}_LOG_LEVEL": "debug"})
    assert result.exit_code == 0 and config == ServerConfig()
