"""The leader report as Markdown, for pasting into a chat or an e-mail.

The same figures as the HTML page (sync/leader_report.py): at a glance, the
top risks and the per-owner table; the accounts' own sections stay in the page.

CRM text is hostile input: `md()` makes it printable, puts it on one line and
backslash-escapes every character CommonMark could read as markup (emphasis,
code, links, images, HTML, tables), so a contact named `[/]` or
`<script>alert(1)</script>` shows as those characters. Links are built by
crmsync from the CRM's ids (leader_report) and are the only markup links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from crmsync.rules.explain import plural
from crmsync.state.model import CoverageStatus
from crmsync.state.text import printable

from .leader_html import PERSONAL_DATA
from .leader_report import (
    CRM_NAMES,
    SEVERITIES,
    SEVERITY_WORDS,
    STATUSES,
    TIER_WORDS,
    TOP_RISKS_SHOWN,
    Book,
    day,
    in_days,
    rule_words,
    short_day,
)

# What CommonMark/GFM can read as markup in the middle of a line: emphasis (* _), code
# (`), links and images ([ ]), raw HTML and autolinks (< >), table cells (|),
# strikethrough (~), escapes (\\) and entity references (&name; &#123;). Any ASCII
# punctuation may be backslash-escaped (CommonMark spec, "Backslash escapes"); the rest
# is left alone so the text stays readable where it is pasted as plain text.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~]|&(?=#?\w+;))")


def md(value: object) -> str:
    """Text as Markdown that renders as exactly that text, on one line."""
    text = " ".join(printable(value).split())
    return _MARKUP.sub(r"\\\1", text)


def render(b: Book) -> str:
    lines = [f"# Account coverage and hygiene as of {day(b.as_of)}", ""]
    crms = " and ".join(CRM_NAMES.get(c, c) for c in b.crms)
    meta = [crms, plural(len(b.accounts), "account")]
    if b.filtered:
        meta.append("showing " + md(b.scope().split(", ", 1)[-1]))
    lines += [" · ".join(meta), "", f"> **Personal data.** {md(PERSONAL_DATA)}", ""]
    lines += _glance(b)
    lines += _risks(b)
    lines += _owners(b)
    lines += [
        "",
        "_Written by crmsync from its mirror; figures as of the rules' as-of date. "
        "Each account's findings, coverage and tasks are in the HTML report "
        "(`crmsync report --html FILE`)._",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _glance(b: Book) -> list[str]:
    cov = b.coverage
    n = len(b.accounts)
    findings = b.findings
    by_sev = {s: sum(v for (_, sev), v in findings.items() if sev is s) for s in SEVERITIES}
    out = ["## At a glance", ""]
    out.append(f"- **Coverage:** {_mix(cov, n)}")
    for tier, c in b.coverage_by_tier():
        out.append(f"  - {TIER_WORDS[tier]}: {_mix(c, sum(c.values()))}")
    out.append(
        f"- **Open findings:** {sum(findings.values())} ("
        + ", ".join(f"{SEVERITY_WORDS[s].lower()} {by_sev[s]}" for s in SEVERITIES)
        + ")"
    )
    out.append(f"- **Open crmsync tasks:** {b.open_tasks} ({b.overdue_tasks} overdue)")
    if len(b.trend) >= 2:
        first, last = b.trend[0], b.trend[-1]
        trend = (
            f"- **Trend** ({plural(len(b.trend), 'run')}, {short_day(first.at)} to "
            f"{short_day(last.at)}): open findings {first.findings} → {last.findings}, "
            f"critical and high {first.serious} → {last.serious}"
        )
        if first.coverage is not None and last.coverage is not None:
            g = CoverageStatus.GREEN
            trend += f"; green accounts {first.coverage.get(g, 0)} → {last.coverage.get(g, 0)}"
        out.append(trend)
    out.append("")
    rules = sorted(
        {r for r, _ in findings}, key=lambda r: (-sum(findings[(r, s)] for s in SEVERITIES), r)
    )
    if rules:
        out.append(
            "| Finding | " + " | ".join(SEVERITY_WORDS[s] for s in SEVERITIES) + " | Total |"
        )
        out.append("|---|" + "---:|" * (len(SEVERITIES) + 1))
        for r in rules:
            counts = [findings[(r, s)] for s in SEVERITIES]
            out.append(
                f"| {md(rule_words(r))} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |"
            )
        out.append("")
    return out


def _mix(counts: Mapping[CoverageStatus, int], n: int) -> str:
    parts = []
    for s in STATUSES:
        k = counts.get(s, 0)
        pct = f" ({round(100 * k / n)}%)" if n else ""
        parts.append(f"{k} {s.value}{pct}")
    return ", ".join(parts)


def _risks(b: Book) -> list[str]:
    out = [
        "## Top risks",
        "",
        f"Departed champions and single-threaded accounts renewing (or with an open opportunity "
        f"closing) within {b.renewal_window_days} days, by severity, then by how soon.",
        "",
    ]
    if not b.risks:
        return [*out, "None.", ""]
    for i, r in enumerate(b.risks[:TOP_RISKS_SHOWN], 1):
        a = r.account
        name = f"**{md(a.name)}**"
        if a.link:
            name = f"[{name}]({a.link})"
        who = f": {md(r.finding.who)}" if r.finding.who else ""
        out.append(
            f"{i}. {name} ({CRM_NAMES.get(a.crm, a.crm)}, {TIER_WORDS[a.tier].lower()}): "
            f"**{SEVERITY_WORDS[r.finding.severity]}** {md(r.finding.label.lower())}{who}; "
            f"{md(a.renewal_what)} ({in_days(r.days)}); owner {md(r.owner)}  "
        )
        out.append(f"   {md(r.finding.explanation)}")
        if r.finding.successors:
            out.append(f"   Who could take over: {md(r.finding.successors)}")
    if len(b.risks) > TOP_RISKS_SHOWN:
        out.append(f"\n…and {len(b.risks) - TOP_RISKS_SHOWN} more in the HTML report.")
    out.append("")
    return out


def _owners(b: Book) -> list[str]:
    head = ["Owner", "Accounts", "Green", "Amber", "Red"]
    head += [SEVERITY_WORDS[s] for s in SEVERITIES] + ["Open tasks", "Overdue"]
    out = ["## Owners", "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for o in b.owners:
        cov, sev = o.coverage, o.findings
        name = md(o.name) + ("" if o.active or not o.key else " (inactive)")
        cells = [name, str(len(o.accounts))]
        cells += [str(cov.get(s, 0)) for s in STATUSES]
        cells += [str(sev.get(s, 0)) for s in SEVERITIES]
        cells += [str(o.open_tasks), str(o.overdue_tasks)]
        out.append("| " + " | ".join(cells) + " |")
    return out




__all__ = ["md", "render"]
