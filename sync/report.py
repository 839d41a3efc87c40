"""What the CLI prints: a run's summary, flags, status, the outbox; and where the leader
report is written (its figures: sync/leader_report.py; HTML: leader_html.py; Markdown:
leader_md.py).

Results go to stdout (tables via rich, or JSON/CSV for scripts); logs go to stderr.

CRM text is hostile input (state/text.py). Table cells are rich `Text` built
from `printable()` text, never markup strings: a contact named `[/]` or
`[link=http://evil.example]` prints as those characters, and escape sequences
never reach the terminal. CSV cells go through `csv_cell` (no spreadsheet
formulas); JSON escapes control and bidi characters. The report holds personal
data and is written readable by its owner only (0600, `write_private`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmsync.connectors import CONNECTORS
from crmsync.rules.explain import plural
from crmsync.state import conflicts as conflict_store
from crmsync.state import cursors, outbox, runs, views
from crmsync.state import flags as flag_store
from crmsync.state.db import open_db
from crmsync.state.errors import MirrorError, OutputError
from crmsync.state.files import write_private
from crmsync.state.text import csv_cell, json_safe, printable

from . import leader_html, leader_md, leader_report
from .config import Config

if TYPE_CHECKING:  # run.py imports this module to print its report
    from .evaluate import Evaluation
    from .run import RunReport
from .conflicts import WHO_TEXT, Tracked
from .preview import conflict_source, format_plan, show

Echo = Callable[[str], None]


def _render(renderable: Any, echo: Echo) -> None:
    buf = io.StringIO()
    console = Console(
        file=buf, width=120, force_terminal=False, color_system=None, markup=False, highlight=False
    )
    console.print(renderable)
    echo(buf.getvalue().rstrip("\n"))


def cell(value: Any) -> Text:
    """A table cell from CRM text: literal (never rich markup), printable characters only."""
    return Text(printable(value))


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text whose cells no spreadsheet runs as formulas (every CSV crmsync writes)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue().rstrip("\n")


def to_json(data: Any) -> str:
    """JSON for stdout: CRM text kept whole, control and bidi characters as \\u escapes."""
    return json_safe(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _open(cfg: Config) -> sqlite_utils.Database:
    if not cfg.mirror.path.exists():
        raise MirrorError(
            f"no mirror at {cfg.mirror.path} yet",
            fix="Run `crmsync sync --full` first (or check [mirror] path in sync.toml).",
        )
    return open_db(cfg.mirror.path)


# ---------------------------------------------------------------- one run

_WHY_ALL = {
    "full": "a full sync",
    "first": "the first evaluation",
    "settings": "the settings changed",
    "schema": "crmsync was upgraded",
    "clock": "the as-of time moved back",
    "many": "many had changed",
    "preview": "a preview looks at every account",
}


def _evaluated(ev: Evaluation) -> str:
    """How many accounts the rules looked at again, and why (state/dirty.py `Scope`)."""
    scope = ev.scope
    if scope.account_ids is None:
        return f"all evaluated: {_WHY_ALL[scope.reason]}"
    return (f"{ev.evaluated} evaluated again: {scope.dirty} changed since the last run, "
            f"{scope.due} reached a date a rule waits for")  # fmt: skip



def print_run(rep: RunReport, *, echo: Echo, dry_run: bool = False) -> None:
    """A run's summary. Every number says what it counts: a preview says it stored
    nothing, planned writes that were not queued say why."""
    preview = rep.preview or dry_run
    calls = plural(rep.api_calls, "API call")
    if preview:
        what = "plan from the mirror" if rep.mode == "plan" else f"dry run ({rep.mode} pull)"
        echo(f"{rep.crm}: {what} {rep.outcome} in {rep.seconds:.1f} s, {calls}; nothing stored")
    else:
        echo(f"{rep.crm}: {rep.mode} run {rep.run_id} {rep.outcome} in {rep.seconds:.1f} s, {calls}")
    if rep.pull is not None:
        for o in rep.pull.objects:
            echo(
                f"  pulled {o.object:<14} {o.records:>8,} records ({o.mode}; "
                f"{o.inserted} new, {o.updated} changed, {o.deleted} deleted, "
                f"{o.skipped} skipped) {plural(o.api_calls, 'call')}"
            )
    if rep.waits_for:
        echo(f"  rules and write-back wait for {rep.waits_for}'s first pull: [identity] judges "
             "each person with the evidence of both CRMs")
    en = rep.enrichment
    if en is not None and en.forgotten:
        echo(f"  outside people-data: {plural(en.forgotten, 'cached answer')} forgotten "
             "(not needed within refresh_days, another provider's, or [enrichment] is off)")
    if en is not None and (en.calls or en.cached or en.over_budget):
        later = f", {en.over_budget} left for the next run (max_calls_per_run)" if en.over_budget else ""
        failed = f", {en.failed} failed" if en.failed else ""
        echo(
            f"  outside people-data ({en.provider}): {plural(en.calls, 'call')}, "
            f"{en.found} {'person' if en.found == 1 else 'people'} found, {en.cached} answered from the cache{failed}{later}"
        )
    ev = rep.evaluation
    if ev is not None:
        by_rule = ", ".join(f"{k} {v}" for k, v in sorted(ev.by_rule.items())) or "none"
        echo(f"  rules: {ev.accounts} accounts ({_evaluated(ev)}); open flags by rule: {by_rule}")
        if ev.changes is not None:
            c = ev.changes.counts
            if preview:
                echo(
                    f"  flags (not stored): {c['opened']} would open, {c['kept']} still open, "
                    f"{c['resolved']} would resolve, {c['suppressed']} suppressed"
                )
            else:
                echo(
                    f"  flags: {c['opened']} new, {c['kept']} still open, {c['resolved']} resolved, "
                    f"{c['suppressed']} suppressed"
                )
        cov = ev.coverage_counts()
        echo("  coverage: " + ", ".join(f"{k} {cov.get(k, 0)}" for k in ("green", "amber", "red")))
    missing = rep.fields_missing
    held = rep.held
    if rep.plan is not None:
        if preview:

            echo(format_plan(rep.plan))
        else:
            counts = {
                _PLAN_WORDS.get(k, k): v
                for k, v in rep.plan.counts().items()
                if v and k != "conflicts"  # the conflicts line below says them, once
            }
            echo(
                "  planned: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                if counts
                else "  planned: nothing to write"
            )
        planned = rep.plan.planned
        if missing and planned:
            verb = "would queue" if preview else "queued"
            echo(
                f"  not {verb}: {plural(planned, 'planned write')}; crmsync's fields are missing "
                f"in the CRM: {', '.join(f'{c.object}.{c.field}' for c in missing)}"
            )
        elif rep.writeback_off and planned:
            echo(
                f"  not queued: {plural(planned, 'planned write')}; write-back is off in sync.toml "
                "([writeback] enabled = false or dry_run = true)"
            )
        if held:
            are = "is" if held == 1 else "are"
            echo(
                f"  {plural(held, 'planned write')} {are} held by earlier failures "
                "(the CRM refused the same write before): see `crmsync outbox`"
            )
        if preview:
            echo("  dry run: nothing was written to the CRM and nothing was stored in the mirror")
    if rep.drain is not None:
        d = rep.drain
        echo(
            f"  written: {plural(d.written, 'row')}, "
            f"rejected: {d.rejected}"
        )
        for err in d.errors[:10]:
            echo(f"    rejected: {err}")
        if d.waiting:  # sync/drain.py `_recover`: the CRM's search lags writes (P6, W4/W5)
            echo(
                f"  waiting: {plural(d.waiting, 'task create')} sent before a crash, not yet "
                "found by the CRM's search; a later run looks again before sending it again"
            )
        if rep.rejected:
            echo("  some rows were rejected; they stay in the outbox: see `crmsync outbox`")
    tracked = rep.conflicts
    if tracked is not None and not preview:
        for line in conflict_run_lines(tracked):
            echo(line)
    if rep.error and not missing:
        echo(f"  error: {rep.error}")


def conflict_run_lines(tracked: Tracked) -> list[str]:
    """A run's conflicts: the count, and each new one once (later runs only count it)."""
    if not (tracked.open or tracked.resolved):
        return []

    parts = [f"{tracked.open:,} open", f"{len(tracked.new):,} new this run"]
    if tracked.resolved:
        parts.append(f"{tracked.resolved:,} resolved")
    if tracked.handed_back:
        parts.append(f"{tracked.handed_back:,} handed back, written by this run")
    if tracked.history_calls:
        parts.append(f"{plural(tracked.history_calls, 'history call')}")
    lines = [f"  conflicts (values that are not crmsync's, left as is): {', '.join(parts)}"]
    for c in tracked.new[:10]:
        lines.append(printable(
            f"    new: {c.object[:-1]} {show(c.label, 60)} [{c.record_id}] {c.field}: CRM has "
            f"{show(c.crm_value)} ({conflict_source(c)}); crmsync wants {show(c.intended)}"
        ))  # fmt: skip
    if len(tracked.new) > 10:
        lines.append(f"    and {len(tracked.new) - 10:,} more")
    if tracked.open:
        lines.append(
            "  see `crmsync conflicts`; hand a field back with `crmsync conflicts handback`"
        )
    return lines


# Plan.counts() keys as the summary says them ("held" there is the per-owner task cap).
_PLAN_WORDS = {"held": "tasks over the per-owner cap (next run)"}




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
        echo(to_json([{k: r.get(k) for k in FLAG_FIELDS} for r in rows]))
    elif fmt == "csv":
        echo(
            to_csv(
                FLAG_FIELDS,
                (
                    [
                        json.dumps(r.get(k), default=str, ensure_ascii=False)
                        if k == "evidence"
                        else r.get(k)
                        for k in FLAG_FIELDS
                    ]
                    for r in rows
                ),
            )
        )
    else:
        t = Table(title=f"{len(rows)} flags", title_justify="left")
        for col in ("crm", "rule", "account", "contact", "severity", "status", "explanation"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(
                *(
                    cell(v)
                    for v in (
                        r["crm"],
                        r["rule"],
                        r["account_id"],
                        r.get("contact_id") or "",
                        r["severity"],
                        r["status"],
                        r["explanation"],
                    )
                )
            )
        _render(t, echo)
    return 0


# ---------------------------------------------------------------- status


def status_data(cfg: Config) -> dict[str, Any]:
    db = _open(cfg)
    last = runs.last_runs(db, 10)
    cursor_states = cursors.all_states(db)
    for state in cursor_states:
        state["position"] = describe_cursor(state)
    data = {
        "mirror": str(cfg.mirror.path),
        "runs": last,
        "cursors": cursor_states,
        "outbox": outbox.depth(db),
        "outbox_problems": outbox.list_items(db, status="dead") + outbox.list_items(db, status="failed"),
        "outbox_rejected": [dataclasses.asdict(g) for g in outbox.rejected_summary(db)],
        "flags": {crm: flag_store.status_counts(db, crm) for crm in _crms_in(db)},
        "conflict_counts": conflict_store.counts(db),
        "conflicts": [dict(conflict_store.as_dict(r)) for r in conflict_store.open_conflicts(db)],
        "tasks_without_account_owner": views.tasks_without_account_owner(db),
    }
    return data


def _crms_in(db: Any) -> list[str]:
    return [r[0] for r in db.conn.execute("SELECT DISTINCT crm FROM flags ORDER BY crm")]


def print_status(cfg: Config, *, fmt: str, echo: Echo) -> int:
    data = status_data(cfg)
    if fmt == "json":
        echo(to_json(data))
        return 0
    t = Table(title="last runs", title_justify="left")
    for col in ("id", "crm", "mode", "started", "outcome", "records", "API calls", "quota", "error"):
        t.add_column(col, overflow="fold")
    for r in data["runs"]:
        # records committed to the mirror, also by a run that failed half-way
        pulled = sum(v.get("records", 0) for v in (r["counts"].get("pull") or {}).values())
        quota = f"{r['quota_used']}/{r['quota_limit']}" if r.get("quota_limit") else "-"
        t.add_row(
            str(r["id"]), r["crm"] or "-", r["mode"], _ts(r["started_at"]),
            r["outcome"] or "running", f"{pulled:,}", str(r["api_calls"] or 0), quota,
            cell(_one_line(r["error"] or "", 120)),
        )
    _render(t, echo)
    c = Table(title="cursors", title_justify="left")
    for col in ("crm", "object", "where the next pull starts", "updated"):
        c.add_column(col, overflow="fold")
    for state in data["cursors"]:
        c.add_row(state["crm"], state["object"], state["position"], _ts(state["updated_at"]))
    _render(c, echo)
    depth = data["outbox"]
    echo("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(depth.items()) if v) or "empty"))
    for line in rejected_lines([outbox.Rejected(**g) for g in data["outbox_rejected"]]):
        echo(printable(line))  # the CRM's own message, as text: shown here, never logged
    flags = data["flags"]
    for crm, by_rule in sorted(flags.items()):
        open_by_rule = {rule: n.get("open", 0) for rule, n in by_rule.items() if n.get("open")}
        echo(f"open flags ({crm}): " + (", ".join(f"{k} {v}" for k, v in sorted(open_by_rule.items())) or "none"))
    for line in conflict_status_lines(data["conflict_counts"], data["conflicts"]):
        echo(line)
    for crm, n in sorted(data["tasks_without_account_owner"].items()):
        default = cfg.writeback.default_owner.get(crm)
        to = (
            f"default_owner {default}"
            if default
            else "the owner with the most accounts (set [writeback] default_owner to choose)"
        )
        echo(f"tasks of accounts without an active owner ({crm}): {n:,} open, assigned to {to}")
    return 0


STATUS_CONFLICTS = 20  # conflicts listed by `crmsync status`; `crmsync conflicts` lists all


def conflict_status_lines(counts: dict[str, dict[str, int]], rows: list[dict[str, Any]]) -> list[str]:
    """Open conflicts per CRM (counts by who) and the oldest few, for `crmsync status`."""
    lines: list[str] = []
    for crm, c in sorted(counts.items()):
        who = ", ".join(
            f"{k[3:]} {n}" for k, n in sorted(c.items()) if k.startswith("by_") and n
        )
        back = f"; {c['handed_back']} handed back (the next run writes them)" if c["handed_back"] else ""
        lines.append(f"open conflicts ({crm}): {c['open']:,} ({who}){back}")
    if not rows:
        return lines
    t = conflict_table(rows[:STATUS_CONFLICTS], title="values crmsync left as they are")
    buf: list[str] = []
    _render(t, buf.append)
    lines.extend(buf)
    if len(rows) > STATUS_CONFLICTS:
        lines.append(f"  and {len(rows) - STATUS_CONFLICTS:,} more: `crmsync conflicts`")
    lines.append(
        "hand a value back to crmsync: `crmsync conflicts handback --crm CRM --record ID "
        "[--field FIELD]` (or blank the field in the CRM)"
    )
    return lines


def conflict_table(rows: list[dict[str, Any]], *, title: str) -> Table:

    t = Table(title=title, title_justify="left")
    t.add_column("crm", no_wrap=True)
    t.add_column("record", no_wrap=True)
    t.add_column("name", overflow="fold")
    t.add_column("field", no_wrap=True)
    t.add_column("crmsync wants", overflow="fold")
    t.add_column("CRM holds", overflow="fold")
    t.add_column("since", no_wrap=True)
    t.add_column("who", overflow="fold")
    for r in rows:
        who = WHO_TEXT.get(r.get("who") or "unknown", r.get("who") or "unknown")
        if r.get("who") == "person" and r.get("who_name"):
            who = f"{r['who_name']} (a person)"
        if r.get("after_write"):
            who += "; changed after crmsync wrote it"
        if r.get("handed_back_at"):
            who += "; handed back"
        since = r.get("since")
        t.add_row(
            r["crm"], cell(r["record_id"]), cell(f"{r['object'][:-1]} {show(r.get('label') or '', 40)}"),
            r["field"], cell(show(r.get("wanted"), 40)), cell(show(r.get("held"), 40)),
            since.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if since else "-", cell(who),
        )  # fmt: skip
    return t


def print_conflicts(cfg: Config, *, crm: str | None, fmt: str, echo: Echo) -> int:
    """`crmsync conflicts`: every open conflict, oldest first."""
    db = _open(cfg)
    rows = [dict(conflict_store.as_dict(r)) for r in conflict_store.open_conflicts(db, crm)]
    if fmt == "json":
        echo(to_json(rows))
        return 0
    counts = conflict_store.counts(db)
    if crm is not None:
        counts = {k: v for k, v in counts.items() if k == crm}
    if not rows:
        echo("no open conflicts" + (f" ({crm})" if crm else "") + ": every value crmsync "
             "would write is crmsync's or already what crmsync wants")
        return 0
    for line in conflict_status_lines(counts, rows)[: len(counts)]:
        echo(line)
    _render(conflict_table(rows, title=f"{plural(len(rows), 'open conflict')}"), echo)
    echo(
        "hand a value back to crmsync: `crmsync conflicts handback --crm CRM --record ID "
        "[--field FIELD]`, or `--all`; blanking the field in the CRM hands it back too"
    )
    return 0


def describe_cursor(state: dict[str, Any]) -> str:
    """Where the next pull of one object starts, in words (the cursor is the connector's
    JSON; the keys read here are the ones both connectors write)."""
    cur = state.get("cursor") or {}
    inner = cur.get("mode")
    if not cur and state.get("mode") != "full":
        return "nothing pulled yet: the next pull is a full pull"
    if state.get("mode") == "full" or inner == "full":
        text = "full pull in progress"
        if cur.get("after_id"):
            text += f", resumes after record {cur['after_id']}"
        elif cur.get("after") or cur.get("phase"):
            text += ", resumes where it stopped"
        return text + " (`crmsync sync` continues it)"
    up_to = _when(cur.get("watermark")) or _when(cur.get("modified_ms"))
    if up_to:
        return f"incremental, changes since {up_to}"
    since = _when(cur.get("since_ms"))
    if inner == "archived":
        return "incremental pull in progress: checking deletions" + (f" since {since}" if since else "")
    if inner in ("incremental", "owners") or cur.get("phase"):
        return "incremental pull in progress" + (f": changes since {since}" if since else "")
    return "incremental"


def _when(value: Any) -> str | None:
    """An ISO time or epoch milliseconds as "2026-11-01 09:00 UTC"; None if neither."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            t = datetime.fromtimestamp(value / 1000, UTC)
        else:
            t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def rejected_lines(groups: list[Any]) -> list[str]:
    """Dead and failed rows grouped by CRM and the CRM's error code: counts, the CRM's
    message, and the command to requeue them once the cause is fixed."""
    if not groups:
        return []

    lines = ["rows the CRM refused, by its error code (each row: `crmsync outbox`):"]
    for g in groups:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g.kinds.items(), key=lambda kv: -kv[1]))
        status = "dead (given up)" if g.status == "dead" else "failed (retried by the next run)"
        lines.append(
            f"  {g.crm} {g.code or 'no code'}: {g.rows:,} {status}: {kinds}; {_attempts(g.attempts)}"
        )
        if g.message:
            others = g.messages - 1
            more = f" (and {plural(others, 'other message')})" if others > 0 else ""
            lines.append(f"      the CRM said: {_one_line(g.message, 200)}{more}")
        if g.status != "dead":
            continue
        which = f"--code {g.code}" if g.code else "--all"
        requeue = f"crmsync outbox requeue {which} --crm {g.crm}"
        cls = CONNECTORS[g.crm] if g.crm in CONNECTORS else None
        if cls is not None and cls.is_missing_field_error(g.code, g.message):
            lines.append(f"      fix: `crmsync setup --crm {g.crm}` creates the fields and requeues these")
        else:
            lines.append(f"      once the cause is fixed: `{requeue}`")
    return lines


def _attempts(span: tuple[int, int]) -> str:
    lo, hi = span
    if hi == 0:
        return "never sent (refused before reaching the CRM)"
    if lo == hi:
        return f"after {plural(hi, 'attempt')}"
    return f"after {lo}-{hi} attempts"


def _one_line(text: str, limit: int) -> str:
    """CRM text on one line, without control characters, at most `limit` characters."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _ts(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


# ---------------------------------------------------------------- outbox


def print_outbox(
    cfg: Config,
    *,
    statuses: tuple[str, ...],
    code: str | None,
    crm: str | None,
    fmt: str,
    limit: int | None,
    echo: Echo,
) -> int:
    """`crmsync outbox`: the rows of these statuses, oldest first, with the CRM's answer."""
    db = _open(cfg)
    rows = outbox.list_items(db, statuses, crm=crm, code=code)
    if fmt == "json":
        echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return 0
    shown = rows if limit is None else rows[:limit]
    title = f"{plural(len(rows), 'row')} ({', '.join(statuses)})"
    if len(shown) < len(rows):
        title += f", first {len(shown)} shown (--limit)"
    t = Table(title=title, title_justify="left")
    for col in ("id", "crm", "write", "record", "status", "attempts", "code", "the CRM said"):
        t.add_column(col, overflow="fold")
    for r in shown:
        t.add_row(
            str(r["id"]), r["crm"], r["kind"], Text(str(r["target_id"] or r["key"])),
            r["status"], str(r["attempts"]), Text(r["last_error_code"] or ""),
            Text(_one_line(r["last_error"] or "", 160)),
        )
    _render(t, echo)
    groups = [g for g in outbox.rejected_summary(db, crm) if g.status in statuses]
    if code is not None:
        groups = [g for g in groups if g.code == code]
    for line in rejected_lines(groups)[1:]:
        echo(line)
    return 0


# ---------------------------------------------------------------- HTML report




def write_html(
    cfg: Config, path: Path, *, owner: str | None = None, tier: str | None = None
) -> None:
    """The leader report (sync/leader_report.py) as one self-contained HTML page at `path`.

    Written readable by its owner only (0600), also over an existing file."""

    _write_report(path, leader_html.render(_book(cfg, owner, tier)), "--html")


def markdown(cfg: Config, *, owner: str | None = None, tier: str | None = None) -> str:
    """The leader report's figures, top risks and owners as Markdown (sync/leader_md.py)."""

    return leader_md.render(_book(cfg, owner, tier))


def write_markdown(
    cfg: Config, path: Path, *, owner: str | None = None, tier: str | None = None
) -> None:
    """`markdown()` written to `path`, readable by its owner only (0600)."""
    _write_report(path, markdown(cfg, owner=owner, tier=tier), "--out")


def _book(cfg: Config, owner: str | None, tier: str | None) -> Any:
    db = _open(cfg)
    try:
        return leader_report.build(cfg, db, owner=owner, tier=tier)
    finally:
        db.close()


def _write_report(path: Path, text: str, option: str) -> None:
    try:
        write_private(path, text)
    except OSError as err:
        raise OutputError(
            f"{option} {path}: cannot write the report ({err.strerror or err})",
            fix="Choose a path in a writable folder with free space.",
        ) from err
