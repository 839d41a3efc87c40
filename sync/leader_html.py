"""The leader report as one self-contained HTML page (sync/leader_report.py has the figures).

One file, no JavaScript, no external asset (fonts, styles and charts are
inline), so it opens offline, can be mailed as an attachment and prints well
(`@media print`). The order is the order a leader reads in: at a glance, the
top risks, one row per owner, then each owner's accounts, worst first.

Every CRM value goes through `e()`: printable text (state/text.py), then HTML
escaping, attributes included. Links into the CRM are built from ids the URL
encodes (leader_report) and are the only `href`s besides the page's own anchors.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from crmsync.rules.explain import plural
from crmsync.state.model import CoverageStatus, Severity
from crmsync.state.text import printable

from . import charts
from .leader_report import (
    CRM_NAMES,
    SEVERITIES,
    SEVERITY_WORDS,
    STATUSES,
    TIER_WORDS,
    TOP_RISKS_SHOWN,
    AccountLine,
    Book,
    Finding,
    OwnerLine,
    in_days,
    rule_words,
    short_day,
)
from .leader_report import day as long_day

COVERAGE_COLOURS = {
    CoverageStatus.GREEN: ("#2e7d32", "#ffffff"),
    CoverageStatus.AMBER: ("#f2a900", "#1a1a1a"),
    CoverageStatus.RED: ("#c62828", "#ffffff"),
}
SEVERITY_CLASS = {s: f"sev-{s.value}" for s in Severity}
PERSONAL_DATA = (
    "This page holds personal data: the names of contacts and account owners, job titles "
    "and what the CRM records about them. It was written readable by its owner only; share it "
    "only with people who manage these accounts, and delete old copies."
)

CSS = """
:root{--ink:#1d1f23;--muted:#5b6270;--line:#e3e6ea;--bg:#f6f7f9;--green:#2e7d32;--amber:#f2a900;
--red:#c62828;--critical:#7f0000;--high:#c62828;--medium:#e65100;--low:#9a7b00;--info:#546e7a}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.page{max-width:86rem;margin:0 auto;padding:1.5rem 2rem 3rem}
header{background:#fff;border:1px solid var(--line);border-radius:10px;padding:1.25rem 1.5rem;margin-bottom:1.25rem}
.eyebrow{margin:0;color:var(--muted);font-size:.85rem;letter-spacing:.04em;text-transform:uppercase}
h1{margin:.2rem 0 .3rem;font-size:1.7rem}
h2{margin:0 0 .8rem;font-size:1.3rem}
h3{margin:1.2rem 0 .6rem;font-size:1.05rem}
.meta{margin:0;color:var(--muted)}
.pii{margin:.8rem 0 0;padding:.55rem .8rem;border-left:4px solid #6d4c41;background:#fbf6f2;font-size:.9rem}
nav.toc{margin-top:.8rem;font-size:.95rem}
nav.toc a{margin-right:1.1rem}
section.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:1.25rem 1.5rem;margin-bottom:1.25rem}
a{color:#0b57d0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.8rem;margin-bottom:1rem}
.tile{border:1px solid var(--line);border-radius:8px;padding:.7rem .9rem}
.tile .big{display:block;font-size:1.9rem;font-weight:700;line-height:1.1}
.tile small{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:1rem 2rem}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:.3rem}
.note{color:var(--muted);font-size:.85rem;margin:.3rem 0 0}
svg.chart{width:100%;max-width:42rem;height:auto;display:block}
table{border-collapse:collapse;width:100%;margin:.3rem 0 .8rem}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid var(--line)}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);font-weight:600;
background:#fafbfc}
table.risks{table-layout:fixed}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.zero{color:#b8bec7}
.chip{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;
color:#fff;white-space:nowrap}
.sev-critical{background:var(--critical)}.sev-high{background:var(--high)}
.sev-medium{background:var(--medium)}.sev-low{background:#f9d55b;color:#3d3100}
.sev-info{background:#cfd8dc;color:#263238}
.cov-green{background:var(--green)}.cov-amber{background:var(--amber);color:#1a1a1a}
.cov-red{background:var(--red)}
.tag{display:inline-block;padding:.02rem .45rem;border:1px solid var(--line);border-radius:4px;
font-size:.78rem;color:var(--muted);font-weight:500;margin-left:.3rem;white-space:nowrap}
.owner{border-top:3px solid var(--ink);padding-top:.6rem;margin-top:1.6rem}
.owner:first-of-type{margin-top:.4rem}
.owner h3{font-size:1.2rem;margin:0 0 .2rem}
.account{border:1px solid var(--line);border-left:6px solid #cfd8dc;border-radius:6px;padding:.7rem 1rem;
margin:.8rem 0;break-inside:avoid}
.account.worst-critical{border-left-color:var(--critical)}.account.worst-high{border-left-color:var(--high)}
.account.worst-medium{border-left-color:var(--medium)}.account.worst-low{border-left-color:#f9d55b}
.account h4{margin:0 0 .3rem;font-size:1.05rem}
.account p{margin:.25rem 0}
.parts{margin:.2rem 0 .5rem 1.1rem;padding:0;color:var(--muted);font-size:.88rem}
.overdue{color:var(--red);font-weight:600}
.quiet{color:var(--muted)}
.risk-when small,.muted{color:var(--muted)}
footer{color:var(--muted);font-size:.85rem;margin-top:1.5rem}
@media (max-width:40rem){.page{padding:.8rem}.grid{grid-template-columns:1fr}}
@media print{
  @page{margin:14mm}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  body{background:#fff;font-size:10.5pt}
  .page{max-width:none;padding:0}
  header,section.card{border:0;padding:0;margin-bottom:1rem}
  nav.toc{display:none}
  a{color:inherit;text-decoration:none}
  h2,h3,h4{break-after:avoid}
  tr,.tile,figure{break-inside:avoid}
  .owner{break-before:page}
  .owner:first-of-type{break-before:auto}
}
"""


def e(value: Any) -> str:
    """CRM (or any) text as HTML: printable characters, escaped for text and attributes."""
    return html.escape(printable(value), quote=True)


def render(b: Book) -> str:
    """The whole page."""
    title = f"Account coverage and hygiene as of {long_day(b.as_of)}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex, nofollow">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style>",
        '</head><body><div class="page">',
        _header(b, title),
        "<main>",
        _glance(b),
        _risks(b),
        _owners(b),
        _accounts(b),
        "</main>",
        _footer(b),
        "</div></body></html>",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- header


def _header(b: Book, title: str) -> str:
    crms = " and ".join(CRM_NAMES.get(c, c) for c in b.crms)
    dates = {long_day(t) for t in b.as_of_by_crm.values()}
    if len(dates) == 1:
        when = f"rules evaluated as of {dates.pop()}"
    else:
        when = "rules evaluated as of " + "; ".join(
            f"{long_day(t)} ({CRM_NAMES.get(c, c)})" for c, t in sorted(b.as_of_by_crm.items())
        )
    meta = [f"{plural(len(b.accounts), 'account')}", when]
    if b.filtered:
        meta.append("showing " + b.scope().split(", ", 1)[-1])
    lines = [
        "<header>",
        f'<p class="eyebrow">crmsync report · {e(crms)}</p>',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">{" · ".join(e(m) for m in meta)}</p>',
        f'<p class="pii" role="note"><strong>Personal data.</strong> {e(PERSONAL_DATA)}</p>',
        '<nav class="toc" aria-label="Contents">'
        '<a href="#glance">At a glance</a>'
        f'<a href="#risks">Top risks ({len(b.risks)})</a>'
        f'<a href="#owners">Owners ({len(b.owners)})</a>'
        '<a href="#accounts">Accounts by owner</a></nav>',
        "</header>",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- at a glance


def _glance(b: Book) -> str:
    cov = b.coverage
    n = len(b.accounts)
    findings = b.findings
    by_sev = {s: sum(v for (_, sev), v in findings.items() if sev is s) for s in SEVERITIES}
    total = sum(findings.values())
    green = cov[CoverageStatus.GREEN]
    tiles = [
        _tile(str(n), "accounts", f"{plural(len(b.owners), 'owner')}"),
        _tile(
            f"{_pct(green, n)}",
            "green coverage",
            f"{green} green · {cov[CoverageStatus.AMBER]} amber · {cov[CoverageStatus.RED]} red",
        ),
        _tile(
            str(total),
            "open findings",
            f"{by_sev[Severity.CRITICAL]} critical · {by_sev[Severity.HIGH]} high",
        ),
        _tile(str(b.open_tasks), "open crmsync tasks", f"{b.overdue_tasks} overdue"),
        _tile(str(len(b.risks)), "top risks", f"renewing within {b.renewal_window_days} days"),
    ]
    rows: list[tuple[str, Mapping[str, int]]] = [("Whole book", _by_name(cov))]
    rows += [(TIER_WORDS[t], _by_name(c)) for t, c in b.coverage_by_tier()]
    colours = {s.value: COVERAGE_COLOURS[s] for s in STATUSES}
    coverage_svg = charts.stacked_bars(
        rows, colours, title="Coverage: green, amber and red accounts, whole book and by tier"
    )
    return "\n".join(
        [
            '<section id="glance" class="card">',
            "<h2>At a glance</h2>",
            f'<div class="tiles">{"".join(tiles)}</div>',
            '<div class="grid">',
            "<figure><figcaption>Coverage, whole book and by tier</figcaption>",
            coverage_svg,
            '<p class="note">Green: enough engaged people and every required role covered; '
            "amber: a gap to close; red: thin coverage. Numbers are accounts.</p></figure>",
            _trend(b),
            "</div>",
            "<h3>Open findings by rule and severity</h3>",
            _matrix(b),
            "</section>",
        ]
    )


def _tile(big: str, what: str, small: str) -> str:
    return (
        f'<div class="tile"><span class="big">{e(big)}</span>{e(what)}<br>'
        f"<small>{e(small)}</small></div>"
    )


def _by_name(c: Mapping[CoverageStatus, int]) -> dict[str, int]:
    return {s.value: int(c.get(s, 0)) for s in STATUSES}


def _trend(b: Book) -> str:
    points = b.trend
    head = "<figure><figcaption>Trend over the runs the mirror remembers</figcaption>"
    if not points:
        return head + '<p class="note">No run history yet.</p></figure>'
    labels = [short_day(p.at) for p in points]
    if len(set(labels)) < len(labels):  # several runs a day: say when
        labels = [f"{short_day(p.at)} {p.at:%H:%M} UTC" for p in points]
    findings = charts.line_chart(
        [
            ("Open findings", "#37474f", [p.findings for p in points]),
            ("Critical and high", "#c62828", [p.serious for p in points]),
        ],
        labels,
        title="Open findings at each run",
    )
    out = [head, findings]
    if not b.filtered and all(p.coverage is not None for p in points):
        out.append(
            charts.line_chart(
                [
                    (
                        s.value.capitalize(),
                        COVERAGE_COLOURS[s][0],
                        [int((p.coverage or {}).get(s, 0)) for p in points],
                    )
                    for s in STATUSES
                ],
                labels,
                title="Accounts by coverage at each run",
            )
        )
        note = f"{plural(len(points), 'run')}: open findings and accounts by coverage after each."
    else:
        note = (
            f"{plural(len(points), 'run')}: open findings of the accounts shown after each "
            "(coverage is kept per run for the whole book only)."
        )
    out.append(f'<p class="note">{e(note)}</p></figure>')
    return "\n".join(out)


def _matrix(b: Book) -> str:
    counts = b.findings
    rules = sorted(
        {r for r, _ in counts}, key=lambda r: (-sum(counts[(r, s)] for s in SEVERITIES), r)
    )
    if not rules:
        return '<p class="quiet">No open findings.</p>'
    head = "".join(f'<th class="num">{e(SEVERITY_WORDS[s])}</th>' for s in SEVERITIES)
    rows = []
    for r in rules:
        cells = "".join(_num(counts[(r, s)]) for s in SEVERITIES)
        total = sum(counts[(r, s)] for s in SEVERITIES)
        rows.append(f"<tr><td>{e(rule_words(r))}</td>{cells}{_num(total, strong=True)}</tr>")
    totals = "".join(_num(sum(counts[(r, s)] for r in rules), strong=True) for s in SEVERITIES)
    rows.append(
        f"<tr><td><strong>All findings</strong></td>{totals}"
        f"{_num(sum(counts.values()), strong=True)}</tr>"
    )
    return (
        f'<table class="matrix"><thead><tr><th>Finding</th>{head}<th class="num">Total</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _num(n: int, *, strong: bool = False) -> str:
    text = f"<strong>{n}</strong>" if strong and n else str(n)
    return f'<td class="num{" zero" if not n else ""}">{text}</td>'


# ---------------------------------------------------------------- top risks


def _successors(f: Finding) -> str:
    if not f.successors:
        return ""
    return f"<br><small><strong>Who could take over:</strong> {e(f.successors)}</small>"


def _risks(b: Book) -> str:
    intro = (
        "Departed champions and single-threaded accounts with a renewal, or an open "
        f"opportunity closing, within {b.renewal_window_days} days of the as-of date: by "
        "severity, then by how soon."
    )
    out = ['<section id="risks" class="card">', "<h2>Top risks</h2>", f"<p>{e(intro)}</p>"]
    if not b.risks:
        out.append('<p class="quiet">None: no such account renews within the window.</p>')
        out.append("</section>")
        return "\n".join(out)
    out.append(
        '<table class="risks"><colgroup><col style="width:2.2rem"><col style="width:15rem">'
        '<col style="width:11rem"><col style="width:8.5rem"><col style="width:9rem"><col>'
        '</colgroup><thead><tr><th class="num">#</th><th>Account</th><th>Finding</th>'
        "<th>When</th><th>Owner</th><th>What we found</th></tr></thead><tbody>"
    )
    for i, r in enumerate(b.risks[:TOP_RISKS_SHOWN], 1):
        a = r.account
        who = f"<br><small>{e(r.finding.who)}</small>" if r.finding.who else ""
        out.append(
            f'<tr><td class="num">{i}</td>'
            f"<td>{_account_link(a)}<br><small>{e(CRM_NAMES.get(a.crm, a.crm))} · "
            f"{e(TIER_WORDS[a.tier])}</small></td>"
            f"<td>{_sev_chip(r.finding.severity)} {e(r.finding.label)}{who}</td>"
            f'<td class="risk-when">{e(short_day(r.when))}<br><small>{e(in_days(r.days))}<br>'
            f"{e(a.renewal_kind)}</small></td>"
            f"<td>{e(r.owner)}</td>"
            f"<td>{e(r.finding.explanation)}{_successors(r.finding)}</td></tr>"
        )
    out.append("</tbody></table>")
    if len(b.risks) > TOP_RISKS_SHOWN:
        out.append(
            f'<p class="note">and {len(b.risks) - TOP_RISKS_SHOWN} more in the accounts below.</p>'
        )
    out.append("</section>")
    return "\n".join(out)


def _account_link(a: AccountLine, *, strong: bool = True) -> str:
    """The account's name, linked to its record in the CRM when the link is known."""
    text = f"<strong>{e(a.name)}</strong>" if strong else e(a.name)
    if not a.link:
        return text
    where = CRM_NAMES.get(a.crm, a.crm)
    return (
        f'<a href="{html.escape(a.link, quote=True)}" rel="noopener noreferrer" target="_blank" '
        f'title="Open in {e(where)}">{text}&#8201;&#8599;</a>'
    )


def _sev_chip(s: Severity) -> str:
    return f'<span class="chip {SEVERITY_CLASS[s]}">{e(SEVERITY_WORDS[s])}</span>'


def _cov_chip(a: AccountLine) -> str:
    return (
        f'<span class="chip cov-{a.status.value}">{e(a.status.value.capitalize())} {a.score}</span>'
    )


# ---------------------------------------------------------------- owners


def _owners(b: Book) -> str:
    head = (
        '<tr><th>Owner</th><th class="num">Accounts</th><th>Coverage</th>'
        + "".join(f'<th class="num">{e(SEVERITY_WORDS[s])}</th>' for s in SEVERITIES)
        + '<th class="num">Open tasks</th><th class="num">Overdue</th></tr>'
    )
    rows = []
    for o in b.owners:
        cov = o.coverage
        sev = o.findings
        inactive = ' <span class="tag">inactive</span>' if not o.active and o.key else ""
        rows.append(
            f'<tr><td><a href="#{o.anchor}">{e(o.name)}</a>{inactive}</td>'
            f'<td class="num">{len(o.accounts)}</td>'
            f"<td>{_mini_bar(cov)}</td>"
            + "".join(_num(sev[s]) for s in SEVERITIES)
            + _num(o.open_tasks)
            + f'<td class="num{" overdue" if o.overdue_tasks else " zero"}">{o.overdue_tasks}</td></tr>'
        )
    return "\n".join(
        [
            '<section id="owners" class="card">',
            "<h2>Owners</h2>",
            "<p>One row per account owner: their accounts, coverage, open findings by severity "
            "and crmsync's open tasks on those accounts (overdue: due before the as-of date).</p>",
            f'<table class="owners"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>',
            "</section>",
        ]
    )


def _mini_bar(cov: Mapping[CoverageStatus, int]) -> str:
    total = sum(cov.values()) or 1
    x = 0.0
    rects = []
    for s in STATUSES:
        n = cov.get(s, 0)
        if not n:
            continue
        w = 120 * n / total
        rects.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" fill="{COVERAGE_COLOURS[s][0]}"/>'
        )
        x += w
    words = " · ".join(f"{cov.get(s, 0)} {s.value}" for s in STATUSES)
    return (
        f'<svg width="120" height="12" viewBox="0 0 120 12" role="img" aria-label="{e(words)}" '
        f'xmlns="http://www.w3.org/2000/svg" style="vertical-align:middle">{"".join(rects)}</svg>'
        f' <small class="muted">{e(words)}</small>'
    )


# ---------------------------------------------------------------- accounts


def _accounts(b: Book) -> str:
    out = [
        '<section id="accounts" class="card">',
        "<h2>Accounts by owner</h2>",
        "<p>Worst first: by the most severe open finding, then the soonest renewal. Accounts "
        "with green coverage, no finding and no open task are listed by name at the end of "
        "each owner's section.</p>",
    ]
    for o in b.owners:
        out.append(_owner_section(o, b))
    out.append("</section>")
    return "\n".join(out)


def _owner_section(o: OwnerLine, b: Book) -> str:
    cov = o.coverage
    summary = (
        f"{plural(len(o.accounts), 'account')} · {cov[CoverageStatus.GREEN]} green, "
        f"{cov[CoverageStatus.AMBER]} amber, {cov[CoverageStatus.RED]} red · "
        f"{plural(sum(o.findings.values()), 'open finding')} · "
        f"{plural(o.open_tasks, 'open task')} ({o.overdue_tasks} overdue)"
    )
    inactive = " (inactive)" if not o.active and o.key else ""
    out = [
        f'<section class="owner" id="{o.anchor}">',
        f"<h3>{e(o.name + inactive)}</h3>",
        f'<p class="muted">{e(summary)}</p>',
    ]
    quiet = [a for a in o.accounts if a.quiet]
    for a in o.accounts:
        if not a.quiet:
            out.append(_account(a, b))
    if quiet:
        names = ", ".join(
            _account_link(a, strong=False) for a in sorted(quiet, key=lambda a: a.name.casefold())
        )
        out.append(f'<p class="quiet">Green, nothing to do ({len(quiet)}): {names}</p>')
    out.append("</section>")
    return "\n".join(out)


def _account(a: AccountLine, b: Book) -> str:
    worst = a.worst
    cls = f"account worst-{worst.value}" if worst is not None else "account"
    out = [
        f'<article class="{cls}" id="{a.anchor}">',
        f"<h4>{_account_link(a)} {_cov_chip(a)}"
        f'<span class="tag">{e(CRM_NAMES.get(a.crm, a.crm))}</span>'
        f'<span class="tag">{e(TIER_WORDS[a.tier])}</span></h4>',
    ]
    if a.renewal is not None:
        as_of = b.as_of_by_crm.get(a.crm, b.as_of).date()
        out.append(
            f"<p><strong>Renewal:</strong> {e(a.renewal_what)} "
            f"({e(in_days((a.renewal - as_of).days))}).</p>"
        )
    out.append(f"<p><strong>Coverage:</strong> {e(a.why)}</p>")
    out.append('<ul class="parts">' + "".join(f"<li>{e(p)}</li>" for p in a.parts) + "</ul>")
    if a.findings:
        out.append(
            "<table><thead><tr><th>Finding</th><th>Who</th><th>Severity</th>"
            "<th>What we found</th></tr></thead><tbody>"
        )
        for f in a.findings:
            out.append(
                f"<tr><td>{e(f.label)}</td><td>{e(f.who) or '—'}</td>"
                f"<td>{_sev_chip(f.severity)}</td><td>{e(f.explanation)}</td></tr>"
            )
        out.append("</tbody></table>")
    if a.tasks:
        out.append(
            "<table><thead><tr><th>crmsync task</th><th>Owner</th><th>Due</th><th>Status</th>"
            "<th>Priority</th></tr></thead><tbody>"
        )
        for t in a.tasks:
            due = e(short_day(t.due_date)) if t.due_date else "—"
            if t.overdue:
                due = f'<span class="overdue">{due} (overdue)</span>'
            out.append(
                f"<tr><td>{e(t.subject)}</td><td>{e(t.owner)}</td><td>{due}</td>"
                f"<td>{e(t.status)}</td><td>{e(t.priority) or '—'}</td></tr>"
            )
        out.append("</tbody></table>")
    if a.closed_tasks:
        out.append(f'<p class="muted">{plural(a.closed_tasks, "crmsync task")} completed.</p>')
    out.append("</article>")
    return "\n".join(out)


# ---------------------------------------------------------------- footer


def _footer(b: Book) -> str:
    lines = [
        "Written by <code>crmsync report</code> from the local mirror, without calling a CRM. "
        "Coverage is the rules' view of each account as of the date above; findings and tasks "
        "are those the last run stored. Figures are dated by the rules' as-of date, not by "
        "when this page was written.",
    ]
    for why in b.missing_links:
        lines.append(f"No links into {e(why)}.")
    for crm in b.not_evaluated:
        lines.append(
            f"{e(CRM_NAMES.get(crm, crm))} is in the mirror but no run has evaluated its rules "
            "yet: it is not in this page."
        )
    return "<footer>" + "".join(f"<p>{line}</p>" for line in lines) + "</footer>"


# ---------------------------------------------------------------- small helpers




def _pct(n: int, total: int) -> str:
    return f"{round(100 * n / total)}%" if total else "–"
