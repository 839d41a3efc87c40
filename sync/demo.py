"""`crmsync demo`: the whole product on a fresh machine, in about a minute.

Starts both sandbox CRMs in-process on loopback, seeds the same realistic org
into each, writes a working sync.toml for them, runs `setup` and a full sync
(pull, rules, write-back), prints what it found and wrote, checks through
each CRM's official client that the fields and tasks landed, runs once more
to show that unchanged data writes nothing, writes the leader report
(`report.html` in the output folder, its path printed) and leaves the mirror
for inspection. This module (and the `sandbox` command) are the only product code
that imports sandbox/.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmsync.rules import bouncing_contacts, departed_champions, single_threaded, stale_contacts
from crmsync.state import flags as flag_store
from crmsync.state import identity as identity_store
from crmsync.state.db import open_db
from crmsync.state.text import printable

from . import config as config_mod
from .report import write_html
from .run import RunOptions, RunReport, run_once, setup_fields

PAGE_SIZE = {"salesforce": 2000, "hubspot": 100}
# Page sizes per object where they differ from the CRM's default; 0 = no call of its own
# (HubSpot contact roles arrive inline with deals' associations; owners page at 500;
# crmsync's tasks are found by search at 200).
OBJECT_PAGE = {"hubspot": {"owners": 500, "contact_roles": 0, "tasks": 200}}


def run_demo(*, out: Path, accounts: int, seed: int, console: Console | None = None) -> int:
    from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
    from crmsync.sandbox.generate.identity import link_natively
    from crmsync.sandbox.hubspot import HubSpotSandbox
    from crmsync.sandbox.realistic import profile
    from crmsync.sandbox.salesforce import SalesforceSandbox

    con = console or _console()
    t0 = time.monotonic()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("crmsync.db*"):
        stale.unlink()

    con.rule("[bold]crmsync demo")
    dataset = generate(seed=seed, accounts=accounts)
    as_of = DEFAULT_AS_OF
    native = link_natively(dataset, as_of=as_of)
    con.print(
        f"Seeded one org into both sandbox CRMs: {accounts} accounts, "
        f"{len(dataset['salesforce']['Contact'])} contacts each (seed {seed}); rules run as of {as_of:%d %B %Y}."
    )
    con.print(
        f"HubSpot's own Salesforce integration synced part of it: {len(native['linked_contacts'])} "
        f"HubSpot contacts and {len(native['linked_companies'])} companies carry their Salesforce "
        f"record's id; marketing reached {len(native['reached'])} people last week whom only "
        f"HubSpot saw (stale in Salesforce), and {len(native['bounced_in_hubspot'])} addresses "
        "hard-bounced in HubSpot only."
    )
    sf_limits, hs_limits = profile("salesforce"), profile("hubspot")
    with (
        SalesforceSandbox(dataset=dataset, **sf_limits.sandbox_kwargs()) as sf_box,
        HubSpotSandbox(dataset=dataset, **hs_limits.sandbox_kwargs()) as hs_box,
    ):
        cfg_path = _write_config(out, sf_box, hs_box)
        cfg = config_mod.load(cfg_path)
        con.print(f"Sandboxes: Salesforce {sf_box.url}, HubSpot {hs_box.url}; config {cfg_path}")
        con.print(
            "Both answer with a real account's limits (as `crmsync sandbox` does by default): "
            f"{sf_limits.describe()}; {hs_limits.describe()}.\n"
        )

        con.rule("1. setup: crmsync's own fields")
        lines: list[str] = []
        setup_fields(cfg, crm=None, dry_run=False, echo=lines.append)
        summaries = [line for line in lines if " created, " in line]
        for line in summaries:
            con.print(Text("  " + printable(line)))
        con.print(
            f"  ({len(lines) - len(summaries)} field checks; `crmsync setup` again would change nothing)"
        )

        con.rule("2. full sync: pull, rules, write-back")
        reports: dict[str, RunReport] = {}
        for crm in cfg.crms():
            reports[crm] = run_once(cfg, crm, RunOptions(full=True, as_of=as_of, wait=False))
            _print_pull(con, reports[crm])

        con.rule("3. what crmsync found")
        _print_findings(con, cfg)
        _print_coverage(con, reports)
        _print_tasks(con, reports)

        con.rule("4. checked from the CRM side (official clients)")
        ok = _check_salesforce(con, sf_box, reports.get("salesforce"))
        ok = _check_hubspot(con, hs_box, reports.get("hubspot")) and ok

        con.rule("5. a second run over unchanged data")
        writes_before = sf_box.requests.writes() + hs_box.requests.writes()
        for crm in cfg.crms():
            rep = run_once(cfg, crm, RunOptions(as_of=as_of, wait=False))
            changed = ", ".join(
                f"{o.object} {o.inserted + o.updated + o.deleted}"
                for o in (rep.pull.objects if rep.pull else [])
                if o.inserted + o.updated + o.deleted
            )
            seen = (
                f"{changed} (crmsync's own writes, read back)"
                if changed
                else "nothing yet (crmsync's own writes are newer than the search index, "
                "which lags writes; a later run reads them back)"
            )
            con.print(
                f"  {crm:<10} incremental: changed in the mirror: {seen}; {rep.api_calls} API calls; "
                f"planned writes: {sum(rep.plan.counts()[k] for k in _KINDS) if rep.plan else 0}"
            )
        writes_after = sf_box.requests.writes() + hs_box.requests.writes()
        con.print(f"  write calls made by the second run: [bold]{writes_after - writes_before}[/bold]")
        ok = ok and writes_after == writes_before

        con.rule('6. one person across both CRMs: \\[identity] home = "salesforce"')
        cfg = _identity_step(con, cfg, cfg_path, sf_box, hs_box, as_of)

    con.rule("7. the report for the sales leader")
    report_path = out / "report.html"
    write_html(cfg, report_path)
    con.print(
        "  The book at a glance, per owner, the top risks first, every account: "
        "open it in a browser (it works offline and prints well)."
    )
    con.print(f"  Report: {report_path}", soft_wrap=True, markup=False, highlight=False)
    con.print("  (owner-only: it holds personal data)")

    con.rule("explore")
    db_path = cfg.mirror.path
    con.print(f"The mirror is left at {db_path} (owner-only: it holds personal data). Try:")
    bindir = _bin_dir()
    for command in (
        f"{bindir}sqlite-utils tables {db_path} --counts",
        f"{bindir}crmsync flags --config {cfg_path} --rule departed_champion",
        f"{bindir}crmsync status --config {cfg_path}",
        f"{bindir}crmsync report --config {cfg_path} --format md",
    ):
        # One line each, never wrapped mid-argument, so it can be copied from a log too.
        con.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)
    con.print(
        "To point crmsync at a real CRM, copy sync.toml from the repository, enable "
        "\\[salesforce] or \\[hubspot], name your credentials' environment variables, "
        "then `crmsync setup` and `crmsync sync --full`."
    )
    con.print(f"\nDemo {'passed its checks' if ok else 'FAILED a check'} in {time.monotonic() - t0:.0f} s.")
    return 0 if ok else 1


def _console() -> Console:
    """A terminal's own width; off a terminal (CI, `| tee`) a fixed 100 columns and no
    soft line breaks inside a printed line, so commands and explanations stay whole."""
    probe = Console()
    if probe.is_terminal:
        return probe
    return Console(width=100, soft_wrap=True)


_KINDS = ("update_account", "update_contact", "create_task", "update_task", "complete_task")


def _write_config(out: Path, sf_box: Any, hs_box: Any) -> Path:
    sf_part = sf_box.write_config(out / "salesforce.toml").read_text()
    hs_part = hs_box.write_config(out / "hubspot.toml").read_text()
    path = out / "sync.toml"
    path.write_text(
        "# Written by `crmsync demo`: a working config for the two sandbox CRMs.\n"
        '[mirror]\npath = "crmsync.db"\n\n'
        "[writeback]\nmax_new_tasks_per_owner = 100   # the default, 25, would hold some tasks for the next run\n\n"
        + sf_part.strip() + "\n\n" + hs_part.strip() + "\n"
    )
    return path


def _floor(rep: RunReport) -> int:
    """The fewest record-page calls the CRM's page sizes allow for what was pulled."""
    total = 0
    for o in rep.pull.objects if rep.pull else []:
        size = OBJECT_PAGE.get(rep.crm, {}).get(o.object, PAGE_SIZE[rep.crm])
        if size:
            total += max(1, math.ceil(o.records / size))
    return total


def _print_pull(con: Console, rep: RunReport) -> None:
    assert rep.pull is not None
    pulled = ", ".join(f"{o.object} {o.records:,}" for o in rep.pull.objects)
    pull_calls = sum(o.data_calls for o in rep.pull.objects)
    meta_calls = sum(o.api_calls - o.data_calls for o in rep.pull.objects)
    con.print(f"  [bold]{rep.crm}[/bold]: pulled {pulled}")
    con.print(
        f"    record pages: {pull_calls} API calls vs minimum {_floor(rep)} at {PAGE_SIZE[rep.crm]} per page"
        f" (+{meta_calls} schema look-ups); whole run {rep.api_calls} calls in {rep.seconds:.1f} s"
    )
    if rep.drain is not None:
        con.print(
            f"    wrote {rep.drain.written} rows, rejected {rep.drain.rejected}"
        )


def _print_findings(con: Console, cfg: config_mod.Config) -> None:
    db = open_db(cfg.mirror.path)
    flags = flag_store.list_flags(db, status="open")
    table = Table(title="open flags by rule and severity", title_justify="left")
    sev_order = ("critical", "high", "medium", "low", "info")
    table.add_column("crm")
    table.add_column("rule")
    for s in sev_order:
        table.add_column(s, justify="right")
    counts: Counter[tuple[str, str, str]] = Counter((f["crm"], f["rule"], f["severity"]) for f in flags)
    for crm, rule in sorted({(c, r) for c, r, _ in counts}):
        table.add_row(crm, rule, *[str(counts.get((crm, rule, s), "")) for s in sev_order])
    con.print(table)
    con.print("Three explanations, as the account manager reads them in the CRM:")
    shown: set[str] = set()
    # A departed champion with a named successor first, when there is one (rules/successors.py).
    flags = sorted(flags, key=lambda f: not _has_successor(f))
    for rule in (departed_champions.NAME, single_threaded.NAME, stale_contacts.NAME, bouncing_contacts.NAME):
        for f in flags:
            if f["rule"] == rule and rule not in shown and len(shown) < 3:
                shown.add(rule)
                # CRM text as text: never parsed as markup (state/text.py)
                con.print(
                    Text.assemble(
                        "  ", (rule, "bold"), f" ({f['crm']}, {f['severity']}): ",
                        printable(f["explanation"]),
                    )
                )
    db.close()


def _identity_step(
    con: Console, cfg: config_mod.Config, cfg_path: Path, sf_box: Any, hs_box: Any, as_of: Any
) -> config_mod.Config:
    """The same org before and after linking (docs/identity.md): flags and open tasks."""
    before = _identity_counts(cfg, sf_box, hs_box)
    with cfg_path.open("a", encoding="utf-8") as f:
        f.write('\n[identity]\nhome = "salesforce"   # linked people\'s flags and tasks: Salesforce only\n')
    cfg = config_mod.load(cfg_path)
    for crm in cfg.crms():
        run_once(cfg, crm, RunOptions(as_of=as_of, wait=False))
    after = _identity_counts(cfg, sf_box, hs_box)
    db = open_db(cfg.mirror.path)
    counts = identity_store.counts(db)
    db.close()
    con.print(
        "  linked: "
        + ", ".join(f"{k.replace('_', ' by ', 1)} {v}" for k, v in counts.items() if "ambiguous" not in k)
        + f"; ambiguous, reported not linked: {sum(v for k, v in counts.items() if 'ambiguous' in k)}"
        + " (`crmsync links`)"
    )
    table = Table(title="the same org, before and after linking", title_justify="left")
    for col in ("", "before", "after"):
        table.add_column(col, justify="right" if col else "left")
    for label in before:
        table.add_row(label, str(before[label]), str(after[label]))
    con.print(table)
    con.print(
        "  People marketing reached last week are no longer stale in Salesforce; a bounce seen "
        "in either CRM counts in both; linked people's problems get one task, in Salesforce."
    )
    return cfg


def _identity_counts(cfg: config_mod.Config, sf_box: Any, hs_box: Any) -> dict[str, int]:
    db = open_db(cfg.mirror.path)
    flags = flag_store.list_flags(db, status="open")
    db.close()
    out = {}
    for crm in ("salesforce", "hubspot"):
        mine = [f for f in flags if f["crm"] == crm]
        out[f"open flags, {crm}"] = len(mine)
        out[f"  stale contacts, {crm}"] = sum(1 for f in mine if f["rule"] == stale_contacts.NAME)
        out[f"  bouncing contacts, {crm}"] = sum(
            1 for f in mine if f["rule"] == bouncing_contacts.NAME
        )
    out["open crmsync tasks, salesforce"] = sum(
        1 for t in sf_box.records("Task") if t.get("Crmsync_Key__c") and not t.get("IsClosed")
    )
    out["open crmsync tasks, hubspot"] = sum(
        1
        for t in hs_box.records("tasks")
        if (t.get("properties") or {}).get("crmsync_key")
        and t["properties"].get("hs_task_status") != "COMPLETED"
    )
    return out


def _has_successor(flag: dict[str, Any]) -> bool:
    return any(s.get("candidates") for s in flag["evidence"].get("successors") or [])


def _print_coverage(con: Console, reports: dict[str, RunReport]) -> None:
    for crm, rep in reports.items():
        if rep.evaluation is None:
            continue
        cov = rep.evaluation.coverage_counts()
        con.print(
            f"  coverage {crm:<10}: green {cov.get('green', 0)}, amber {cov.get('amber', 0)}, red {cov.get('red', 0)}"
        )


def _print_tasks(con: Console, reports: dict[str, RunReport]) -> None:
    table = Table(title="tasks created per owner", title_justify="left")
    for col in ("crm", "owner", "tasks", "field updates"):
        table.add_column(col)
    for crm, rep in reports.items():
        if rep.plan is None:
            continue
        for owner, group in rep.plan.by_owner().items():
            tasks = group.counts["create_task"]
            fields = group.counts["update_account"] + group.counts["update_contact"]
            who = group.owner_name or owner or "(no active owner: integration user)"
            table.add_row(crm, Text(printable(who)), str(tasks), str(fields))
    con.print(table)


def _check_salesforce(con: Console, box: Any, rep: RunReport | None) -> bool:
    from simple_salesforce.api import Salesforce

    from crmsync.connectors.salesforce.transport import build_session
    from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME

    if rep is None or rep.plan is None:
        return True
    sf = Salesforce(
        username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN,
        session=build_session(login_url=box.url, instance_url=box.url, ca_file=str(box.ca_file)),
    )
    tasks = sf.query("SELECT COUNT() FROM Task WHERE Crmsync_Key__c != null AND IsClosed = false")["totalSize"]
    scored = sf.query("SELECT COUNT() FROM Account WHERE Crmsync_Coverage_Status__c != null")["totalSize"]
    return _compare(con, "Salesforce (simple-salesforce)", "open crmsync tasks", "accounts", tasks, scored, rep)


def _check_hubspot(con: Console, box: Any, rep: RunReport | None) -> bool:
    from hubspot import HubSpot

    from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN

    if rep is None or rep.plan is None:
        return True
    client = HubSpot(access_token=PRIVATE_APP_TOKEN, host=box.url)

    def total(api: Any, prop: str) -> int:
        """Records with `prop` set, by listing them all: HubSpot's search index lags writes
        (a few seconds in the realistic sandbox), the list endpoint reads the records."""
        n, after = 0, None
        while True:
            page = api.get_page(limit=100, after=after, properties=[prop])
            n += sum(1 for r in page.results if (r.properties or {}).get(prop))
            if page.paging is None or page.paging.next is None:
                return n
            after = page.paging.next.after

    tasks = total(client.crm.objects.tasks.basic_api, "crmsync_key")
    scored = total(client.crm.companies.basic_api, "crmsync_coverage_status")
    return _compare(con, "HubSpot (hubspot-api-client)", "crmsync tasks", "companies", tasks, scored, rep)


def _compare(
    con: Console, who: str, task_noun: str, account_noun: str, tasks: int, scored: int, rep: RunReport
) -> bool:
    """Print what the CRM holds against what the run says it created; True when equal."""
    expected_tasks = rep.plan.counts()["create_task"] if rep.plan is not None else 0
    expected_scored = rep.evaluation.accounts if rep.evaluation else 0
    ok = tasks == expected_tasks and scored == expected_scored
    con.print(
        f"  {who}: {tasks} {task_noun} (expected {expected_tasks}), "
        f"{scored} {account_noun} with a coverage status (expected {expected_scored}) "
        + ("[green]ok[/green]" if ok else "[red]MISMATCH[/red]")
    )
    return ok


def _bin_dir() -> str:
    """Where this crmsync's commands are, as the user can type it: "" when they are on PATH,
    `.venv/bin/` after `make demo`, else the folder of the running Python (a pip install)."""
    here = Path(sys.executable).parent
    found = shutil.which("crmsync")
    if found is not None and Path(found).resolve().parent == here.resolve():
        return ""
    try:
        return f"{here.relative_to(Path.cwd())}/"
    except ValueError:
        return f"{here}/"
