"""The README's sandbox recipe, as a user runs it: twice, into the same file, then stopped.

`crmsync sandbox hubspot --write-config FILE` runs as a real subprocess; the
commands the README lists after it run against the file it wrote. Running the
recipe a second time (a new sandbox, the same file) must leave a valid
sync.toml, and the sandbox must stop when asked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from crmsync.sync.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def sandbox_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`crmsync sandbox hubspot --port 0 --write-config FILE &`, until it has written FILE."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmsync.sync.cli", "sandbox", "hubspot", "--port", "0",
             "--accounts", "3", "--write-config", str(config)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "stop it with" not in log.read_text(encoding="utf-8", errors="replace"):
            assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the sandbox did not start within 120 s"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # what `kill %1` sends
        proc.wait(timeout=60)


def test_the_readme_sandbox_recipe_works_twice_into_the_same_file(tmp_path: Path) -> None:
    config = tmp_path / "cs" / "sync.toml"
    runner = CliRunner()
    for round_ in (1, 2):
        log = tmp_path / f"sandbox-{round_}.log"
        with sandbox_process(config, log) as proc:
            # realistic limits unless --unlimited (sandbox/realistic.py)
            assert "limits: realistic (HubSpot starter: 100 requests per 10 s" in log.read_text()
            data = tomllib.loads(config.read_text(encoding="utf-8"))  # still valid TOML
            assert data["mirror"] == {"path": "crmsync.db"}
            assert data["hubspot"]["host"].startswith("http://127.0.0.1:")
            for args in (["setup"], ["sync", "--full"], ["flags"]):
                result = runner.invoke(cli, [*args, "--config", str(config)])
                assert result.exit_code == 0, (round_, args, result.output)
            assert (config.parent / "crmsync.db").exists()
        assert proc.returncode is not None, "the sandbox stops when asked"
    assert config.read_text(encoding="utf-8").count("[mirror]") == 1
