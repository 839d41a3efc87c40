"""Rule settings in sync.toml change what a run finds, as documented; bad ones exit 2.

Through the CLI against the Salesforce sandbox loaded with the hand-built golden
org (tests/golden/edge_cases: who is who is in its README). Each run is
`crmsync sync --full --as-of 2026-11-01` with `[writeback] enabled = false`: the
rules run and the flags land in the mirror, nothing is written to the CRM, so
one sandbox serves every test. (A `--dry-run` stores no flags: a preview
writes nothing, issue 10.) The default run is the baseline each setting is compared with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli

from .helpers import write_sync_toml

SEED_FILE = Path(__file__).parents[1] / "golden" / "edge_cases" / "seed.json"
SEED: dict[str, Any] = json.loads(SEED_FILE.read_text(encoding="utf-8"))
AS_OF = SEED["golden"]["as_of"]
CONNECTOR = 'left_company_field = "Left_Company__c"'

ACCOUNTS = {a["Id"]: a["Name"] for a in SEED["salesforce"]["Account"]}
PEOPLE = {c["Id"]: f"{c['FirstName']} {c['LastName']}" for c in SEED["salesforce"]["Contact"]}

Found = set[tuple[str, str, str]]  # (rule, account name, contact name or "")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(dataset=SEED) as sb:
        config = write_sync_toml(tmp_path_factory.mktemp("setup") / "sync.toml", sb, extra=CONNECTOR)
        assert _cli(config, "setup").exit_code == 0  # owned fields exist for every later run
        yield sb


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


def _config(tmp_path: Path, sb: SalesforceSandbox, rules: str = "") -> Path:
    return write_sync_toml(tmp_path / "sync.toml", sb, extra=f"{CONNECTOR}\n\n{rules}")


def _open_flags(tmp_path: Path, sb: SalesforceSandbox, rules: str = "") -> Found:
    """Open flags of one run without write-back with these `[rules.*]` tables, by neutral names."""
    config = _config(tmp_path, sb, f"{rules}\n\n[writeback]\nenabled = false")
    writes = sb.requests.writes()
    result = _cli(config, "sync", "--full", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert sb.requests.writes() == writes  # write-back off: nothing written
    flags = json.loads(_cli(config, "flags", "--format", "json").output)
    return {
        (f["rule"], ACCOUNTS[f["account_id"]], PEOPLE.get(f["contact_id"] or "", ""))
        for f in flags
    }


def _of(found: Found, rule: str) -> Found:
    return {f for f in found if f[0] == rule}


@pytest.fixture(scope="module")
def baseline(sandbox: SalesforceSandbox, tmp_path_factory: pytest.TempPathFactory) -> Found:
    return _open_flags(tmp_path_factory.mktemp("baseline"), sandbox)


def test_lower_strategic_stale_window_flags_more_contacts_of_strategic_accounts_only(
    sandbox: SalesforceSandbox, baseline: Found, tmp_path: Path
) -> None:
    found = _open_flags(tmp_path, sandbox, "[rules.stale_contact]\nstrategic_days = 20")
    assert _of(baseline, "stale_contact") == {("stale_contact", "Stale Edges", "Nevin Never"),
                                              ("stale_contact", "Stale Edges", "Edith Past")}
    # Healthy Co is strategic: Hilda Cole (last activity 32 days ago) is now stale; Hugo
    # Baker's activity is 17 days old. Growth accounts keep their 120-day window.
    assert _of(found, "stale_contact") - _of(baseline, "stale_contact") == {
        ("stale_contact", "Healthy Co", "Hilda Cole"),
    }
    assert _of(baseline, "stale_contact") <= _of(found, "stale_contact")


def test_raising_growth_stale_window_stops_flagging_the_growth_account(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    found = _open_flags(tmp_path, sandbox, "[rules.stale_contact]\ngrowth_days = 700")
    assert _of(found, "stale_contact") == set()


def test_min_engaged_decides_which_accounts_are_single_threaded(
    sandbox: SalesforceSandbox, baseline: Found, tmp_path: Path
) -> None:
    thin = ("single_threaded_account", "Thin Threads", "")
    healthy = ("single_threaded_account", "Healthy Co", "")
    assert thin in baseline and healthy not in baseline  # 2 engaged of 3 at Thin Threads

    fewer = _open_flags(tmp_path / "two", sandbox, "[rules.single_threaded_account]\nmin_engaged = 2")
    assert thin not in fewer
    assert ("single_threaded_account", "Warmlead Ltd", "") in fewer  # 1 engaged is still too few

    strategic = _open_flags(
        tmp_path / "tier", sandbox,
        "[rules.single_threaded_account]\nmin_engaged_by_tier = { strategic = 4 }",
    )
    assert healthy in strategic  # 3 engaged, 4 wanted for strategic accounts
    assert _of(strategic, "single_threaded_account") - {healthy} == _of(
        baseline, "single_threaded_account"
    )


def test_required_roles_setting_changes_the_missing_role_finding(
    sandbox: SalesforceSandbox, baseline: Found, tmp_path: Path
) -> None:
    roleless = ("single_threaded_account", "Roleless Inc", "")
    assert roleless in baseline  # the Champion holds the role on a lost / too old deal only
    found = _open_flags(
        tmp_path, sandbox, '[rules.single_threaded_account]\nrequired_roles = ["Economic Buyer"]'
    )
    assert roleless not in found


def test_champion_roles_narrow_who_is_reported_as_a_departed_champion(
    sandbox: SalesforceSandbox, baseline: Found, tmp_path: Path
) -> None:
    found = _open_flags(
        tmp_path, sandbox, '[rules.departed_champion]\nchampion_roles = ["Champion"]'
    )
    people = {f[2] for f in _of(found, "departed_champion")}
    before = {f[2] for f in _of(baseline, "departed_champion")}
    # Economic Buyer, Executive Sponsor and Decision Maker no longer count as champions.
    assert before - people == {"Lou Leftco", "Carl Twosign", "Bea Bounce", "Sam Samename"}
    assert people == {"Fay Former", "Wes Woke", "Olga Outgoing"}  # Olga: Succession Ltd


def test_departure_words_setting_is_what_the_title_signal_matches(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    found = _open_flags(
        tmp_path, sandbox, '[rules.departed_champion]\nleft_company_words = ["ex-", "no longer"]'
    )
    people = {f[2] for f in _of(found, "departed_champion")}
    assert "Fay Former" not in people  # "Former VP Sales" no longer matches
    assert "Carl Twosign" in people  # "No longer with the company" (and the field) still do


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("[rules.stale_contact]\nstrategic_day = 30", "unknown key `strategic_day` in [rules.stale_contact]"),
        ('[rules.single_threaded_account]\nmin_engaged = "three"', "[rules.single_threaded_account] min_engaged"),
        ("[rules.stale_contact]\ngrowth_days = -5", "[rules.stale_contact] growth_days"),
        ("[rules]\nengaged_days = 0", "[rules] engaged_days"),
        ("[rules.departed_champion]\nchampion_roles = []", "[rules.departed_champion] champion_roles"),
        ("[rules.stale_contacts]\nstrategic_days = 30", "unknown key `stale_contacts` in [rules]"),
        ("[rules.coverage]\ngreen_min_score = 150", "[rules.coverage] green_min_score"),
    ],
    ids=["unknown-key", "wrong-type", "negative-days", "zero-days", "empty-list",
         "unknown-table", "out-of-range"],
)
def test_invalid_rule_setting_exits_2_naming_the_key(
    sandbox: SalesforceSandbox, tmp_path: Path, rules: str, message: str
) -> None:
    config = _config(tmp_path, sandbox, rules)
    calls = sandbox.requests.count()
    result = _cli(config, "sync", "--full", "--dry-run", "--as-of", AS_OF)
    assert result.exit_code == 2, result.output
    assert "configuration error" in result.output and message in result.output, result.output
    assert sandbox.requests.count() == calls  # refused before any CRM call
