"""Departed champion: a person the deal depends on seems to have left the company.

A contact is a champion when they hold a champion-type role (`champion_roles`:
Champion, Economic Buyer, Executive Sponsor, Decision Maker; any case; a code
such as EXECUTIVE_SPONSOR reads as its words; the HubSpot connector names
HubSpot's buying roles, BUDGET_HOLDER as Economic Buyer) on an open opportunity
of the account, on one won within the last 365 days, or on the contact record
itself. A role on a lost opportunity only
does not make a champion.

Signs that someone has left, each recorded with its date and values:

- strong: the record moved to another account between two syncs; the
  configured "no longer at company" field is set; the email address moved from
  the account's domain to another domain;
- weak: the job title reads like a departure (`left_company_words`: "former",
  "ex-", "no longer", "left", as whole words in any case: "Ex-CTO", "Former
  VP", "Left company", but not "Leftwich" or "Executive"); email to the person
  bounces (not when the bounce was a refusal of the sender or the message, a
  full mailbox, or a bounce the mail server did not explain: see
  bouncing_contacts);
- supporting only: a person with the same name appears at another account
  with a different domain (never enough alone: names repeat).

Confidence: high when two or more signs agree; medium for one strong sign;
low for one weak sign. A champion with any strong or weak sign is reported;
the explanation says "has left" (high), "appears to have left" (medium) or
"may have left" (low). When the person now appears at another account, the
explanation names it: a warm lead for a new logo. A champion whose record moved
to another account is reported on the account that lost them.

Severity: high (medium at low confidence), one step higher for strategic
accounts and one more when the account renews soon (at most critical; at most
high at low confidence).

Anyone else with a strong sign or a departure-like title counts as departed
too: their hygiene status reads "departed" and they no longer count as active
or engaged, but only champions open a task.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from crmsync.state.model import (
    AccountView,
    Confidence,
    Contact,
    ContactChange,
    Elsewhere,
    Flag,
    Severity,
    Tier,
)
from crmsync.state.text import site_domain

from . import explain
from .context import (
    BounceKind,
    Departure,
    Facts,
    HeldRole,
    Signal,
    SignalKind,
    email_domain,
    in_domain,
    latest,
    step,
)
from .settings import require, require_names

NAME = "departed_champion"


@dataclass(frozen=True)
class Evidence:
    """What a departed champion's task reads from the flag's evidence (`_evidence` writes it)."""

    other_account_name: str | None = None  # the account the person now appears at

    @classmethod
    def of(cls, evidence: Mapping[str, object]) -> Evidence:
        name = evidence.get("other_account_name")
        return cls(name if isinstance(name, str) and name.strip() else None)


WHERE = f"[rules.{NAME}]"

CHAMPION_ROLES = ("Champion", "Economic Buyer", "Executive Sponsor", "Decision Maker")
STRONG = frozenset({SignalKind.MOVED, SignalKind.LEFT_COMPANY, SignalKind.EMAIL_DOMAIN})
WEAK = frozenset({SignalKind.TITLE, SignalKind.BOUNCE})
GONE = STRONG | {SignalKind.TITLE}  # enough to treat anyone as departed (a bounce alone is not)
SIGNS = STRONG | WEAK  # enough to flag a champion


@dataclass(frozen=True)
class Settings:
    """`[rules.departed_champion]`."""

    champion_roles: tuple[str, ...] = CHAMPION_ROLES
    left_company_words: tuple[str, ...] = ("former", "ex-", "no longer", "left")

    def __post_init__(self) -> None:
        require_names(WHERE, "champion_roles", self.champion_roles, allow_empty=False)
        require_names(WHERE, "left_company_words", self.left_company_words)
        require(
            all(w.strip() and not w.strip().isspace() for w in self.left_company_words),
            WHERE,
            "left_company_words",
            'must list words or phrases, for example ["former", "ex-"].',
        )


def learn(view: AccountView, settings: Settings, facts: Facts) -> Facts:
    """Add who shows signs of having left (`departures`) and who counts as gone (`departed`)."""
    history: dict[str, list[ContactChange]] = {}
    for h in view.history:
        history.setdefault(h.contact_id, []).append(h)
    # each contact's nearest match elsewhere (most contacts have none): one pass. The
    # nearest is the least key: a move first, then by account name and id.
    nearest: dict[str, tuple[tuple[bool, str, str], Elsewhere]] = {}
    here = view.id  # (a property; about twenty rows an account)
    for e in view.elsewhere:
        if e.other_account_id != here:
            k = (e.how != "moved", e.other_account_name or "", e.other_account_id)
            best = nearest.get(e.contact_id)
            if best is None or k < best[0]:  # the first of equals, as min() keeps
                nearest[e.contact_id] = (k, e)
    pattern = title_pattern(settings.left_company_words)
    bounces = facts.bounces
    departures: dict[str, Departure] = {}
    for contact in (*facts.contacts.values(), *facts.former.values()):
        cid = contact.id
        found = nearest.get(cid)
        changes = history.get(cid)
        if (
            found is None
            and changes is None
            and cid not in bounces
            and not contact.left_company
            and cid not in facts.former
            and not _titled(pattern, contact.title)
        ):  # most people: no sign to look for (as `_departure` would find), without a call
            continue
        d = _departure(
            view, contact, changes or [], pattern, facts, found[1] if found is not None else None
        )
        if d is not None:
            departures[cid] = d
    departed = frozenset(
        cid
        for cid, d in departures.items()
        if d.kinds & GONE or (d.kinds & SIGNS and _is_champion(cid, settings, facts))
    )
    return replace(facts, departures=dict(sorted(departures.items())), departed=departed)


def evaluate(
    view: AccountView, settings: Settings, as_of: datetime, facts: Facts
) -> Iterator[Flag]:
    for cid, d in facts.departures.items():
        held = _champion_roles(cid, settings, facts)
        kinds = _kinds(d)
        if not held or not kinds & SIGNS:
            continue
        confidence = confidence_of(d)
        summary = reason(view, d, facts, settings)
        yield Flag(
            rule=NAME,
            crm=view.crm,
            account_id=view.id,
            subject_id=cid,
            contact_id=cid,
            severity=_severity(confidence, facts),
            confidence=confidence,
            explanation=_explain(view, d, held, confidence, facts, summary),
            evidence=_evidence(d, held, confidence, summary),
        )


def confidence_of(d: Departure) -> Confidence:
    kinds = _kinds(d)
    if len(kinds) >= 2:
        return Confidence.HIGH
    return Confidence.MEDIUM if kinds & STRONG else Confidence.LOW


def reason(view: AccountView, d: Departure, facts: Facts, settings: Settings) -> str:
    """One sentence: who, in which role, has (may have) left which company."""
    verb = {
        Confidence.HIGH: "has left",
        Confidence.MEDIUM: "appears to have left",
        Confidence.LOW: "may have left",
    }[confidence_of(d)]
    roles = tuple(dict.fromkeys(r.role for r in _champion_roles(d.contact.id, settings, facts)))
    name = explain.person(d.contact.name)
    who = f"{name} ({explain.listing(roles)})" if roles else name
    return f"{who} {verb} {explain.company(view.account.name) or 'the company'}."


# ---------------------------------------------------------------- signals


@lru_cache(maxsize=32)
def title_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole-word, any-case match of the departure words ("ex-" may run into the next word)."""
    parts = []
    for w in words:
        w = w.strip()
        if not w:
            continue
        body = r"\s+".join(re.escape(p) for p in w.split())
        tail = "" if not w[-1].isalnum() else r"(?![\w])"
        parts.append(rf"(?<![\w-]){body}{tail}")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _departure(
    view: AccountView,
    contact: Contact,
    history: list[ContactChange],
    pattern: re.Pattern[str] | None,
    facts: Facts,
    elsewhere: Elsewhere | None,
) -> Departure | None:
    cid = contact.id
    moved_away = cid in facts.former
    titled = _titled(pattern, contact.title)
    bounce = facts.bounces.get(cid)
    if not (moved_away or titled or history or contact.left_company) and (
        bounce is None and elsewhere is None
    ):  # most people: no sign to look for (an email change needs a history row)
        return None
    signals: list[Signal] = []
    if moved_away:
        move = latest(h for h in history if h.field == "account_id")
        signals.append(
            Signal(SignalKind.MOVED, move.seen_at if move else None, view.id, contact.account_id)
        )
    if contact.left_company:
        signals.append(Signal(SignalKind.LEFT_COMPANY))
    email_change = _email_moved(view, contact, history)
    if email_change is not None:
        signals.append(email_change)
    if titled:
        signals.append(Signal(SignalKind.TITLE, new=contact.title))
    # a bounce the mail server did not explain stops mail, but says nothing of the person
    if bounce is not None and bounce.bouncing and bounce.kind is not BounceKind.UNEXPLAINED:
        signals.append(Signal(SignalKind.BOUNCE, bounce.bounced_at, new=bounce.kind.value))
    if elsewhere is not None and elsewhere.how == "same_name":
        signals.append(Signal(SignalKind.SAME_NAME, new=elsewhere.other_account_id))
    if not signals:
        return None
    return Departure(contact, tuple(signals), elsewhere, moved_away)


@lru_cache(maxsize=4096)
def _titled(pattern: re.Pattern[str] | None, title: str | None) -> bool:
    """Whether a job title carries a departure word. An org has few distinct titles: each
    is searched once (the cache is bounded for orgs with many)."""
    return bool(title and pattern is not None and pattern.search(title))


def _email_moved(
    view: AccountView, contact: Contact, history: list[ContactChange]
) -> Signal | None:
    """The latest email change away from the account's domain, when the address is still away."""
    if not history:
        return None
    home = site_domain(view.account.domain)
    now = email_domain(contact.email)
    if now is None or in_domain(now, home):
        return None
    for h in sorted(history, key=lambda h: (h.seen_at, h.new or ""), reverse=True):
        if h.field != "email":
            continue
        old = email_domain(h.old)
        if old is None or old == now:
            continue
        if in_domain(old, home) or (home is None and not in_domain(now, old)):
            return Signal(SignalKind.EMAIL_DOMAIN, h.seen_at, old, now)
    return None


def _kinds(d: Departure) -> frozenset[SignalKind]:
    return d.kinds


def _champion_roles(contact_id: str, settings: Settings, facts: Facts) -> tuple[HeldRole, ...]:
    held = facts.roles.get(contact_id)
    if not held:
        return ()
    wanted = _casefolded(settings.champion_roles)
    return tuple(r for r in held if r.role.casefold() in wanted)


@lru_cache(maxsize=32)
def _casefolded(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n.strip().casefold() for n in names)


def _is_champion(contact_id: str, settings: Settings, facts: Facts) -> bool:
    return bool(_champion_roles(contact_id, settings, facts))


# ---------------------------------------------------------------- reporting


def _severity(confidence: Confidence, facts: Facts) -> Severity:
    sev = Severity.MEDIUM if confidence is Confidence.LOW else Severity.HIGH
    sev = step(sev, int(facts.tier is Tier.STRATEGIC) + int(facts.renewal is not None))
    if confidence is Confidence.LOW and sev.rank > Severity.HIGH.rank:
        sev = Severity.HIGH
    return sev


def _sign(s: Signal, d: Departure) -> str:
    noticed = f" (noticed {explain.day(s.seen_at)})" if s.seen_at else ""
    other = explain.company(d.elsewhere.other_account_name) if d.elsewhere else None
    if s.kind is SignalKind.MOVED:
        return f"the record moved to {other or 'another account'}{noticed}"
    if s.kind is SignalKind.LEFT_COMPANY:
        return "the record is marked as no longer at the company"
    if s.kind is SignalKind.EMAIL_DOMAIN:
        old, new = explain.email(s.old), explain.email(s.new)
        return f"the email address changed from @{old} to @{new}{noticed}"
    if s.kind is SignalKind.TITLE:
        return f"the job title reads {explain.title(s.new)}"
    if s.kind is SignalKind.BOUNCE:
        since = f" (since {explain.day(s.seen_at)})" if s.seen_at else ""
        return f"email to the person bounces{since}"
    return f"a person with the same name appears at {other or 'another account'}"


def _held_phrase(r: HeldRole) -> str:
    o = r.opportunity
    if o is None:
        return f"the {r.role} on the contact record"
    name = explain.quoted(explain.company(o.name) or o.id)
    if o.is_won:
        won = f" won on {explain.day(o.close_date)}" if o.close_date else " (won)"
        return f"the {r.role} on the opportunity {name}{won}"
    closes = f", closing {explain.day(o.close_date)}" if o.close_date else ""
    return f"the {r.role} on the open opportunity {name}{closes}"


def _explain(
    view: AccountView,
    d: Departure,
    held: tuple[HeldRole, ...],
    confidence: Confidence,
    facts: Facts,
    summary: str,
) -> str:
    who = explain.person(d.contact.name)
    company = explain.company(view.account.name) or "the account"
    roles = f"{who} is {explain.listing([_held_phrase(r) for r in held[:3]])}."
    signs = "Signs: " + "; ".join(_sign(s, d) for s in d.signals) + "."
    lead = ""
    if d.elsewhere is not None and d.elsewhere.other_account_name:
        other = explain.company(d.elsewhere.other_account_name)
        lead = f"Now at {other} \u2014 a warm lead for a new logo."
    before = f" before {explain.renewal_phrase(facts.renewal)}" if facts.renewal else ""
    check = (
        ""
        if confidence is Confidence.HIGH
        else f"Check with {company} whether {who} is still there; if not, "
    )
    nxt = f"find and engage a new champion at {company}{before}."
    nxt = check + nxt if check else nxt[0].upper() + nxt[1:]
    return explain.paragraph(summary, roles, signs, lead, nxt)


def _evidence(
    d: Departure, held: tuple[HeldRole, ...], confidence: Confidence, summary: str
) -> dict[str, object]:
    e = d.elsewhere
    return {
        "contact_id": d.contact.id,
        "confidence": confidence.value,
        "moved_away": d.moved_away,
        "signals": [
            {
                "kind": s.kind.value,
                "seen_at": s.seen_at.isoformat() if s.seen_at else None,
                "old": s.old,
                "new": s.new,
            }
            for s in d.signals
        ],
        "roles": [
            {
                "role": r.role,
                "opportunity_id": r.opportunity.id if r.opportunity else None,
                "opportunity_name": r.opportunity.name if r.opportunity else None,
                "opportunity_open": (not r.opportunity.is_closed) if r.opportunity else None,
                "close_date": _iso(r.opportunity.close_date) if r.opportunity else None,
            }
            for r in held
        ],
        "other_account_id": e.other_account_id if e else _moved_to(d),
        "other_account_name": e.other_account_name if e else None,
        "other_contact_id": e.other_contact_id if e else None,
        "elsewhere_how": e.how if e else None,
        "summary": summary,
    }


def _moved_to(d: Departure) -> str | None:
    return next((s.new for s in d.signals if s.kind is SignalKind.MOVED), None)


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]
