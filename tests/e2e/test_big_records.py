"""X3 as a user runs it: `crmsync sync --full --pull-only` over an org whose contacts carry
big values (Salesforce: two long text areas, one at the 131,072-character maximum on some
records; HubSpot: a 60,000-character property, 100,000 on some), over both Salesforce
paths (REST and Bulk). The run succeeds and the mirror holds every value whole. Peak memory
of the same pulls, at two org sizes, is in bench/README.md "Big records".
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli
from tests.e2e.helpers import write_sync_toml

LINE = 'Zoë Köln 東京 مرحبا e\u0301 🙂 "quoted", a line\r\n'
DATA = generate(seed=5, accounts=10)


def text(n: int) -> str:
    return (LINE * (n // len(LINE) + 1))[:n]


def mirrored_raw(db: Path, crm: str) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT id, raw FROM contacts WHERE crm = ? AND deleted_at IS NULL", [crm]
        ).fetchall()
    finally:
        conn.close()
    return {rid: json.loads(raw) for rid, raw in rows}


def pull(config: Path) -> None:
    result = CliRunner().invoke(cli, ["sync", "--full", "--pull-only", "--config", str(config)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("bulk", ["never", "always"])
def test_x3_salesforce_pull_of_big_records_mirrors_every_value_whole(tmp_path: Path, bulk: str):
    with SalesforceSandbox(DATA) as sf:
        for name in ("Notes_A__c", "Notes_B__c"):
            sf.add_field("Contact", name, "LongTextArea", length=131_072)
        want: dict[str, tuple[str, str]] = {}
        for i, rec in enumerate(r for r in sf.records("Contact") if not r.get("IsDeleted")):
            a, b = (text(131_072) if i % 7 == 0 else text(30_000)), text(30_000)
            sf.update("Contact", rec["Id"], {"Notes_A__c": a, "Notes_B__c": b})
            want[rec["Id"]] = (a, b)
        config = write_sync_toml(
            tmp_path / "sync.toml", sf,
            extra=f'bulk = "{bulk}"\n[salesforce.extra_fields]\nContact = ["Notes_A__c", "Notes_B__c"]',
        )  # fmt: skip
        pull(config)
    got = mirrored_raw(tmp_path / "crmsync.db", "salesforce")
    assert set(got) == set(want)
    assert all((got[i]["Notes_A__c"], got[i]["Notes_B__c"]) == want[i] for i in want)


def test_x3_hubspot_pull_of_big_records_mirrors_every_value_whole(tmp_path: Path):
    with HubSpotSandbox(dataset=DATA) as hs:
        hs.add_property("contacts", "notes_big")
        want: dict[str, str] = {}
        for i, rec in enumerate(hs.records("contacts")):
            want[rec["id"]] = text(100_000) if i % 7 == 0 else text(60_000)
            hs.update("contacts", rec["id"], {"notes_big": want[rec["id"]]}, source="import")
        config = write_sync_toml(
            tmp_path / "sync.toml", hs, extra='extra_properties = { contacts = ["notes_big"] }'
        )
        pull(config)
    got = mirrored_raw(tmp_path / "crmsync.db", "hubspot")
    assert set(got) == set(want)
    assert all(got[i]["properties"]["notes_big"] == want[i] for i in want)
