"""Successors: who already in the CRM could take a champion's role (docs/successors.md).

For each open departed-champion finding, and each single-threaded account that
misses a required role, up to `max_suggestions` (3) people at the same account
are suggested for the role. A person is suggested only when all of these hold:

- a current contact of the account, engaged (active: not bouncing, not
  departed; activity logged within `[rules] engaged_days`);
- not already holding the role wanted (any opportunity, or the contact record);
- never marked "not a champion" in the exemption field;
- a title that fits: `title fit` = seniority points + 2 when the title shares a
  field (sales, finance, operations, ...) with the person who left (for a
  missing role, or when the title of the person who left names no field: the
  fields in `role_fields`, Economic Buyer: finance and procurement), at least
  `min_title_fit` (3).

Seniority points, from the title's words (whole words, any case):
4 chief / C-level (CEO, CFO, ...), president, founder, owner, managing director,
general manager; 3 vice president (VP, SVP, EVP), head of; 2 director;
1 manager, lead, principal; 0 anything else. A title with assistant, associate,
junior, intern or trainee scores 0 ("Executive Assistant to the CEO").

Ranking: title fit, plus 1 for a person who already holds another buying role
at the account (they are in the deal); ties go to the better title fit, then
the name. Each suggestion says why in words: the title and what fits in it, and
the roles already held. The last activity date is evidence, not text: every
suggested person is engaged, and a task that named the date (or ranked by it)
would be rewritten in the CRM each time one of them logs activity.

Where nobody fits, the text says so and what to do (add people from the buying
committee). People an outside data provider suggested (`AccountView.outside_people`,
cached by sync/enrich.py; off by default) are listed apart, marked as outside data,
after the same title check; never anyone the account already has.

Pure: reads the view and the facts the rules share; no clock, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from types import MappingProxyType

from crmsync.state.model import AccountView, Contact, Flag, OutsidePerson

from . import departed_champions, explain, single_threaded
from .context import Facts, HeldRole, activity_day
from .settings import require, require_names

NAME = "successors"
WHERE = f"[rules.{NAME}]"

# Seniority: (points, words). Phrases first; "vice president" is taken out of the title
# before "president" is looked for.
SENIORITY: tuple[tuple[int, tuple[str, ...]], ...] = (
    (3, ("vice president", "head of", "vp", "svp", "evp", "avp")),
    (
        4,
        (
            "chief", "ceo", "cfo", "cto", "coo", "cio", "cro", "cmo", "cpo", "ciso", "chro",
            "president", "founder", "co-founder", "managing director",
            "general manager",
        ),
    ),
    (2, ("director",)),
    (1, ("manager", "lead", "principal", "supervisor")),
)  # fmt: skip
JUNIOR = ("assistant", "associate", "junior", "intern", "trainee")
LEVEL_WORDS = {
    4: "executive",
    3: "VP or head level",
    2: "director level",
    1: "manager level",
    0: "",
}

# Fields of work, by the words a title uses for them.
FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "sales": ("sales", "revenue", "commercial", "business development", "cro"),
        "marketing": ("marketing", "brand", "cmo"),
        "finance": ("finance", "financial", "cfo", "controller", "treasurer", "accounting"),
        "procurement": ("procurement", "purchasing", "sourcing"),
        "operations": ("operations", "ops", "coo", "supply chain", "logistics"),
        "technology": (
            "engineering", "technology", "it", "cto", "cio", "ciso", "software",
            "infrastructure", "security", "data", "platform",
        ),
        "product": ("product", "cpo"),
        "people": ("hr", "human resources", "people", "talent", "chro"),
        "customer": ("customer", "support", "service", "success"),
        "legal": ("legal", "counsel", "compliance"),
    }
)  # fmt: skip

FIELD_POINTS = 2
IN_DEAL_POINTS = 1


@dataclass(frozen=True)
class Settings:
    """`[rules.successors]`."""

    enabled: bool = True
    max_suggestions: int = 3
    min_title_fit: int = 3
    role_fields: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({"Economic Buyer": ("finance", "procurement")})
    )

    def __post_init__(self) -> None:
        require(isinstance(self.enabled, bool), WHERE, "enabled", "must be true or false.")
        for key in ("max_suggestions", "min_title_fit"):
            value = getattr(self, key)
            require(
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10,
                WHERE,
                key,
                f"must be a whole number from 0 to 10; got {value!r}.",
            )
        for role, fields in self.role_fields.items():
            require_names(WHERE, f"role_fields.{role}", list(fields))
            unknown = [f for f in fields if f not in FIELDS]
            require(
                not unknown,
                WHERE,
                f"role_fields.{role}",
                f"has unknown field {unknown[:1]!r}; use {', '.join(FIELDS)}.",
            )


# ---------------------------------------------------------------- titles


@dataclass(frozen=True)
class TitleFit:
    seniority: int
    fields: frozenset[str]

    def fit(self, wanted: frozenset[str]) -> tuple[int, frozenset[str]]:
        shared = self.fields & wanted
        return self.seniority + (FIELD_POINTS if shared else 0), shared


@lru_cache(maxsize=4096)
def read_title(title: str | None) -> TitleFit:
    """Seniority points and fields of a job title (see the module docstring)."""
    if not title:
        return TitleFit(0, frozenset())
    text = " " + " ".join(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", title.casefold())) + " "
    level = 0
    rest = text
    for points, words in SENIORITY:
        for w in words:
            if f" {w} " in rest:
                level = max(level, points)
                rest = rest.replace(f" {w} ", " ")
    if any(f" {w} " in text for w in JUNIOR):
        level = 0
    fields = frozenset(f for f, words in FIELDS.items() if any(f" {w} " in text for w in words))
    return TitleFit(level, fields)


# ---------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class Candidate:
    contact: Contact
    score: int
    fit: int
    level: int
    shared: frozenset[str]
    last_activity: date | None
    other_roles: tuple[HeldRole, ...]
    why: str = ""  # in words (`_why`), made once


@dataclass(frozen=True)
class Suggestion:
    """Who could take `role` at one account: people in the CRM, and outside data apart."""

    role: str
    candidates: tuple[Candidate, ...]
    outside: tuple[tuple[OutsidePerson, int], ...]  # with its title fit
    holders: tuple[Contact, ...]  # active people who still hold the role


def suggest(
    view: AccountView,
    facts: Facts,
    settings: Settings,
    roles: Sequence[str],
    *,
    like: Contact | None = None,
    not_champion: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Suggestion:
    """Up to `max_suggestions` people for the first of `roles` (holding any of them excludes);
    `like`: the person who left (their title's field fits)."""
    wanted_roles = {r.casefold() for r in roles}
    wanted = _wanted_fields(roles, like, settings)
    barred = set(not_champion) | set(exclude)
    found: list[Candidate] = []
    holders: list[Contact] = []
    for c in facts.engaged:
        held = facts.roles.get(c.id, ())
        if any(r.role.casefold() in wanted_roles for r in held):
            holders.append(c)
            continue
        if c.id in barred:
            continue
        t = read_title(c.title)
        fit, shared = t.fit(wanted)
        if fit < settings.min_title_fit:
            continue
        others = tuple({r.role: r for r in held}.values())
        found.append(
            Candidate(
                c,
                fit + (IN_DEAL_POINTS if others else 0),
                fit,
                t.seniority,
                shared,
                activity_day(c),
                others,
            )
        )
    found.sort(key=lambda x: (-x.score, -x.fit, x.contact.name, x.contact.id))
    return Suggestion(
        role=roles[0] if roles else "Champion",
        candidates=tuple(replace(c, why=_why(c, like)) for c in found[: settings.max_suggestions]),
        outside=_outside(view, facts, settings, wanted_roles, wanted),
        holders=tuple(holders),
    )


def _wanted_fields(
    roles: Sequence[str], like: Contact | None, settings: Settings
) -> frozenset[str]:
    if like is not None and read_title(like.title).fields:
        return read_title(like.title).fields
    by_role = {k.casefold(): v for k, v in settings.role_fields.items()}
    return frozenset(f for r in roles for f in by_role.get(r.casefold(), ()))


def _outside(
    view: AccountView,
    facts: Facts,
    settings: Settings,
    wanted_roles: set[str],
    wanted: frozenset[str],
) -> tuple[tuple[OutsidePerson, int], ...]:
    if not view.outside_people:
        return ()
    known_emails = {(c.email or "").strip().casefold() for c in view.contacts if c.email}
    known_names = {c.name.casefold() for c in view.contacts}
    out: list[tuple[OutsidePerson, int]] = []
    seen: set[str] = set()
    for p in view.outside_people:
        if p.role.casefold() not in wanted_roles:
            continue
        name = " ".join(p.name.split())
        email = (p.email or "").strip().casefold()
        if not name or name.casefold() in known_names or (email and email in known_emails):
            continue
        if name.casefold() in seen:
            continue
        fit, _ = read_title(p.title).fit(wanted)
        if fit < settings.min_title_fit:
            continue
        seen.add(name.casefold())
        out.append((p, fit))
    out.sort(key=lambda x: (-x[1], x[0].name, x[0].source))
    return tuple(out[: settings.max_suggestions])


# ---------------------------------------------------------------- words


def sentences(s: Suggestion, company: str, facts: Facts, like: Contact | None) -> str:
    """What the account manager reads: the suggestions, or that nobody fits and what to do."""
    parts: list[str] = []
    if s.holders:
        parts.append(_still_held(s))
    if s.candidates:
        who = "; ".join(c.why for c in s.candidates)
        parts.append(f"{_who_could(s, facts)}: {who}.")
    else:
        parts.append(_nobody(s, company, facts, like))
    if s.outside:
        listed = "; ".join(_outside_why(p) for p, _ in s.outside)
        parts.append(f"{OUTSIDE}: {listed}.")
    return explain.paragraph(*parts)


def lines(s: Suggestion, company: str, facts: Facts, like: Contact | None) -> list[str]:
    """The same as `sentences`, one person a line (a task's body lists them)."""
    out: list[str] = []
    if s.candidates:
        out.append(f"{_who_could(s, facts)}:")
        out += [f"- {c.why}" for c in s.candidates]
    else:
        out.append(_nobody(s, company, facts, like))
    if s.outside:
        out.append(f"{OUTSIDE}:")
        out += [f"- {_outside_why(p)}" for p, _ in s.outside]
    if s.holders:
        out += ["", _still_held(s)]
    return out


def _who_could(s: Suggestion, facts: Facts) -> str:
    return f"Who could take the {s.role} role (engaged in the last {facts.engaged_days} days)"


OUTSIDE = "From outside data, not in the CRM (check before reaching out)"


def _still_held(s: Suggestion) -> str:
    names = [explain.person(c.name) for c in s.holders[:3]]
    return f"Still in the {s.role} role: {explain.listing(names)}."


def _nobody(s: Suggestion, company: str, facts: Facts, like: Contact | None) -> str:
    anyone = "Nobody else" if like is not None else "Nobody"
    return (
        f"{anyone} at {company} in the CRM fits the {s.role} role (engaged in the last "
        f"{facts.engaged_days} days, email not bouncing, a senior title): add people "
        f"from the buying committee to the CRM, then record the new {s.role} on the "
        "opportunity."
    )


def _why(c: Candidate, like: Contact | None) -> str:
    bits = [explain.title(c.contact.title)]
    what = [LEVEL_WORDS[c.level]] if LEVEL_WORDS[c.level] else []
    if c.shared:
        field_words = explain.listing(sorted(c.shared))
        if like is not None and c.shared <= read_title(like.title).fields:
            field_words += f" like {explain.person(like.name)}"
        what.append(field_words)
    if what:
        bits[0] += f" ({', '.join(what)})"
    for r in c.other_roles[:2]:
        bits.append(_role_phrase(r))
    return f"{explain.person(c.contact.name)}, {', '.join(bits)}"


def _role_phrase(r: HeldRole) -> str:
    role = explain.detail(r.role)  # any role the CRM holds: CRM text, bounded
    o = r.opportunity
    if o is None:
        return f"{role} on the contact record"
    name = explain.quoted(explain.company(o.name) or o.id)
    where = "the won opportunity" if o.is_won else "the open opportunity"
    return f"{role} on {where} {name}"


def _outside_why(p: OutsidePerson) -> str:
    bits = [explain.person(p.name)]
    if p.title:
        bits.append(explain.title(p.title))
    if p.email:
        bits.append(explain.email(p.email))
    source = explain.detail(p.source) or "an outside provider"
    return f"{', '.join(bits)} (source: {source})"


def evidence(s: Suggestion, company: str, facts: Facts, like: Contact | None) -> dict[str, object]:
    return {
        "role": s.role,
        "candidates": [
            {
                "contact_id": c.contact.id,
                "name": c.contact.name,
                "title": c.contact.title,
                "score": c.score,
                "title_fit": c.fit,
                "last_activity_date": c.last_activity.isoformat() if c.last_activity else None,
                "other_roles": [r.role for r in c.other_roles],
                "source": "crm",
                "why": c.why,
            }
            for c in s.candidates
        ],
        "outside": [
            {
                "name": p.name,
                "title": p.title,
                "email": p.email,
                "title_fit": fit,
                "source": p.source,
                "outside_data": True,
                "why": _outside_why(p),
            }
            for p, fit in s.outside
        ],
        "still_held_by": [c.id for c in s.holders],
        "nobody_fits": not s.candidates,
        "lines": lines(s, company, facts, like),
    }


# ---------------------------------------------------------------- onto the findings


def wanted_roles(flag: Flag, facts: Facts, champion_roles: Sequence[str]) -> tuple[str, ...]:
    """The roles a finding asks to fill: the departed champion's, or the missing ones."""
    if flag.rule == departed_champions.NAME:
        wanted = {r.casefold() for r in champion_roles}
        held = facts.roles_of(flag.contact_id or flag.subject_id)
        return tuple(dict.fromkeys(r for r in held if r.casefold() in wanted))
    if flag.rule == single_threaded.NAME:
        return single_threaded.Evidence.of(flag.evidence).missing_roles
    return ()


def attach(
    view: AccountView,
    flags: Sequence[Flag],
    facts: Facts,
    settings: Settings,
    champion_roles: Sequence[str],
    not_champion: frozenset[str],
) -> list[Flag]:
    """The findings with suggestions added to the departed-champion and missing-role ones
    that are followed up (not suppressed): in the explanation and as evidence."""
    if not settings.enabled:
        return list(flags)
    company = explain.company(view.account.name) or "the account"
    out: list[Flag] = []
    for f in flags:
        roles = () if f.suppressed else wanted_roles(f, facts, champion_roles)
        if not roles:
            out.append(f)
            continue
        like = None
        if f.rule == departed_champions.NAME:
            cid = f.contact_id or f.subject_id
            like = facts.contacts.get(cid) or facts.former.get(cid)
            found = [
                suggest(view, facts, settings, (r,), like=like, not_champion=not_champion,
                        exclude=(cid,))
                for r in roles
            ]  # fmt: skip
        else:
            found = [suggest(view, facts, settings, (r,), not_champion=not_champion) for r in roles]
        text = explain.paragraph(*(sentences(s, company, facts, like) for s in found))
        out.append(
            replace(
                f,
                explanation=explain.paragraph(f.explanation, text),
                evidence={
                    **f.evidence,
                    "successors": [evidence(s, company, facts, like) for s in found],
                    "successors_text": text,  # the explanation's last sentences
                },
            )
        )
    return out
