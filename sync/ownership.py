"""Who owns the value in a field crmsync writes: the rule, and the signature the CRM keeps.

crmsync writes a signature beside the values it owns, in the same record write
(Salesforce `Crmsync_Signature__c`, HubSpot `crmsync_signature`; on accounts,
contacts and tasks). It lists, per field crmsync last wrote, a short hash of
the normalised value it wrote:

    v1 coverage_score=1a2b3c4d coverage_status=9f8e7d6c ...

So the CRM itself says which values are crmsync's, and a rebuilt mirror (a
fresh file, `crmsync sync --full`) knows it as well as the old one did.

The rule, per field (`Record.decide`; docs/ownership.md says it for an admin):

1. the CRM already holds what crmsync wants                -> nothing to do;
2. the CRM's value is blank                                -> crmsync writes
   (a blank field is free: blanking a field hands it back to crmsync);
3. the signature shows crmsync wrote exactly this value    -> crmsync may overwrite;
   bridge for installs from before signatures: no signature entry for the
   field, but the mirror's record of crmsync's writes (`written`) says it
   wrote exactly this value                                -> crmsync's;
4. the field was handed back (`crmsync conflicts handback`) -> crmsync writes;
5. otherwise the value is a person's (or a workflow's, or another
   integration's): left alone and reported as a conflict. crmsync never
   blanks a value it did not write: when all it wants is an empty field,
   the value is left alone silently.

Hashes are taken over `canon()`, the same normalisation the planner compares
with (`norm`/`same`), so the CRM's echo of a number (3.0, "3"), a multi-value
field ("a; b") or a task status ("Not Started", "NOT_STARTED") still matches
what crmsync wrote. A hash is 8 hex digits (32 bits): a person's value matches
crmsync's by chance about once in four billion.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from crmsync.state.model import (
    OWNED_FIELDS,
    Contact,
    Coverage,
    HygieneStatus,
    ObjectType,
    Write,
    WriteKind,
)
from crmsync.state.model import (
    SIGNATURE as SIGNATURE,  # the canonical owned key of the signature field
)
from crmsync.state.text import fit
from crmsync.state.writeback import AccountRow, ContactRow

from .tasks import REASON_MAX, ROLES_MAX, SUMMARY_MAX

VERSION = "v1"
HASH_CHARS = 8
_HASH = re.compile(f"[0-9a-f]{{{HASH_CHARS}}}")

# The fields a signature covers, per mirror table (state.model.ObjectType values): the owned
# fields of accounts and contacts, and what crmsync writes on its tasks.
SIGNED: Mapping[str, tuple[str, ...]] = {
    ObjectType.ACCOUNT.value: tuple(f for f in OWNED_FIELDS[ObjectType.ACCOUNT] if f != SIGNATURE),
    ObjectType.CONTACT.value: tuple(f for f in OWNED_FIELDS[ObjectType.CONTACT] if f != SIGNATURE),
    ObjectType.TASK.value: ("subject", "body", "priority", "owner_id", "status"),
}


# ---------------------------------------------------------------- normalisation

_NUMERIC = frozenset({"stakeholders", "engaged", "coverage_score"})
_LOWER = frozenset({"status", "coverage_status", "priority"})
_PRIORITY_ALIASES = {"medium": "normal"}
# Task status as each CRM spells it -> crmsync's word (contact statuses never collide).
_STATUS_ALIASES = {
    "not started": "open",
    "not_started": "open",
    "in progress": "open",
    "in_progress": "open",
    "waiting": "open",
    "waiting on someone else": "open",
    "deferred": "open",
    "complete": "completed",
}


# Values of these exact types are compared, normalised and hashed through a cache (the same
# texts and numbers recur across an org's records); typed, so 1, 1.0 and True stay apart.
_PLAIN = frozenset({str, int, float, type(None)})
_CACHED = 1024  # entries per cache: the recurring values; a long unique text churns through


def norm(name: str, value: Any) -> Any:
    """A value as compared: what the CRM gives back equals what crmsync wrote.

    Salesforce returns numbers as 3.0, HubSpot as "3"; multi-value fields come
    back with ";" or "; "; text may gain CRLF line ends; empty means None.
    """
    if type(value) in _PLAIN:
        return _norm_plain(name, value)
    return _norm(name, value)


@functools.lru_cache(maxsize=_CACHED, typed=True)
def _norm_plain(name: str, value: Any) -> Any:
    return _norm(name, value)


def _norm(name: str, value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        value = ";".join(str(norm("", v)) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    text = str(value).replace("\r\n", "\n").strip()
    if text == "":
        return None
    if name in _NUMERIC:
        try:
            return norm("", float(text))
        except ValueError:
            return text
    if name == "roles_covered":
        return tuple(sorted(p.strip() for p in re.split(r"[;,]", text) if p.strip()))
    if name in _LOWER:
        low = text.lower()
        if name == "priority":
            return _PRIORITY_ALIASES.get(low, low)
        return low
    return text


def same(name: str, a: Any, b: Any) -> bool:
    if type(a) is type(b) and type(a) in _PLAIN and a == b:
        return True  # equal plain values normalise alike
    return bool(norm(name, a) == norm(name, b))


def canon(name: str, value: Any) -> str | None:
    """The text a value is hashed as (None for a blank value): `norm`, made one string."""
    n = norm(name, value)
    if n is None:
        return None
    if isinstance(n, tuple):
        return ";".join(n)
    if isinstance(n, bool):
        return "true" if n else "false"
    text = str(n)
    if name == "status":
        text = _STATUS_ALIASES.get(text, text)
    return text


def digest(name: str, value: Any) -> str | None:
    """The signature's hash of `value` in field `name`; None for a blank value."""
    if type(value) in _PLAIN:
        return _digest_plain(name, value)
    return _digest(name, value)


@functools.lru_cache(maxsize=_CACHED, typed=True)
def _digest_plain(name: str, value: Any) -> str | None:
    return _digest(name, value)


def _digest(name: str, value: Any) -> str | None:
    text = canon(name, value)
    if text is None:
        return None
    return hashlib.sha256(f"{name}={text}".encode()).hexdigest()[:HASH_CHARS]


def matches(name: str, a: Any, b: Any) -> bool:
    """Equal as the signature sees them (task statuses by crmsync's word)."""
    return canon(name, a) == canon(name, b)


# ---------------------------------------------------------------- the signature


def parse(text: Any) -> dict[str, str]:
    """A signature's {field: hash}; {} for a blank, unreadable or unknown-version one."""
    if not isinstance(text, str):
        return {}
    parts = text.split()
    if not parts or parts[0] != VERSION:
        return {}
    out: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if sep and name and _HASH.fullmatch(value):
            out[name] = value
    return out


def render(entries: Mapping[str, str]) -> str:
    """{field: hash} as the signature text, fields in name order (the same set, the same text)."""
    return " ".join([VERSION, *(f"{k}={entries[k]}" for k in sorted(entries))])


# ---------------------------------------------------------------- the rule


class Decision(StrEnum):
    SAME = "same"  # the CRM holds what crmsync wants
    WRITE = "write"  # crmsync writes its value
    CONFLICT = "conflict"  # someone else's value: left alone, reported
    LEAVE = "leave"  # someone else's value and crmsync only wants it empty: left alone


@dataclass(frozen=True)
class Record:
    """What is known about one record's owned fields: its signature (from the CRM),
    what crmsync last wrote (`written`, the mirror's bridge) and the fields handed back."""

    signature: Mapping[str, str] = field(default_factory=dict)
    written: Mapping[str, Any] = field(default_factory=dict)
    handed_back: frozenset[str] = frozenset()
    guard: bool = True  # [writeback] ownership_guard

    @classmethod
    def of(
        cls,
        current: Mapping[str, Any],
        written: Mapping[str, Any] | None = None,
        handed_back: Iterable[str] = (),
        *,
        guard: bool = True,
    ) -> Record:
        # `written` as given, not copied: the planner's is read only when looked into
        mine = {} if written is None else written
        return cls(parse(current.get(SIGNATURE)), mine, frozenset(handed_back), guard)

    def wrote(self, name: str, value: Any) -> bool:
        """True when crmsync can show it wrote exactly `value` (blank is never claimed)."""
        if canon(name, value) is None:
            return False
        if name in self.signature:
            return self.signature[name] == digest(name, value)
        return name in self.written and matches(name, self.written[name], value)

    def wrote_before(self, name: str) -> bool:
        """crmsync wrote this field at some time (so another value there replaced crmsync's)."""
        return name in self.signature or name in self.written

    def decide(self, name: str, wanted: Any, held: Any) -> Decision:
        if same(name, wanted, held):
            return Decision.SAME
        return self.decide_differing(name, wanted, held)

    def decide_differing(self, name: str, wanted: Any, held: Any) -> Decision:
        """`decide` for a value the CRM holds that is not the one crmsync wants."""
        if (
            not self.guard
            or canon(name, held) is None
            or name in self.handed_back
            or self.wrote(name, held)
        ):
            return Decision.WRITE
        if canon(name, wanted) is None:
            return Decision.LEAVE
        return Decision.CONFLICT

    def after(
        self, obj: str, current: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> str:
        """The signature to write with `payload`: the payload's values, plus every other
        signed field whose current value crmsync can still show it wrote."""
        entries: dict[str, str] = {}
        for name in SIGNED.get(obj, ()):
            if name in payload:
                h = digest(name, payload[name])
            elif self.wrote(name, current.get(name)):
                h = digest(name, current.get(name))
            else:
                h = None
            if h is not None:
                entries[name] = h
        return render(entries)


def sign(obj: str, payload: Mapping[str, Any]) -> str:
    """The signature of a record crmsync creates (a task): its payload's signed fields."""
    return Record().after(obj, {}, payload)


# ---------------------------------------------------------------- field diffs


@dataclass(frozen=True)
class Conflict:
    """A value in a field crmsync writes that is not crmsync's: left alone and reported (W8).

    `last_written` is what crmsync last wrote there if the mirror knows it;
    `after_write` says crmsync had written the field (so this value replaced
    crmsync's: a revert or an edit). `who`, `since` and `handed_back` come from the
    conflicts table (sync/conflicts.py) for display."""

    object: str  # "accounts" | "contacts" | "tasks"
    record_id: str
    field: str
    crm_value: Any
    last_written: Any
    intended: Any
    owner_id: str | None
    account_id: str
    label: str
    after_write: bool = False
    who: str | None = None  # state.model.ChangeKind value
    who_name: str | None = None
    since: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.object, self.record_id, self.field)


@dataclass(frozen=True)
class Where:
    """Whose a record is, as the writes and conflicts of its diff carry it."""

    account_id: str
    owner_id: str | None
    label: str


@dataclass(frozen=True)
class Diff:
    payload: dict[str, Any]  # what to write, with the record's new signature
    old: dict[str, Any]  # what the CRM holds in those fields now
    conflicts: list[Conflict]


@dataclass(frozen=True)
class Guard:
    """The ownership rule as configured: fields handed back, and `[writeback] ownership_guard`."""

    handed_back: Mapping[tuple[str, str], Collection[str]] = field(default_factory=dict)
    on: bool = True

    def record(
        self, obj: str, record_id: str, written: Mapping[str, Any], current: Mapping[str, Any]
    ) -> Record:
        """What shows which of this record's values are crmsync's."""
        return Record.of(current, written, self.handed_back.get((obj, record_id), ()), guard=self.on)

    def diff(
        self,
        obj: str,
        record_id: str,
        intended: Mapping[str, Any],
        current: Mapping[str, Any],
        written: Mapping[str, Any],
        where: Where,
    ) -> Diff:
        """Intended against the CRM's values; values that are not crmsync's are held as
        conflicts. A payload carries the record's new signature."""
        differing = [
            (name, value, current.get(name))
            for name, value in intended.items()
            if not same(name, value, current.get(name))
        ]
        if not differing:  # the CRM holds it all: whose the values are does not matter
            return Diff({}, {}, [])
        own = self.record(obj, record_id, written, current)
        payload: dict[str, Any] = {}
        old: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        for name, value, crm_value in differing:
            decision = own.decide_differing(name, value, crm_value)
            if decision is Decision.CONFLICT:
                conflicts.append(
                    Conflict(
                        object=obj, record_id=record_id, field=name, crm_value=crm_value,
                        last_written=written.get(name), intended=value, owner_id=where.owner_id,
                        account_id=where.account_id, label=where.label,
                        after_write=own.wrote_before(name),
                    )  # fmt: skip
                )
            elif decision is Decision.WRITE:
                payload[name] = value
                old[name] = crm_value
        if payload:
            signature = own.after(obj, current, payload)
            if signature != current.get(SIGNATURE):
                payload[SIGNATURE] = signature
        return Diff(payload, old, conflicts)


def account_values(coverage: Coverage, summary: str | None) -> dict[str, Any]:
    """What crmsync wants in an account's owned fields, from the rules' Coverage."""
    return {
        "stakeholders": coverage.stakeholders,
        "engaged": coverage.engaged,
        "roles_covered": _within("; ".join(coverage.roles_covered), ROLES_MAX),
        "coverage_score": coverage.score,
        "coverage_status": _value(coverage.status),
        "hygiene_summary": _within((summary or coverage.summary or "").strip() or None,
                                   SUMMARY_MAX),  # fmt: skip
    }


def account_write(
    crm: str, row: AccountRow, intended: Mapping[str, Any], written: Mapping[str, Any],
    guard: Guard, where: Where,
) -> tuple[Write | None, list[Conflict]]:  # fmt: skip
    """The account's field write (None if the CRM holds it all) and its conflicts."""
    obj = ObjectType.ACCOUNT.value
    d = guard.diff(obj, row.id, intended, row.owned, written, where)
    if not d.payload:
        return None, d.conflicts
    kind = WriteKind.UPDATE_ACCOUNT
    return _write(kind, f"{kind.value}:{crm}:{row.id}", row.id, d, where), d.conflicts


def contact_write(
    crm: str, contact: ContactRow | Contact, status: HygieneStatus | str, reason: str | None,
    written: Mapping[str, Mapping[str, Any]], guard: Guard, where: Where,
) -> tuple[Write | None, list[Conflict]]:  # fmt: skip
    """A contact's status and reason (`written`: crmsync's last writes by contact id; `where`:
    the account's). Never flagged (blank) or already ok: nothing to say.
    Status and reason move together: a conflict on either holds both."""
    ok = _OK
    current = contact.owned
    intended: dict[str, Any]
    if status != ok:  # a StrEnum or its text
        intended = {"status": _value(status), "reason": _within(_one_line(reason), REASON_MAX)}
    elif norm("status", current.get("status")) not in (None, ok):
        intended = {"status": ok, "reason": None}
    elif norm("reason", current.get("reason")) is not None:
        intended = {"reason": None}
    else:
        return None, []
    if all(same(name, value, current.get(name)) for name, value in intended.items()):
        return None, []  # the CRM holds it: no label, last writes or diff to make
    at = Where(where.account_id, where.owner_id, contact.name)
    mine = written.get(contact.id, {})
    d = guard.diff(ObjectType.CONTACT.value, contact.id, intended, current, mine, at)
    if d.conflicts:
        return None, d.conflicts
    if not d.payload:
        return None, []
    key = f"update_contact:{crm}:{contact.id}"
    return _write(WriteKind.UPDATE_CONTACT, key, contact.id, d, at), []


_OK = HygieneStatus.OK.value


def _write(kind: WriteKind, key: str, target: str, d: Diff, where: Where) -> Write:
    return Write(kind, key, target, d.payload, d.old, where.owner_id, where.account_id, where.label)


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def _one_line(text: str | None) -> str | None:
    line = " ".join((text or "").split())
    return line or None


def _within(text: str | None, limit: int) -> str | None:
    """A text field bounded to what every CRM's field holds (sync/tasks.py limits)."""
    return fit(text, limit) if text else text
