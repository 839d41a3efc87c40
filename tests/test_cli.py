"""The CLI's surface: every command has help, appears in the README, and usage errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.sync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (
    "demo", "sync", "plan", "daemon", "setup", "flags", "status", "outbox", "conflicts",
    "report", "sandbox", "links",
)  # fmt: skip


def test_help_lists_every_command_of_the_design() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name}" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert f"crmsync {name}" in (ROOT / "README.md").read_text()


def test_missing_config_exits_2_naming_the_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml not found" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["sync", "--fulll"])
    assert result.exit_code == 2
