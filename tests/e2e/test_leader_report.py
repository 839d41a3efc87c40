"""The leader report a sales leader opens on Monday (issue 15), checked against the mirror.

Both sandbox CRMs serve one org whose stale contacts include people named
`<script>alert(1)</script>` and `[/]`. crmsync is set up and synced as of
1 November 2026; then one account per CRM that is a top risk is renamed to
markup in the CRM, and crmsync syncs again as of 13 November 2026 (by then
some of the first run's tasks are overdue). `crmsync report` is driven through
the CLI; the page is parsed with html.parser and every figure compared with
what the mirror holds, the Markdown likewise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.hubspot.app import PORTAL_ID
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.state.db import open_db
from crmsync.sync.cli import cli

from .html_page import Node, parse

AS_OF_1 = DEFAULT_AS_OF
AS_OF_2 = DEFAULT_AS_OF + timedelta(days=12)
DAY_2 = AS_OF_2.date()
WINDOW = 120  # [rules] renewal_window_days (default)
HOSTILE_FIRST = ("<script>alert(1)</script>", "[/]")
LAST = "Hostile"
HOSTILE_ACCOUNT = "<img src=x onerror=alert(1)> [/] | *Acme* & Co"
RULE_WORDS = {
    "departed_champion": "Departed champion",
    "single_threaded_account": "Single-threaded account",
    "stale_contact": "Stale contact",
    "bouncing_contact": "Bouncing contact",
}
SEVERITIES = ("critical", "high", "medium", "low", "info")
RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}
CRMS = ("salesforce", "hubspot")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Synced:
    dir: Path
    config: Path
    db: Path
    sf_url: str
    renamed: dict[str, str]  # crm -> id of the account renamed to HOSTILE_ACCOUNT
    account_details_calls: int

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--config", str(self.config)], catch_exceptions=False)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def _name_contacts(dataset: dict[str, Any]) -> None:
    """Stale contacts (each gets a finding that names them) get the hostile first names."""
    manifest = dataset["manifest"]
    for crm, key in (("salesforce", "Contact"), ("hubspot", "contacts")):
        records = {r.get("Id") or r.get("id"): r for r in dataset[crm][key]}
        for cid, first in zip(manifest[crm]["stale_contact"], HOSTILE_FIRST, strict=False):
            rec = records[cid]
            if crm == "salesforce":
                rec.update(FirstName=first, LastName=LAST, Name=f"{first} {LAST}")
            else:
                rec["properties"].update(firstname=first, lastname=LAST)


def _risk_account(db: Path, crm: str) -> str:
    """An account with an open departed-champion or single-threaded finding that renews, or
    has an open opportunity closing, well inside the renewal window of the second run."""
    lo, hi = DAY_2 - timedelta(days=WINDOW - 20), DAY_2 + timedelta(days=WINDOW - 20)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT f.account_id FROM flags f JOIN accounts a ON a.crm = f.crm AND a.id = f.account_id"
            " WHERE f.crm = ? AND f.status = 'open'"
            " AND f.rule IN ('departed_champion', 'single_threaded_account')"
            " AND (a.renewal_date BETWEEN ? AND ? OR EXISTS (SELECT 1 FROM opportunities o"
            "  WHERE o.crm = a.crm AND o.account_id = a.id AND o.deleted_at IS NULL"
            "  AND NOT o.is_closed AND o.close_date BETWEEN ? AND ?))"
            " ORDER BY f.account_id LIMIT 1",
            [crm, (DAY_2 + timedelta(days=5)).isoformat(), hi.isoformat(), lo.isoformat(),
             hi.isoformat()],
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, f"the generated org has no renewing risk account in {crm}"
    return str(row[0])


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    tmp = tmp_path_factory.mktemp("leader")
    dataset = generate(seed=3, accounts=12)
    _name_contacts(dataset)
    with SalesforceSandbox(dataset=dataset) as sf, HubSpotSandbox(dataset=dataset) as hs:
        cfg = tmp / "sync.toml"
        sf.write_config(cfg)
        hs.write_config(cfg)
        cfg.write_text('[mirror]\npath = "crmsync.db"\n\n' + cfg.read_text())
        env = Synced(tmp, cfg, tmp / "crmsync.db", sf.url, {}, 0)
        assert env.cli("setup").exit_code == 0
        first = env.cli("sync", "--full", "--as-of", _iso(AS_OF_1))
        assert first.exit_code == 0, first.output
        env.renamed = {crm: _risk_account(env.db, crm) for crm in CRMS}
        sf.update("Account", env.renamed["salesforce"], {"Name": HOSTILE_ACCOUNT})
        hs.update("companies", env.renamed["hubspot"], {"name": HOSTILE_ACCOUNT})
        second = env.cli("sync", "--as-of", _iso(AS_OF_2))
        assert second.exit_code == 0, second.output
        env.account_details_calls = hs.requests.count("account_details")
    yield env


@pytest.fixture(scope="module")
def page(synced: Synced) -> tuple[str, Node]:
    path = synced.dir / "report.html"
    result = synced.cli("report", "--html", str(path))
    assert result.exit_code == 0, result.output
    text = path.read_text(encoding="utf-8")
    return text, parse(text)


@pytest.fixture(scope="module")
def markdown(synced: Synced) -> str:
    result = synced.cli("report", "--format", "md")
    assert result.exit_code == 0, result.output
    return result.stdout


# ---------------------------------------------------------------- what the mirror says


def _open_findings(s: Synced) -> Counter[tuple[str, str]]:
    rows = s.query("SELECT rule, severity, count(*) FROM flags WHERE status = 'open' GROUP BY 1, 2")
    return Counter({(r, sev): n for r, sev, n in rows})


def _live_accounts(s: Synced) -> int:
    return s.query("SELECT count(*) FROM accounts WHERE deleted_at IS NULL")[0][0]


def _coverage_of_last_runs(s: Synced) -> Counter[str]:
    out: Counter[str] = Counter()
    for crm in CRMS:
        (counts,) = s.query(
            "SELECT json_extract(counts, '$.coverage') FROM runs WHERE crm = ?"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            crm,
        )[0]
        out.update(json.loads(counts))
    return out


_TASKS = (
    "SELECT count(*) FROM tasks t JOIN accounts a ON a.crm = t.crm AND a.id = t.account_id"
    " LEFT JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id"
    " WHERE t.deleted_at IS NULL AND NOT t.is_closed AND a.deleted_at IS NULL"
)


def _tasks(s: Synced, *, overdue: bool = False, owner_email: str | None = None) -> int:
    sql, params = _TASKS, []
    if overdue:
        sql += " AND t.due_date < ?"
        params.append(DAY_2.isoformat())
    if owner_email is not None:
        sql += " AND lower(o.email) = ?"
        params.append(owner_email)
    return s.query(sql, *params)[0][0]


def _tiles(root: Node) -> dict[str, tuple[str, str]]:
    """Tile label -> (big figure, small line)."""
    out = {}
    for tile in root.find(id="glance").find_all(cls="tile"):
        big = tile.find(cls="big").text()
        small = tile.find("small").text()
        label = tile.text().removeprefix(big).removesuffix(small).strip()
        out[label] = (big, small)
    return out


def _rows(table: Node) -> list[list[str]]:
    return [tr.cells() for tr in table.find("tbody").find_all("tr")]


def _day(text: str) -> date:
    return datetime.strptime(" ".join(text.split()[:3]), "%d %b %Y").date()


# ---------------------------------------------------------------- the page


def test_page_is_dated_by_the_rules_as_of_date_and_says_it_holds_personal_data(
    synced: Synced, page: tuple[str, Node]
) -> None:
    _, root = page
    assert "as of 13 November 2026" in root.find("h1").text()
    header = root.find("header").text()
    assert "rules evaluated as of 13 November 2026" in header
    assert "Personal data." in header and "holds personal data" in header
    assert stat.S_IMODE((synced.dir / "report.html").stat().st_mode) == 0o600


def test_at_a_glance_figures_match_the_mirror(synced: Synced, page: tuple[str, Node]) -> None:
    _, root = page
    tiles = _tiles(root)
    assert tiles["accounts"][0] == str(_live_accounts(synced))
    findings = _open_findings(synced)
    assert tiles["open findings"][0] == str(sum(findings.values()))
    by_sev = Counter({s: n for (_, s), n in findings.items()})
    assert tiles["open findings"][1] == f"{by_sev['critical']} critical · {by_sev['high']} high"
    overdue = _tasks(synced, overdue=True)
    assert overdue > 0, "the second run's as-of date is past some due dates"
    assert tiles["open crmsync tasks"] == (str(_tasks(synced)), f"{overdue} overdue")
    cov = _coverage_of_last_runs(synced)
    assert tiles["green coverage"][1] == (
        f"{cov['green']} green · {cov['amber']} amber · {cov['red']} red"
    )
    # the chart's whole-book bar says the same
    titles = [t.text() for t in root.find(id="glance").find_all("title")]
    for status in ("green", "amber", "red"):
        if cov[status]:
            assert any(t.startswith(f"Whole book: {cov[status]} {status} (") for t in titles), status

    matrix = {r[0]: r[1:] for r in _rows(root.find("table", cls="matrix"))}
    for rule, words in RULE_WORDS.items():
        expected = [findings[(rule, s)] for s in SEVERITIES]
        if sum(expected):
            assert matrix[words] == [str(n) for n in [*expected, sum(expected)]], words
    assert matrix["All findings"][-1] == str(sum(findings.values()))


def test_the_trend_has_a_point_per_round_of_runs(page: tuple[str, Node]) -> None:
    _, root = page
    figures = [f for f in root.find(id="glance").find_all("figure") if "Trend" in f.text()]
    assert figures
    points = figures[0].find_all("circle")
    # two rounds (each a Salesforce and a HubSpot run): two points per line, 2 + 3 lines
    assert len(points) == 2 * 5
    assert "2 runs" in figures[0].text()


def test_one_row_per_owner_by_name_with_their_accounts_findings_and_tasks(
    synced: Synced, page: tuple[str, Node]
) -> None:
    _, root = page
    table = root.find("table", cls="owners")
    owners = {
        (name, email.lower())
        for name, email in synced.query(
            "SELECT DISTINCT o.name, o.email FROM accounts a JOIN owners o"
            " ON o.crm = a.crm AND o.id = a.owner_id WHERE a.deleted_at IS NULL"
        )
    }
    rows = table.find("tbody").find_all("tr")
    assert len(rows) == len(owners)
    total_findings = 0
    for tr, (name, email) in zip(rows, sorted(owners, key=lambda o: o[0].lower()), strict=True):
        cells = tr.cells()
        assert cells[0].removesuffix(" inactive") == name
        (accounts,) = synced.query(
            "SELECT count(*) FROM accounts a JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id"
            " WHERE a.deleted_at IS NULL AND lower(o.email) = ?",
            email,
        )[0]
        assert cells[1] == str(accounts)
        assert cells[-2] == str(_tasks(synced, owner_email=email))
        assert cells[-1] == str(_tasks(synced, overdue=True, owner_email=email))
        total_findings += sum(int(c) for c in cells[3:8])
        anchor = tr.find("a").attrs["href"]
        assert anchor and anchor.startswith("#")
        assert root.find(id=anchor[1:]).find("h3").text().startswith(name)
    assert total_findings == sum(_open_findings(synced).values())


def _expected_risks(s: Synced) -> list[tuple[str, str, str]]:
    """(crm, account id, severity) of each open departed-champion or single-threaded
    finding on an account renewing, or with an open opportunity closing, in the window."""
    lo, hi = DAY_2 - timedelta(days=WINDOW), DAY_2 + timedelta(days=WINDOW)
    return s.query(
        "SELECT f.crm, f.account_id, f.severity FROM flags f JOIN accounts a"
        " ON a.crm = f.crm AND a.id = f.account_id"
        " WHERE f.status = 'open' AND a.deleted_at IS NULL"
        " AND f.rule IN ('departed_champion', 'single_threaded_account')"
        " AND (a.renewal_date BETWEEN ? AND ? OR EXISTS (SELECT 1 FROM opportunities o"
        "  WHERE o.crm = a.crm AND o.account_id = a.id AND o.deleted_at IS NULL"
        "  AND NOT o.is_closed AND NOT o.is_won AND o.close_date BETWEEN ? AND ?))",
        DAY_2.isoformat(), hi.isoformat(), lo.isoformat(), hi.isoformat(),
    )


def _risk_rows(root: Node) -> list[dict[str, Any]]:
    out = []
    for tr in root.find("table", cls="risks").find("tbody").find_all("tr"):
        cells = tr.find_all("td")
        link = cells[1].find("a")
        out.append(
            {
                "account": link.text().rstrip("↗").strip(),
                "href": link.attrs["href"],
                "severity": cells[2].find(cls="chip").text().lower(),
                "finding": cells[2].text(),
                "when": _day(cells[3].text()),
                "owner": cells[4].text(),
                "explanation": cells[5].text(),
            }
        )
    return out


def test_top_risks_are_renewing_departed_champions_and_single_threaded_accounts_worst_first(
    synced: Synced, page: tuple[str, Node]
) -> None:
    _, root = page
    rows = _risk_rows(root)
    expected = _expected_risks(synced)
    assert len(rows) == len(expected) > 2
    assert Counter(r["severity"] for r in rows) == Counter(sev for _, _, sev in expected)
    keys = [(-RANK[r["severity"]], r["when"]) for r in rows]
    assert keys == sorted(keys), "by severity, then by how soon"
    for r in rows:
        assert r["finding"].split(" ", 1)[1].startswith(("Departed champion", "Single-threaded"))
        assert r["owner"] and r["explanation"]
        assert DAY_2 - timedelta(days=WINDOW) <= r["when"] <= DAY_2 + timedelta(days=WINDOW)
    assert sum(r["account"] == HOSTILE_ACCOUNT for r in rows) >= 2  # one per CRM


def test_links_open_each_account_in_its_crm(synced: Synced, page: tuple[str, Node]) -> None:
    text, root = page
    names = {(crm, aid): name for crm, aid, name in synced.query(
        "SELECT crm, id, name FROM accounts WHERE deleted_at IS NULL")}
    sf = re.compile(re.escape(synced.sf_url) + r"/lightning/r/Account/(\w+)/view")
    hs = re.compile(rf"https://app\.hubspot\.com/contacts/{PORTAL_ID}/record/0-2/(\d+)")
    linked: set[tuple[str, str]] = set()
    for a in root.find_all("a"):
        href = a.attrs.get("href") or ""
        if href.startswith("#"):
            assert root.find_all(id=href[1:]), href
            continue
        m_sf, m_hs = sf.fullmatch(href), hs.fullmatch(href)
        assert m_sf or m_hs, f"a link that opens no CRM record: {href}"
        key = ("salesforce", m_sf[1]) if m_sf else ("hubspot", m_hs[1])  # type: ignore[index]
        assert key in names, key
        assert a.text().rstrip("↗").strip() == names[key]
        linked.add(key)
    assert linked == set(names), "every account links to its record"
    assert all(r["href"] for r in _risk_rows(root))
    # one self-contained file: nothing loads from anywhere
    assert not [n for n in root.iter() if "src" in n.attrs]
    assert not root.find_all("script") and not root.find_all("link")
    assert "@media print" in text


def test_hostile_crm_text_shows_as_text_and_runs_nothing(page: tuple[str, Node]) -> None:
    text, root = page
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Hostile" in text
    visible = root.text()
    for first in HOSTILE_FIRST:
        assert f"{first} {LAST}" in visible
    assert HOSTILE_ACCOUNT in visible
    assert not any(ch in text for ch in ("\x1b", "\x07", "\u202e"))


def test_no_crm_id_appears_where_a_name_exists(synced: Synced, page: tuple[str, Node]) -> None:
    _, root = page
    ids = [r[0] for r in synced.query(
        "SELECT id FROM accounts WHERE coalesce(name, '') <> ''"
        " UNION SELECT id FROM contacts WHERE coalesce(first_name, '') || coalesce(last_name, '') <> ''"
        " UNION SELECT id FROM owners WHERE coalesce(name, '') <> ''"
        " UNION SELECT id FROM opportunities WHERE coalesce(name, '') <> ''")]
    assert len(ids) > 100
    shown = [root.text()]
    for n in root.iter():  # what a reader meets in tooltips and screen readers too
        shown += [v or "" for k, v in n.attrs.items() if k not in ("href", "id", "class")]
    everything = "\n".join(shown)
    leaked = [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", everything)]
    assert not leaked, f"raw CRM ids on the page: {leaked[:5]}"


def test_each_account_says_why_its_coverage_is_what_it_is_in_words(
    page: tuple[str, Node],
) -> None:
    _, root = page
    accounts = root.find_all("article", cls="account")
    assert accounts
    capped = 0
    for art in accounts:
        why = next(p.text() for p in art.find_all("p") if p.text().startswith("Coverage:"))
        assert re.search(r"^Coverage: (Green|Amber|Red) \(score \d+ of 100\)", why), why
        capped += "capped at amber: single-threaded" in why
        parts = art.find("ul", cls="parts").find_all("li")
        assert [p.text().split(":")[0] for p in parts] == [
            "Engaged contacts", "Buying roles", "Recent activity", "Champions",
        ]
        for table in art.find_all("table"):
            head = table.find("thead").find("tr").cells()
            for row in _rows(table):
                if head[0] == "crmsync task":
                    task = dict(zip(head, row, strict=True))
                    assert task["Owner"] and task["Due"] != "—"
                    assert task["Status"] in {"Not started", "In progress", "Completed", "Deferred",
                                              "Waiting on someone else"}, task["Status"]
                else:
                    assert row[0] in RULE_WORDS.values(), row[0]
    assert capped, "some amber account is capped for being single-threaded"
    visible = root.text()
    for raw in (*RULE_WORDS, "NOT_STARTED", "Not Started"):
        assert raw not in visible, raw


# ---------------------------------------------------------------- filters


def test_owner_filter_shows_only_that_owners_accounts(synced: Synced, tmp_path: Path) -> None:
    name, email = synced.query(
        "SELECT o.name, lower(o.email) FROM accounts a JOIN owners o ON o.crm = a.crm"
        " AND o.id = a.owner_id WHERE a.deleted_at IS NULL GROUP BY 2 ORDER BY count(*) DESC"
    )[0]
    path = tmp_path / "one.html"
    assert synced.cli("report", "--html", str(path), "--owner", name.upper()).exit_code == 0
    root = parse(path.read_text(encoding="utf-8"))
    rows = _rows(root.find("table", cls="owners"))
    (accounts,) = synced.query(
        "SELECT count(*) FROM accounts a JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id"
        " WHERE a.deleted_at IS NULL AND lower(o.email) = ?",
        email,
    )[0]
    assert [r[0].removesuffix(" inactive") for r in rows] == [name]
    assert rows[0][1] == str(accounts) == _tiles(root)["accounts"][0]
    assert f"accounts owned by {name}" in root.find("header").text()
    if root.find_all("table", cls="risks"):
        assert {r["owner"] for r in _risk_rows(root)} == {name}

    wrong = synced.cli("report", "--html", str(tmp_path / "x.html"), "--owner", "Nobody Atall")
    assert wrong.exit_code == 2
    assert "--owner Nobody Atall: no account owner has that name" in wrong.stderr
    assert name in wrong.stderr  # the owners there are
    assert not (tmp_path / "x.html").exists()


def test_tier_filter_shows_only_that_tiers_accounts(synced: Synced, tmp_path: Path) -> None:
    path = tmp_path / "strategic.html"
    assert synced.cli("report", "--html", str(path), "--tier", "strategic").exit_code == 0
    root = parse(path.read_text(encoding="utf-8"))
    (expected,) = synced.query(
        "SELECT count(*) FROM accounts WHERE deleted_at IS NULL"
        " AND lower(trim(tier)) IN ('strategic', 'tier_1')"
    )[0]
    assert 0 < expected < _live_accounts(synced)
    assert _tiles(root)["accounts"][0] == str(expected)
    tags = [[t.text() for t in art.find_all(cls="tag")] for art in root.find_all("article")]
    assert tags and all("Strategic" in t for t in tags)
    bars = [t.text() for t in root.find(id="glance").find_all("text")]
    assert "Growth" not in bars and "Maintenance" not in bars


# ---------------------------------------------------------------- Markdown


def test_markdown_has_the_same_figures_top_risks_and_owners(
    synced: Synced, page: tuple[str, Node], markdown: str
) -> None:
    _, root = page
    findings = _open_findings(synced)
    assert markdown.startswith("# Account coverage and hygiene as of 13 November 2026\n")
    assert "**Personal data.**" in markdown
    assert f"- **Open findings:** {sum(findings.values())} (" in markdown
    assert f"- **Open crmsync tasks:** {_tasks(synced)} ({_tasks(synced, overdue=True)} overdue)" in markdown
    # the owners table: the same rows as the page's
    html_rows = _rows(root.find("table", cls="owners"))
    md_rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown.split("## Owners", 1)[1].splitlines()
        if line.startswith("| ") and not line.startswith("| Owner")
    ]
    assert len(md_rows) == len(html_rows)
    for h, m in zip(html_rows, md_rows, strict=True):
        green, amber, red = (int(x) for x in re.findall(r"(\d+) (?:green|amber|red)", h[2]))
        assert m[0].removesuffix(" (inactive)") == h[0].removesuffix(" inactive")
        assert m[1:] == [h[1], str(green), str(amber), str(red), *h[3:]]
    # the top risks, in the same order
    md_risks = re.findall(r"^\d+\. \[\*\*(.+?)\*\*\]\((\S+)\) .*?\*\*(\w+)\*\*", markdown, re.M)
    html_risks = _risk_rows(root)
    assert [(h, s) for _, h, s in md_risks] == [(r["href"], r["severity"].capitalize())
                                               for r in html_risks]


def test_markdown_escapes_crm_text_so_it_shows_as_typed(markdown: str) -> None:
    assert r"\<img src=x onerror=alert(1)\> \[/\] \| \*Acme\* & Co" in markdown
    assert "<img" not in markdown.replace(r"\<img", "")
    assert "[/]" not in markdown.replace(r"\[/\]", "")


def test_markdown_written_with_out_is_readable_by_its_owner_only(
    synced: Synced, markdown: str, tmp_path: Path
) -> None:
    target = tmp_path / "monday.md"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    result = synced.cli("report", "--format", "md", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8") == markdown


# ---------------------------------------------------------------- links need the CRM's own facts


def test_the_portal_id_is_asked_once_and_kept_in_the_mirror(synced: Synced) -> None:
    assert synced.account_details_calls == 1  # first sync asked; the second read the mirror
    info = dict(synced.query("SELECT key, value FROM crm_info WHERE crm = 'hubspot'"))
    assert info == {"portal_id": str(PORTAL_ID), "ui_domain": "app.hubspot.com"}
    (url,) = synced.query(
        "SELECT value FROM crm_info WHERE crm = 'salesforce' AND key = 'instance_url'"
    )[0]
    assert url == synced.sf_url


def test_without_a_portal_id_the_page_says_why_hubspot_has_no_links(
    synced: Synced, tmp_path: Path
) -> None:
    for name in ("sync.toml", "crmsync.db", "salesforce-ca.pem"):
        if (synced.dir / name).exists():
            shutil.copy(synced.dir / name, tmp_path / name)
    for name in synced.dir.glob("*.txt"):
        shutil.copy(name, tmp_path / name.name)
    conn = sqlite3.connect(tmp_path / "crmsync.db")
    conn.execute("DELETE FROM crm_info WHERE crm = 'hubspot'")
    conn.commit()
    conn.close()
    path = tmp_path / "r.html"
    run = CliRunner().invoke(cli, ["report", "--html", str(path), "--config", str(tmp_path / "sync.toml")])
    assert run.exit_code == 0, run.output
    root = parse(path.read_text(encoding="utf-8"))
    hrefs = [a.attrs.get("href") or "" for a in root.find_all("a")]
    assert not [h for h in hrefs if "hubspot" in h]
    assert [h for h in hrefs if "/lightning/r/Account/" in h]
    assert "No links into HubSpot: the portal id is not known yet" in root.find("footer").text()


def test_a_mirror_no_run_has_evaluated_is_refused_with_the_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "sync.toml"
    cfg.write_text('[mirror]\npath = "crmsync.db"\n')
    open_db(tmp_path / "crmsync.db").close()
    result = CliRunner().invoke(cli, ["report", "--format", "md", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "no run has evaluated the rules" in result.stderr
    assert "crmsync sync" in result.stderr


def test_report_needs_to_know_where_to_write_the_page(synced: Synced) -> None:
    result = synced.cli("report")
    assert result.exit_code == 2
    assert "--html FILE" in result.stderr and "--format md" in result.stderr


# ---------------------------------------------------------------- the demo


def test_demo_writes_the_report_and_prints_its_path(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    result = CliRunner().invoke(cli, ["demo", "--accounts", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Both answer with a real account's limits" in result.output  # sandbox/realistic.py
    report = out / "report.html"
    assert f"Report: {report}" in result.output
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    root = parse(report.read_text(encoding="utf-8"))
    assert "as of 1 November 2026" in root.find("h1").text()
    assert _tiles(root)["accounts"][0] == "16"  # 8 accounts in each CRM


# ---------------------------------------------------------------- a real browser


def _chromium() -> str | None:
    """Debian's chromium, if installed. With CRMSYNC_INSTALL_CHROMIUM=1, as root on a system
    with apt-get, the test installs it first; the suite itself never depends on apt."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.environ.get("CRMSYNC_INSTALL_CHROMIUM") != "1":
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True, check=False, timeout=1800,
        )
    return shutil.which("chromium")


def _png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the pixel data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_the_page_renders_in_a_real_browser_without_running_crm_text(
    synced: Synced, page: tuple[str, Node], tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "chromium is not installed, so the page is not rendered in a real browser "
            "(Debian: `apt-get install chromium`; or run as root with CRMSYNC_INSTALL_CHROMIUM=1)"
        )
    url = (synced.dir / "report.html").as_uri()
    common = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]

    def chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([*common, *args, url], capture_output=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done

    # the DOM the browser built: CRM text stayed text, no element came out of it
    dom = parse(chromium("--dump-dom").stdout.decode("utf-8"))
    assert not dom.find_all("script") and not dom.find_all("img")
    assert HOSTILE_ACCOUNT in dom.text() and f"{HOSTILE_FIRST[0]} {LAST}" in dom.text()
    # a screenshot of the top of the page: the size asked for, and not a blank page
    shot = tmp_path / "report.png"
    chromium("--window-size=1400,1800", f"--screenshot={shot}")
    width, height, colours = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1400, 1800)
    assert colours > 50, "the screenshot is (nearly) one colour: the page did not render"
    # printing: a PDF of several pages
    pdf = tmp_path / "report.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) > 1
