"""End-to-end fixtures: both sandbox CRMs on loopback, a working sync.toml, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli

AS_OF = DEFAULT_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Env:
    dir: Path
    config: Path
    sf: Any
    hs: Any
    dataset: dict[str, Any]

    def cli(self, *args: str) -> Result:
        result = CliRunner().invoke(cli, [*args, "--config", str(self.config)], catch_exceptions=False)
        return result

    def sync(self, *args: str) -> Result:
        return self.cli("sync", "--as-of", AS_OF, *args)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    dataset = generate(seed=3, accounts=12)
    with SalesforceSandbox(dataset=dataset) as sf, HubSpotSandbox(dataset=dataset) as hs:
        sf.write_config(tmp_path / "sync.toml")
        hs.write_config(tmp_path / "sync.toml")
        cfg = tmp_path / "sync.toml"
        cfg.write_text('[mirror]\npath = "crmsync.db"\n\n' + cfg.read_text())
        yield Env(tmp_path, cfg, sf, hs, dataset)
