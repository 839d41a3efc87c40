"""What the CLI prints: a run's summary, flags, status, and the HTML report.

Results go to stdout (tables via rich, or JSON/CSV for scripts); logs go to stderr.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from state import cursors, outbox, runs
from state import flags as flag_store
from state.db import open_db
from state.errors import MirrorError, OutputError

from .config import Config

Echo = Callable[[str], None]


def _render(renderable: Any, echo: Echo) -> None:
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=False, color_system=None).print(renderable)
    echo(buf.getvalue().rstrip("\n"))


def _open(cfg: Config) -> Any:
    if not cfg.mirror.path.exists():
        raise MirrorError(
            f"no mirror at {cfg.mirror.path} yet",
            fix="Run `crmsync sync --full` first (or check [mirror] path in sync.toml).",
        )
    return open_db(cfg.mirror.path)


# ---------------------------------------------------------------- one run


def print_run(rep: Any, *, echo: Echo, dry_run: bool = False) -> None:
    head = f"{rep.crm}: {rep.mode} run {rep.run_id} {rep.outcome}"
    echo(f"{head} in {rep.seconds:.1f} s, {rep.api_calls} API calls")
    if rep.pull is not None:
        for o in rep.pull.objects:
            echo(
                f"  pulled {o.object:<14} {o.records:>8,} records ({o.mode}; "
                f"{o.inserted} new, {o.updated} changed, {o.deleted} deleted, "
                f"{o.skipped} skipped) {o.api_calls} calls"
            )
    ev = rep.evaluation
    if ev is not None:
        by_rule = ", ".join(f"{k} {v}" for k, v in sorted(ev.by_rule.items())) or "none"
        echo(f"  rules: {ev.accounts} accounts; open flags by rule: {by_rule}")
        if ev.changes is not None:
            c = ev.changes.counts
            echo(f"  flags: {c['opened']} new, {c['kept']} still open, {c['resolved']} resolved, {c['suppressed']} suppressed")
        cov = ev.coverage_counts()
        echo("  coverage: " + ", ".join(f"{k} {cov.get(k, 0)}" for k in ("green", "amber", "red")))
    if rep.plan is not None:
        if dry_run:
            from .plan import format_plan

            echo(format_plan(rep.plan))
            echo("  dry run: nothing was written")
        else:
            counts = rep.plan.counts()
            echo("  planned: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v) if any(counts.values()) else "  planned: nothing to write")
    if rep.drain is not None:
        d = rep.drain
        echo(f"  written: {getattr(d, 'written', 0)} rows, rejected: {getattr(d, 'rejected', 0)}")
        for err in list(getattr(d, "errors", []) or [])[:10]:
            echo(f"    rejected: {err}")
        if rep.rejected:
            echo("  some rows were rejected; they stay in the outbox: see `crmsync status`")
    if rep.drifts:
        from .drain import format_drifts

        echo(f"  {len(rep.drifts)} value(s) crmsync wrote are no longer in the CRM (a workflow or a person changed them); left alone:")
        for line in format_drifts(rep.drifts)[:10]:
            echo(f"    {line}")
    if rep.error:
        echo(f"  error: {rep.error}")


# ---------------------------------------------------------------- flags


FLAG_FIELDS = (
    "crm", "rule", "account_id", "contact_id", "severity", "confidence", "status",
    "first_seen", "last_seen", "explanation", "evidence",
)


def print_flags(
    cfg: Config,
    *,
    crm: str | None,
    rule: str | None,
    account_id: str | None,
    status: str | None,
    fmt: str,
    echo: Echo,
) -> int:
    db = _open(cfg)
    rows = flag_store.list_flags(db, rule=rule, account_id=account_id, status=status, crm=crm)
    if fmt == "json":
        echo(json.dumps([{k: r.get(k) for k in FLAG_FIELDS} for r in rows], indent=2, default=str, ensure_ascii=False))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(FLAG_FIELDS)
        for r in rows:
            w.writerow([json.dumps(r.get(k), default=str) if k == "evidence" else r.get(k) for k in FLAG_FIELDS])
        echo(buf.getvalue().rstrip("\n"))
    else:
        t = Table(title=f"{len(rows)} flags", title_justify="left")
        for col in ("crm", "rule", "account", "contact", "severity", "status", "explanation"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(
                r["crm"], r["rule"], r["account_id"], r.get("contact_id") or "",
                r["severity"], r["status"], r["explanation"],
            )
        _render(t, echo)
    return 0


# ---------------------------------------------------------------- status


def status_data(cfg: Config) -> dict[str, Any]:
    db = _open(cfg)
    last = runs.last_runs(db, 10)
    data = {
        "mirror": str(cfg.mirror.path),
        "runs": last,
        "cursors": cursors.all_states(db),
        "outbox": outbox.depth(db),
        "outbox_problems": outbox.list_items(db, status="dead") + outbox.list_items(db, status="failed"),
        "flags": {crm: flag_store.status_counts(db, crm) for crm in _crms_in(db)},
    }
    return data


def _crms_in(db: Any) -> list[str]:
    return [r[0] for r in db.conn.execute("SELECT DISTINCT crm FROM flags ORDER BY crm")]


def print_status(cfg: Config, *, fmt: str, echo: Echo) -> int:
    data = status_data(cfg)
    if fmt == "json":
        echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return 0
    t = Table(title="last runs", title_justify="left")
    for col in ("id", "crm", "mode", "started", "outcome", "records", "API calls", "quota", "error"):
        t.add_column(col, overflow="fold")
    for r in data["runs"]:
        pulled = sum(v.get("records", 0) for v in (r["counts"].get("pull") or {}).values())
        quota = f"{r['quota_used']}/{r['quota_limit']}" if r.get("quota_limit") else "-"
        t.add_row(
            str(r["id"]), r["crm"] or "-", r["mode"], _ts(r["started_at"]),
            r["outcome"] or "running", f"{pulled:,}", str(r["api_calls"] or 0), quota,
            (r["error"] or "")[:120],
        )
    _render(t, echo)
    c = Table(title="cursors", title_justify="left")
    for col in ("crm", "object", "mode", "position", "updated"):
        c.add_column(col, overflow="fold")
    for s in data["cursors"]:
        c.add_row(s["crm"], s["object"], s["mode"] or "-", json.dumps(s["cursor"], default=str)[:70], _ts(s["updated_at"]))
    _render(c, echo)
    depth = data["outbox"]
    echo("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(depth.items()) if v) or "empty"))
    for item in data["outbox_problems"][:20]:
        echo(
            f"  {item.get('status')}: {item.get('crm')} {item.get('kind')} {item.get('target_id') or item.get('key')}"
            f" after {item.get('attempts')} attempts: {item.get('last_error_code') or ''} {item.get('last_error') or ''}"
        )
    flags = data["flags"]
    for crm, by_rule in sorted(flags.items()):
        open_by_rule = {rule: n.get("open", 0) for rule, n in by_rule.items() if n.get("open")}
        echo(f"open flags ({crm}): " + (", ".join(f"{k} {v}" for k, v in sorted(open_by_rule.items())) or "none"))
    return 0


def _ts(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


# ---------------------------------------------------------------- HTML report


def write_html(cfg: Config, path: Path) -> None:
    """One page per mirror: per account coverage, open flags and crmsync tasks."""
    db = _open(cfg)
    flags = flag_store.list_flags(db, status="open")
    by_account: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in flags:
        by_account.setdefault((f["crm"], f["account_id"]), []).append(f)
    accounts = {
        (r["crm"], r["id"]): r
        for r in db.query("SELECT crm, id, name, owned FROM accounts WHERE deleted_at IS NULL")
    }
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if "tasks" in db.table_names():
        for t in db.query("SELECT crm, account_id, subject, status FROM tasks WHERE deleted_at IS NULL"):
            tasks.setdefault((t["crm"], t["account_id"] or ""), []).append(t)
    sev = Counter(f["severity"] for f in flags)
    e = html.escape
    out = [
        "<!doctype html><meta charset=utf-8><title>crmsync report</title>",
        "<style>body{font:14px system-ui;margin:2em;max-width:70em}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}.red{color:#b00}"
        ".amber{color:#a60}.green{color:#070}h2{margin-top:2em}</style>",
        f"<h1>Account hygiene — {datetime.now(UTC):%d %B %Y}</h1>",
        f"<p>{len(flags)} open findings: " + ", ".join(f"{e(k)} {v}" for k, v in sev.items()) + "</p>",
    ]
    keys = sorted(accounts, key=lambda k: (-(len(by_account.get(k, []))), accounts[k]["name"] or ""))
    for key in keys:
        acc = accounts[key]
        owned = json.loads(acc["owned"] or "{}") if acc.get("owned") else {}
        status = owned.get("coverage_status") or ""
        found = by_account.get(key, [])
        if not found and not owned:
            continue
        out.append(f"<h2>{e(acc['name'] or key[1])} <small>({e(key[0])} {e(key[1])})</small></h2>")
        if owned:
            out.append(
                f"<p>Coverage <b class='{e(str(status))}'>{e(str(status) or 'n/a')}</b>, score "
                f"{e(str(owned.get('coverage_score', '')))}; stakeholders {e(str(owned.get('stakeholders', '')))}, "
                f"engaged {e(str(owned.get('engaged', '')))}; roles: {e(str(owned.get('roles_covered', '')))}</p>"
            )
        if found:
            out.append("<table><tr><th>finding</th><th>severity</th><th>what to do</th></tr>")
            for f in found:
                out.append(f"<tr><td>{e(f['rule'])}</td><td>{e(f['severity'])}</td><td>{e(f['explanation'])}</td></tr>")
            out.append("</table>")
        for t in tasks.get(key, []):
            out.append(f"<p>Task: {e(t['subject'] or '')} — {e(t['status'] or '')}</p>")
    try:
        path.write_text("\n".join(out), encoding="utf-8")
    except OSError as e:
        raise OutputError(
            f"--html {path}: cannot write the report ({e.strerror or e})",
            fix="Choose a path in a writable folder with free space.",
        ) from e
