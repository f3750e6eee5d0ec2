"""Every flag of every command has help text that shows its default; ``--version`` says which version."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import confluent_kafka
import pytest

from driftsentinel import __version__
from driftsentinel.stream import local_kafka
from driftsentinel.stream.cli import CliParser, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of the top level, every subcommand, and local-kafka's own subcommands."""
    top = build_parser()
    yield "driftsentinel", top
    launcher = local_kafka.build_parser("driftsentinel local-kafka", CliParser)
    for parser in (top, launcher):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if name != "local-kafka":  # a pass-through to `launcher`, walked here too
                        yield sub.prog, sub


def _flags() -> Iterator[tuple[str, argparse.Action, argparse.ArgumentParser]]:
    for prog, parser in _commands():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            yield f"{prog} {'/'.join(action.option_strings) or action.dest}", action, parser


FLAGS = list(_flags())


def test_every_command_is_walked() -> None:
    progs = {prog for prog, _ in _commands()}
    for command in ("run", "demo", "replay", "baseline", "calibrate", "skew", "schema"):
        assert f"driftsentinel {command}" in progs
    for command in ("start", "stop", "status", "fetch"):
        assert f"driftsentinel local-kafka {command}" in progs
    assert len(FLAGS) > 60


@pytest.mark.parametrize(("name", "action", "parser"), FLAGS, ids=[name for name, _, _ in FLAGS])
def test_every_flag_has_help_and_shows_its_default(
    name: str, action: argparse.Action, parser: argparse.ArgumentParser
) -> None:
    assert action.help and action.help != argparse.SUPPRESS, f"{name}: no help text"
    shown = parser._get_formatter()._expand_help(action)  # as --help prints it
    if action.required or not action.option_strings or action.default == argparse.SUPPRESS:
        return  # a required flag, a positional (its choices are listed) or --version: no default to show
    assert "default" in shown, f"{name}: help does not show the default: {shown!r}"
    if action.default not in (None, False):
        written = {str(action.default)} | ({f"{action.default:g}"} if isinstance(action.default, float) else set())
        assert any(w in shown for w in written), f"{name}: default {action.default!r} not in {shown!r}"


def test_help_prints_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: 1.0)" in out and "(default: 1000000)" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == declared
    assert line.startswith(f"driftsentinel {declared} (Python ")
    assert f"confluent-kafka {version('confluent-kafka')}, librdkafka {confluent_kafka.libversion()[0]})" in line
