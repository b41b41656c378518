"""`gan-train fit`'s options are TrainConfig's fields: each one a flag with
the dataclass default, shown in --help, and a bad value is a one-line error
naming the flag.

The real click command parses; only the training it would start is replaced
by a recorder of the configuration it is given."""

from __future__ import annotations

from dataclasses import replace

import gan_training.trainer
import pytest
from click.testing import CliRunner
from gan_contract.cli_options import default_of, option_fields
from gan_training.cli import main
from gan_training.config import TrainConfig

from .. import option_checks as checks

FIT = main.commands["fit"]
FIELDS = option_fields(TrainConfig)
STRINGS = {"variant": "wgan-gp", "dataset": "ring8", "device": "cpu"}


@pytest.fixture()
def invoke(monkeypatch, tmp_path):
    """Run `gan-train fit --out RUN ARGS`; return (result, the TrainConfig it would train)."""
    trained: list[tuple[TrainConfig, dict]] = []

    def record(cfg: TrainConfig, **kwargs) -> str:
        trained.append((cfg, kwargs))
        return cfg.out

    monkeypatch.setattr(gan_training.trainer, "fit", record)
    run = str(tmp_path / "run")

    def go(args: list[str]):
        trained.clear()
        result = CliRunner().invoke(main, ["fit", "--out", run, *args])
        return result, (trained[0][0] if trained else None), (trained[0][1] if trained else None)

    go.run = run
    return go


def test_no_flags_train_the_dataclass_defaults(invoke) -> None:
    result, cfg, kwargs = invoke([])
    assert result.exit_code == 0, result.output
    assert cfg == TrainConfig(out=invoke.run)
    assert kwargs == {"resume": False, "progress": True}
    _, _, kwargs = invoke(["--resume", "--no-progress"])
    assert kwargs == {"resume": True, "progress": False}


def test_out_is_required() -> None:
    result = CliRunner().invoke(main, ["fit"])
    assert result.exit_code == 2
    checks.one_line_error(result.output, "--out")


def test_every_field_has_its_default_and_help_on_the_option() -> None:
    lines = checks.help_lines(main, ["fit"])
    for f in FIELDS:
        opt = checks.option(FIT, f)
        if opt.required:
            assert f.name == "out", f"{opt.opts[0]} is required"
            continue
        checks.expect_default(f, opt)
        shown = checks.shown_default(opt, default_of(f))
        if shown is not None:
            assert f"[default: {shown}" in lines[opt.opts[0]], lines[opt.opts[0]]


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_every_field_is_a_flag(invoke, tmp_path, f) -> None:
    opt = checks.option(FIT, f)
    text = checks.other_value(opt, default_of(f), tmp_path, STRINGS)
    value = checks.typed(FIT, opt, text)
    assert value != default_of(f) or f.name == "out"
    result, cfg, _ = invoke(checks.argv(opt, text))
    assert result.exit_code == 0, result.output
    assert cfg == replace(TrainConfig(out=invoke.run), **{f.name: value})


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_a_bad_value_is_a_one_line_error_naming_the_flag(invoke, tmp_path, f) -> None:
    opt = checks.option(FIT, f)
    bad = "no-such-variant" if f.name == "variant" else checks.bad_value(opt, tmp_path)
    if bad is None or opt.is_flag:
        pytest.skip(f"{opt.opts[0]} takes any text" if bad is None else f"{opt.opts[0]} is a flag")
    result, cfg, _ = invoke([opt.opts[0], bad])
    assert result.exit_code == 2 and cfg is None
    checks.one_line_error(result.output, opt.opts[0])
