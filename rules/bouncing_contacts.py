"""Bouncing contact: a contact whose email address does not reach them.

A contact is bouncing when any of these is true:

- the CRM marked the address as bounced and the mail server's answer was a
  permanent failure (status 5.x.x, or no status given: the CRM only marks hard
  bounces), unless the CRM's reason code says otherwise (below);
- the mail server's answer was a temporary failure (status 4.x.x, e.g. a full
  mailbox) and the CRM's note shows it happened at least
  `soft_bounce_threshold` times ("bounced 3 times"); a single temporary
  failure is only a note (severity info), and the contact stays active;
- the address is not a valid email address (checked offline with
  email-validator; international addresses such as jörg@bücher.de are valid);
- there is no email address at all;
- optionally (`check_deliverability = true`), the address's domain does not
  accept email (a DNS lookup, cached per domain; off by default).

A shared mailbox such as info@ or sales@ (`role_addresses`) is a note (severity
info), not bouncing: the address works, but it is not a person.

When the CRM records why mail bounced as a code (HubSpot's hard-bounce reason:
UNKNOWN_USER, MAILBOX_FULL, SPAM, POLICY, CONTENT, OTHER), `bounce_reasons`
says what each code means, and the code decides over the status number:

- "gone" (UNKNOWN_USER: the address does not exist): bouncing, and a sign
  that the person has left;
- "temporary" (MAILBOX_FULL): a temporary failure, as above (a note unless it
  keeps happening);
- "sender" (SPAM, POLICY, CONTENT): the receiving server refused the message
  or the way it was sent, not the address: a note (severity info) that says
  to check the sending, not the contact; the contact stays active;
- "unknown" (OTHER): bouncing (the CRM stops mailing the address) but, with
  no reason given, not a sign that the person has left.

HubSpot counts all six codes as hard bounces; only an unknown user means the
address is gone (HubSpot's property definition and its "Email bounce types"
help article; api-facts §4).

A bouncing contact is no longer "active": it does not count as engaged, and
cannot be stale. When activity was logged after the bounce ("bounced but active
since"), the contact is still reported as bouncing (the address still fails),
one step less urgent, and the explanation says the person was reached since.

Severity: low; one step higher when the contact holds a buying role that
counts, and one more when the account renews soon.

The account manager sees hygiene status "bouncing" on the contact and a line in
the account's grouped hygiene task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any

from email_validator import EmailNotValidError, validate_email

from crmsync.state.model import AccountView, Contact, Flag, Severity

from . import explain
from .context import Bounce, BounceKind, Facts, activity_day, email_domain, step
from .settings import require, require_names

NAME = "bouncing_contact"
WHERE = f"[rules.{NAME}]"

DomainCheck = Callable[[str], str | None]
"""Given an email domain, None when it accepts mail, else a short reason. Injected by
sync/ (see `dns_domain_check`) when `check_deliverability` is on; tests pass a fake."""

ROLE_ADDRESSES = (
    "accounts",
    "admin",
    "billing",
    "contact",
    "enquiries",
    "hello",
    "help",
    "info",
    "inquiries",
    "marketing",
    "no-reply",
    "noreply",
    "office",
    "sales",
    "support",
    "team",
)


# What a CRM's bounce reason code means (module docstring). Defaults: HubSpot's
# hs_email_hard_bounce_reason_enum options.
REASON_KINDS = ("gone", "temporary", "sender", "unknown")
BOUNCE_REASONS = {
    "UNKNOWN_USER": "gone",
    "MAILBOX_FULL": "temporary",
    "SPAM": "sender",
    "POLICY": "sender",
    "CONTENT": "sender",
    "OTHER": "unknown",
}


@dataclass(frozen=True)
class Settings:
    """`[rules.bouncing_contact]`."""

    soft_bounce_threshold: int = 3
    role_addresses: tuple[str, ...] = ROLE_ADDRESSES
    check_deliverability: bool = False
    allow_test_domains: bool = False  # accept @*.test and similar reserved names (sandboxes)
    # reason code -> gone | temporary | sender | unknown; listed codes override the defaults
    bounce_reasons: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(BOUNCE_REASONS))
    )

    def __post_init__(self) -> None:
        require(
            isinstance(self.soft_bounce_threshold, int) and self.soft_bounce_threshold >= 1,
            WHERE,
            "soft_bounce_threshold",
            f"must be a whole number, at least 1; got {self.soft_bounce_threshold!r}.",
        )
        require_names(WHERE, "role_addresses", self.role_addresses)
        require(
            all("@" not in r for r in self.role_addresses),
            WHERE,
            "role_addresses",
            'lists the part before the @ only, for example ["info", "sales"].',
        )
        for code, kind in self.bounce_reasons.items():
            require(
                kind in REASON_KINDS and bool(_CODE.fullmatch(str(code).strip().upper())),
                WHERE,
                f"bounce_reasons.{code}",
                f"must map a reason code (letters, digits, _) to one of "
                f"{', '.join(REASON_KINDS)}; got {kind!r}.",
            )

    # These two are read for every account: built once per settings (the instance is frozen).
    @cached_property
    def reason_kinds(self) -> Mapping[str, str]:
        """Reason code -> kind: the defaults with `bounce_reasons` over them."""
        return MappingProxyType(
            {**BOUNCE_REASONS, **{k.strip().upper(): v for k, v in self.bounce_reasons.items()}}
        )

    @cached_property
    def role_locals(self) -> frozenset[str]:
        """The role addresses' local parts, casefolded."""
        return frozenset(r.casefold() for r in self.role_addresses)


# Precedence: the first kind found is the one reported; the rest go to `also`.
ORDER = (
    BounceKind.HARD,
    BounceKind.SOFT_REPEATED,
    BounceKind.UNEXPLAINED,
    BounceKind.INVALID,
    BounceKind.UNDELIVERABLE,
    BounceKind.NO_EMAIL,
    BounceKind.SOFT_ONCE,
    BounceKind.REFUSED,
    BounceKind.ROLE_ADDRESS,
)
NOTES = frozenset({BounceKind.SOFT_ONCE, BounceKind.REFUSED, BounceKind.ROLE_ADDRESS})


def find(
    view: AccountView, settings: Settings, facts: Facts, domain_check: DomainCheck | None = None
) -> dict[str, Bounce]:
    """Bounce findings (bouncing or notes) for the account's current contacts."""
    check = domain_check if settings.check_deliverability else None
    roles = settings.role_locals
    reasons = settings.reason_kinds
    out: dict[str, Bounce] = {}
    for cid, contact in facts.contacts.items():
        found = _inspect(contact, settings, roles, check, reasons)
        if found is not None:
            out[cid] = found
    return out


def evaluate(
    view: AccountView, settings: Settings, as_of: datetime, facts: Facts
) -> Iterator[Flag]:
    for cid, bounce in facts.bounces.items():
        contact = facts.contacts[cid]
        roles = facts.roles_of(cid)
        summary, text = _explain(contact, bounce, roles, settings)
        yield Flag(
            rule=NAME,
            crm=view.crm,
            account_id=view.id,
            subject_id=cid,
            contact_id=cid,
            severity=_severity(bounce, roles, facts),
            explanation=text,
            evidence=_evidence(contact, bounce, roles, summary),
        )


# ---------------------------------------------------------------- finding


_ENHANCED = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
_BASIC = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")
_COUNTS = (
    re.compile(r"\b(\d{1,4})\s*(?:times\b|x\b|bounces\b)", re.I),
    re.compile(r"\bbounce\s*count\s*[:=]?\s*(\d{1,4})\b", re.I),
)


def smtp_status(reason: str | None) -> tuple[str | None, str | None]:
    """(`"5.1.1"` or `"550"`, `"hard"` / `"soft"`) from a bounce reason; (None, None) if absent."""
    if not reason:
        return None, None
    m = _ENHANCED.search(reason) or _BASIC.search(reason)
    if not m:
        return None, None
    cls = {"5": "hard", "4": "soft"}.get(m[1])
    return m[0], cls


_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_LEADING_CODE = re.compile(r"\s*([A-Z][A-Z0-9_]*)\s*(?::|$)")


def reason_code(reason: str | None, known: Mapping[str, str]) -> str | None:
    """The CRM's reason code a bounce reason starts with ("SPAM" in "SPAM: 550 5.7.1 ..."),
    when it is one `known` names; None for free text ("550 5.1.1 User unknown", "Spam
    filter said no"). Codes are upper case, as HubSpot's option values are."""
    if not reason:
        return None
    m = _LEADING_CODE.match(reason)
    if not m:
        return None
    return m[1] if m[1] in known else None


def bounce_count(reason: str | None) -> int | None:
    """How many times the reason text says the address bounced ("bounced 3 times")."""
    if not reason:
        return None
    found = [int(m[1]) for rx in _COUNTS for m in rx.finditer(reason)]
    return max(found) if found else None


def _inspect(
    contact: Contact,
    settings: Settings,
    roles: frozenset[str],
    check: DomainCheck | None,
    reasons: Mapping[str, str],
) -> Bounce | None:
    email = (contact.email or "").strip()
    kinds: dict[BounceKind, str | None] = {}
    count = None
    status = None
    code = None
    if not email:
        kinds[BounceKind.NO_EMAIL] = None
    if contact.email_bounced:
        status, cls = smtp_status(contact.bounce_reason)
        code = reason_code(contact.bounce_reason, reasons)
        meaning = reasons[code] if code else ("temporary" if cls == "soft" else "gone")
        if meaning == "temporary":
            count = bounce_count(contact.bounce_reason)
            repeated = count is not None and count >= settings.soft_bounce_threshold
            kinds[BounceKind.SOFT_REPEATED if repeated else BounceKind.SOFT_ONCE] = status
        elif meaning == "sender":
            kinds[BounceKind.REFUSED] = status
        elif meaning == "unknown":
            kinds[BounceKind.UNEXPLAINED] = status
        else:
            kinds[BounceKind.HARD] = status
    if email:
        problem = syntax_problem(email, settings.allow_test_domains)
        if problem is not None:
            kinds[BounceKind.INVALID] = problem
        else:
            if check is not None:  # (the domain only for the optional deliverability check)
                domain = email_domain(email) or ""
                if check(domain) is not None:
                    kinds[BounceKind.UNDELIVERABLE] = domain
            local = email.rsplit("@", 1)[0].split("+", 1)[0].casefold()
            if local in roles:
                kinds[BounceKind.ROLE_ADDRESS] = local
    if not kinds:
        return None
    ordered = [k for k in ORDER if k in kinds]
    kind = ordered[0]
    bouncing = kind not in NOTES
    active_since = None
    bounced = (BounceKind.HARD, BounceKind.SOFT_REPEATED, BounceKind.UNEXPLAINED)
    if bouncing and kind in bounced and contact.bounced_at:
        last = activity_day(contact)
        if last is not None and last > contact.bounced_at.date():
            active_since = last
    return Bounce(
        kind=kind,
        bouncing=bouncing,
        email=email or None,
        detail=kinds[kind],
        reason=code,
        bounced_at=contact.bounced_at if contact.email_bounced else None,
        bounce_count=count,
        active_since=active_since,
        also=tuple(ordered[1:]),
    )


# A conservative shape of plain ASCII addresses that email-validator always accepts;
# anything else (IDN, quoted, odd) gets the full check. Saves ~20 µs per contact.
_PLAIN = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_RESERVED_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def syntax_problem(email: str, allow_test_domains: bool = False) -> str | None:
    """None when the address is valid (offline syntax check), else email-validator's reason."""
    if len(email) <= 254 and _PLAIN.fullmatch(email):
        local, _, domain = email.rpartition("@")
        if (
            "--" not in domain
            and len(local) <= 64
            and domain.rpartition(".")[2].lower() not in _RESERVED_TLDS
        ):
            return None
    return _full_check(email, allow_test_domains)


# Addresses are one per contact: the cache serves one met again in a run. At 65,536 entries
# it grew with the org all run long (about 12,000 at 1M contacts), and the memory it pinned
# with it (bench/README.md "evaluate_speed.py").
@lru_cache(maxsize=1024)
def _full_check(email: str, allow_test_domains: bool) -> str | None:
    try:
        validate_email(
            email,
            check_deliverability=False,
            allow_smtputf8=True,
            test_environment=allow_test_domains,
        )
    except EmailNotValidError as e:
        return str(e)
    return None


def dns_domain_check(timeout_seconds: float = 5.0, resolver: Any = None) -> DomainCheck:
    """A DomainCheck backed by DNS (MX, then A/AAAA), cached per domain for the process.

    The only network-facing code in rules/: sync/ builds it once when
    `check_deliverability` is on and passes it to `rules.evaluate_account`.
    A lookup that fails without an answer (timeout, no nameservers) counts as
    deliverable: no evidence of a problem. `resolver` (a dnspython Resolver)
    is for tests.
    """
    import idna
    from dns.exception import DNSException
    from dns.resolver import NXDOMAIN, NoAnswer
    from email_validator import caching_resolver
    from email_validator.deliverability import validate_email_deliverability
    from email_validator.exceptions import EmailUndeliverableError

    resolver_ = resolver or caching_resolver(timeout=int(max(1, timeout_seconds)))

    @lru_cache(maxsize=16384)
    def check(domain: str) -> str | None:
        try:
            ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None  # the syntax check reports malformed domains
        try:
            validate_email_deliverability(ascii_domain, domain, dns_resolver=resolver_)
        except EmailUndeliverableError as e:
            # email-validator wraps unexpected resolver errors too: those are "unknown".
            known = e.__cause__ is None or isinstance(e.__cause__, NXDOMAIN | NoAnswer)
            return str(e) if known else None
        except DNSException:  # no answer at all: unknown, not bouncing
            return None
        return None

    return check


# ---------------------------------------------------------------- reporting


def _severity(bounce: Bounce, roles: tuple[str, ...], facts: Facts) -> Severity:
    if not bounce.bouncing:
        return Severity.INFO
    sev = Severity.LOW
    if roles:
        sev = step(sev, 1)
    if facts.renewal is not None:
        sev = step(sev, 1)
    if bounce.active_since is not None:
        sev = max(Severity.LOW, step(sev, -1), key=lambda s: s.rank)
    return sev


def _explain(
    contact: Contact, bounce: Bounce, roles: tuple[str, ...], settings: Settings
) -> tuple[str, str]:
    """(summary sentence, whole paragraph)."""
    who = explain.person(contact.name)
    email = explain.email(bounce.email)
    detail = explain.detail(bounce.detail)
    status = f" (the mail server answered {detail})" if detail else ""
    when = f" on {explain.day(bounce.bounced_at)}" if bounce.bounced_at else ""
    role_note = (
        f" {who} holds the {explain.listing(roles)} role, so keep a working address on file."
        if roles
        else ""
    )
    fix = f"Find a current address for {who}, or mark the person as gone if they have left."
    k = bounce.kind
    if k is BounceKind.HARD:
        summary = f"Email to {who} at {email} bounced{when}{status}."
        body = "The address no longer receives mail."
    elif k is BounceKind.UNEXPLAINED:
        summary = (
            f"Email to {who} at {email} bounced{when}{status}, and the mail server did not say why."
        )
        body = "No more email is sent to the address until it is confirmed to work."
        fix = f"Check the address with {who}, or find a current one."
    elif k is BounceKind.REFUSED:
        summary = f"Mail to {who} at {email} was {_REFUSED.get(bounce.reason or '', 'refused by the receiving server')}{when}{status}."
        body = _REFUSED_WHY.get(bounce.reason or "", _REFUSED_WHY[""])
        fix = "Check your sending, not the contact: the address itself may work."
        role_note = ""
    elif k is BounceKind.SOFT_REPEATED:
        summary = f"Email to {who} at {email} keeps bouncing{status}."
        body = (
            f"It has failed {bounce.bounce_count} times, and {settings.soft_bounce_threshold} "
            "temporary failures are treated as an address that does not work."
        )
    elif k is BounceKind.INVALID:
        summary = f"The email address of {who} ({email}) is not a valid address."
        body = detail
        fix = f"Correct the address so that email reaches {who}."
    elif k is BounceKind.UNDELIVERABLE:
        summary = f"The email domain of {who} ({detail}) does not accept email."
        body = ""
    elif k is BounceKind.NO_EMAIL:
        summary = f"{who} has no email address on file."
        body = ""
        fix = f"Add a current work address for {who}."
    elif k is BounceKind.SOFT_ONCE:
        times = f" {bounce.bounce_count} times" if bounce.bounce_count else ""
        summary = f"Email to {who} at {email} failed temporarily{times}{when}{status}."
        body = (
            "A temporary failure (such as a full mailbox) usually clears by itself; the address "
            f"is treated as not working after {settings.soft_bounce_threshold} failures."
        )
        fix = "No action is needed unless it keeps happening."
        role_note = ""
    else:  # ROLE_ADDRESS
        summary = f"The email address of {who} ({email}) is a shared mailbox, not a person's own."
        body = ""
        fix = f"Replace it with the direct address of {who} if you have one."
        role_note = ""
    since = ""
    if bounce.active_since is not None:
        since = (
            f"Activity has been logged since then (last on {explain.day(bounce.active_since)}), "
            "so the person was reached another way; the address still needs fixing."
        )
    return summary, explain.paragraph(summary, body, since, role_note.strip(), fix)


# How a refusal about the sender reads, by the CRM's reason code (HubSpot's "Email bounce
# types": Spam = classified as spam by the recipient's server; Policy = failed a security
# policy such as DMARC, DKIM or SPF; Content = the message's content triggered a filter).
_REFUSED = {
    "SPAM": "refused as spam",
    "POLICY": "refused by the receiving server's security policy",
    "CONTENT": "refused because of what the message contained",
}
_REFUSED_WHY = {
    "SPAM": "The receiving server judged the message to be spam; that says nothing about the address.",
    "POLICY": (
        "The receiving server did not accept how the mail was sent (sender checks such as "
        "SPF, DKIM or DMARC); that says nothing about the address."
    ),
    "CONTENT": "Something in the message set off the receiving server's filter; that says nothing about the address.",
    "": "The refusal was about the message or its sender, not the address.",
}


def _evidence(
    contact: Contact, bounce: Bounce, roles: tuple[str, ...], summary: str
) -> dict[str, object]:
    return {
        "kind": bounce.kind.value,
        "bouncing": bounce.bouncing,
        "contact_id": contact.id,
        "email": bounce.email,
        "detail": bounce.detail,
        "bounce_reason": contact.bounce_reason if contact.email_bounced else None,
        "bounced_at": bounce.bounced_at.isoformat() if bounce.bounced_at else None,
        "bounce_count": bounce.bounce_count,
        "last_activity_date": _iso(activity_day(contact)),
        "active_since": _iso(bounce.active_since),
        "also": [k.value for k in bounce.also],
        "roles": list(roles),
        "summary": summary,
        **({"reason_code": bounce.reason} if bounce.reason else {}),
    }


def _iso(d: object) -> str | None:
    return d.isoformat() if d is not None else None  # type: ignore[attr-defined]
