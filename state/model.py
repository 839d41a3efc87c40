"""The canonical model: the vocabulary every layer shares.

Connectors produce `CrmRecord`s grouped in `Page`s; `state/` stores them as rows
keyed by (crm, id); `state/views.py` reads them back as the frozen dataclasses
below (`Account`, `Contact`, ... grouped into an `AccountView`) for the rules;
rules yield `Flag`s; the planner turns flags into `OutboxItem`s that a
connector writes and answers with `WriteResult`s.

Datetimes are aware UTC, dates are `datetime.date`. `raw` keeps the CRM's own
JSON (custom fields included); rules never read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Crm(StrEnum):
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"


class ObjectType(StrEnum):
    """A canonical object; its value is the mirror table's name."""

    OWNER = "owners"
    ACCOUNT = "accounts"
    CONTACT = "contacts"
    OPPORTUNITY = "opportunities"
    CONTACT_ROLE = "contact_roles"
    TASK = "tasks"  # only the tasks crmsync created (they carry its key)


# Pull order: parents before children, so a page never references a row that a
# later page of the same run would create.
PULL_ORDER: tuple[ObjectType, ...] = (
    ObjectType.OWNER,
    ObjectType.ACCOUNT,
    ObjectType.CONTACT,
    ObjectType.OPPORTUNITY,
    ObjectType.CONTACT_ROLE,
    ObjectType.TASK,
)


class Tier(StrEnum):
    STRATEGIC = "strategic"
    GROWTH = "growth"
    MAINTENANCE = "maintenance"
    NONE = "none"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class FlagStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"


class HygieneStatus(StrEnum):
    """Contact status written back; later members win (departed is the most severe)."""

    OK = "ok"
    STALE = "stale"
    BOUNCING = "bouncing"
    DEPARTED = "departed"


class CoverageStatus(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


# ---------------------------------------------------------------- connector output

Cursor = Mapping[str, Any]
"""Connector-defined, JSON-serialisable position in a pull (stored by state/cursors.py)."""


@dataclass(frozen=True)
class CrmRecord:
    """One CRM record mapped to canonical column names.

    `values` holds only canonical columns of `object`'s table (see COLUMNS);
    `owned` the current CRM values of the fields crmsync writes back (keys from
    OWNED_FIELDS), so the planner can diff against what the CRM holds.
    `merged_into` is set on a merge loser (Salesforce MasterRecordId, HubSpot
    hs_merged_object_ids on the survivor): its history moves to the survivor.
    """

    object: ObjectType
    id: str
    modified_at: datetime | None
    deleted: bool = False
    values: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    owned: Mapping[str, Any] = field(default_factory=dict)
    merged_into: str | None = None


@dataclass(frozen=True)
class Page:
    """A batch of records and the cursor that is true once they are committed.

    sync/pull.py commits the records and `cursor` in one transaction. `done`
    marks the last page of a pull of `object`. Full pulls detect vanished
    records by the run's seen-marks (state/mirror.py).
    """

    object: ObjectType
    records: Sequence[CrmRecord]
    cursor: Cursor | None
    done: bool = False


# Canonical columns per table, beyond crm, id, raw, owned, modified_at, deleted_at.
COLUMNS: Mapping[ObjectType, tuple[str, ...]] = {
    ObjectType.OWNER: ("name", "email", "active"),
    ObjectType.ACCOUNT: (
        "name",
        "domain",
        "owner_id",
        "tier",  # the raw value of the configured tier field; rules/tiers.py maps it
        "renewal_date",
        "exemption",  # the configured suppression field's value (rules read it)
    ),
    ObjectType.CONTACT: (
        "account_id",
        "first_name",
        "last_name",
        "email",
        "title",
        "owner_id",
        "last_activity_at",
        "created_at",
        "email_bounced",
        "bounce_reason",
        "bounced_at",
        "opted_out",
        "left_company",  # the configured "no longer at company" field, as bool
        "exemption",
    ),
    ObjectType.OPPORTUNITY: (
        "account_id",
        "name",
        "stage",
        "is_closed",
        "is_won",
        "close_date",
        "amount",
    ),
    ObjectType.CONTACT_ROLE: ("opportunity_id", "contact_id", "role", "is_primary"),
    ObjectType.TASK: (
        "key",
        "account_id",
        "contact_id",
        "owner_id",
        "subject",
        "body",
        "status",
        "priority",
        "due_date",
        "is_closed",
    ),
}

SIGNATURE = "signature"  # the canonical owned key of the signature field (sync/ownership.py)

# Owned (written-back) fields, by canonical key. Connectors map these to CRM names.
# "signature" says which of the values crmsync wrote (sync/ownership.py, docs/ownership.md).
OWNED_FIELDS: Mapping[ObjectType, tuple[str, ...]] = {
    ObjectType.ACCOUNT: (
        "stakeholders",
        "engaged",
        "roles_covered",
        "coverage_score",
        "coverage_status",
        "hygiene_summary",
        "signature",
    ),
    ObjectType.CONTACT: ("status", "reason", "signature"),
    ObjectType.TASK: ("key", "signature"),
}


# ---------------------------------------------------------------- mirror rows, for rules


@dataclass(frozen=True)
class Owner:
    crm: str
    id: str
    name: str | None
    email: str | None
    active: bool = True


@dataclass(frozen=True)
class Account:
    crm: str
    id: str
    name: str | None
    domain: str | None = None
    owner_id: str | None = None
    tier: str | None = None
    renewal_date: date | None = None
    exemption: str | None = None
    modified_at: datetime | None = None
    deleted_at: datetime | None = None
    # crmsync's own fields as the CRM holds them (the write-back compares with them);
    # not a rule input, so not part of equality.
    owned: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Contact:
    crm: str
    id: str
    account_id: str | None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    title: str | None = None
    owner_id: str | None = None
    last_activity_at: datetime | None = None
    created_at: datetime | None = None
    email_bounced: bool = False
    bounce_reason: str | None = None
    bounced_at: datetime | None = None
    opted_out: bool = False
    left_company: bool = False
    exemption: str | None = None
    modified_at: datetime | None = None
    deleted_at: datetime | None = None
    # crmsync's own fields as the CRM holds them (as on Account).
    owned: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.display_name()

    def display_name(self, fallback: str | None = None) -> str:
        """The contact's name as people read it (`person_name`); without first or last
        name, `fallback` (default `contact <id>`)."""
        return person_name(self.first_name, self.last_name, self.id, fallback)


def person_name(
    first: str | None, last: str | None, contact_id: str, fallback: str | None = None
) -> str:
    """A contact's name as people read it, the one place it is made: first and last name
    (a blank part left out); without either, `fallback` (default `contact <id>`)."""
    full = " ".join(p for p in (first, last) if p and p.strip())
    return full or (f"contact {contact_id}" if fallback is None else fallback)


@dataclass(frozen=True)
class Opportunity:
    crm: str
    id: str
    account_id: str | None
    name: str | None = None
    stage: str | None = None
    is_closed: bool = False
    is_won: bool = False
    close_date: date | None = None
    amount: float | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class ContactRole:
    """A buying role. `opportunity_id` is None for a contact-level role (HubSpot hs_buying_role)."""

    crm: str
    id: str
    opportunity_id: str | None
    contact_id: str
    role: str | None
    is_primary: bool = False
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class ContactChange:
    """A change between syncs of a contact's account_id, email or title."""

    crm: str
    contact_id: str
    field: str
    old: str | None
    new: str | None
    seen_at: datetime


@dataclass(frozen=True)
class Elsewhere:
    """Where a contact of this account now appears: another account in the mirror."""

    contact_id: str  # the contact of this account
    other_contact_id: str
    other_account_id: str
    other_account_name: str | None
    how: str  # "moved" (same record, new account) or "same_name" (new record, new domain)


@dataclass(frozen=True)
class OutsidePerson:
    """A person an outside people-data provider suggested for a role at an account: not a
    CRM record. Cached in the mirror (`enrichment_people`, sync/enrich.py); rules list
    them apart, marked as outside data (rules/successors.py)."""

    role: str  # the role asked for, e.g. "Champion"
    name: str
    title: str | None = None
    email: str | None = None
    source: str = ""  # the provider's name, e.g. "csv"


@dataclass(frozen=True)
class AccountView:
    """One account with everything the rules read about it; built by state/views.py."""

    account: Account
    contacts: tuple[Contact, ...] = ()  # not deleted
    opportunities: tuple[Opportunity, ...] = ()  # not deleted
    roles: tuple[ContactRole, ...] = ()  # not deleted, on this account's contacts
    history: tuple[ContactChange, ...] = ()  # of this account's contacts (and contacts that left it)
    elsewhere: tuple[Elsewhere, ...] = ()
    owner: Owner | None = None
    # Current rows of contacts whose account_id changed away from this account
    # (their history rows are in `history`), so a departed champion can be named
    # on the account that lost them. Optional: rules fall back to the history.
    former_contacts: tuple[Contact, ...] = ()
    # People an outside data provider suggested for this account (off by default).
    outside_people: tuple[OutsidePerson, ...] = ()

    @property
    def crm(self) -> str:
        return self.account.crm

    @property
    def id(self) -> str:
        return self.account.id


# ---------------------------------------------------------------- flags


@dataclass(frozen=True)
class TaskKey:
    """A flag's identity as text, `<kind>:<crm>:<account id>:<subject id>`: the flags
    table's key and the key crmsync stamps on the task for it. `kind` is the rule's
    NAME, or `contact_hygiene` for an account's grouped stale/bouncing task (whose
    subject is the account). Formatted and parsed here only."""

    kind: str
    crm: str
    account_id: str
    subject_id: str

    def __str__(self) -> str:
        return self.format(self.kind, self.crm, self.account_id, self.subject_id)

    @staticmethod
    def format(kind: str, crm: str, account_id: str, subject_id: str) -> str:
        """`str(TaskKey(...))` without making one (every flag's key, many times a run)."""
        return f"{kind}:{crm}:{account_id}:{subject_id}"

    @classmethod
    def parse(cls, text: str) -> TaskKey | None:
        """The key's parts; None for text that is not a key (fewer than four parts)."""
        parts = text.split(":", 3)
        return cls(*parts) if len(parts) == 4 else None


@dataclass(frozen=True)
class Flag:
    """A finding. Identity: (rule, crm, account_id, subject_id); subject_id is the
    contact id for contact-level flags and the account id for account-level ones."""

    rule: str
    crm: str
    account_id: str
    subject_id: str
    severity: Severity
    explanation: str
    contact_id: str | None = None
    confidence: Confidence = Confidence.HIGH
    evidence: Mapping[str, Any] = field(default_factory=dict)
    suppressed: bool = False

    @property
    def key(self) -> str:
        return TaskKey.format(self.rule, self.crm, self.account_id, self.subject_id)


@dataclass(frozen=True)
class Coverage:
    crm: str
    account_id: str
    stakeholders: int
    engaged: int
    roles_covered: tuple[str, ...]
    score: int
    status: CoverageStatus
    summary: str


# ---------------------------------------------------------------- write-back


class WriteKind(StrEnum):
    UPDATE_ACCOUNT = "update_account"
    UPDATE_CONTACT = "update_contact"
    CREATE_TASK = "create_task"
    UPDATE_TASK = "update_task"
    COMPLETE_TASK = "complete_task"


@dataclass(frozen=True)
class Write:
    """One write crmsync intends: what the planner decides and the outbox queues.

    `key` is the outbox's idempotency key (stable across runs); `payload` uses
    canonical keys (OWNED_FIELDS / task fields). The rest says whose it is and
    what the CRM held before, for the preview only: it is not queued.
    """

    kind: WriteKind
    key: str
    target_id: str | None  # CRM id to update; None for creates
    payload: Mapping[str, Any]
    old: Mapping[str, Any] = field(default_factory=dict, compare=False)  # what the CRM holds now
    owner_id: str | None = field(default=None, compare=False)  # whose queue / whose account
    account_id: str = field(default="", compare=False)
    label: str = field(default="", compare=False)  # account name, contact name or task subject


@dataclass(frozen=True)
class OutboxItem:
    """An outbox row as the drain claims it and a connector writes it: the planner's
    `write` (its preview context left behind), with the row's id and attempts so far.
    `payload` uses canonical keys; the connector maps them to CRM field names."""

    id: int
    crm: str
    write: Write
    attempts: int = 0

    @property
    def kind(self) -> WriteKind:
        return self.write.kind

    @property
    def key(self) -> str:
        """The idempotency key, stable across runs."""
        return self.write.key

    @property
    def target_id(self) -> str | None:
        """CRM id of the record to update (None for creates)."""
        return self.write.target_id

    @property
    def payload(self) -> Mapping[str, Any]:
        return self.write.payload


@dataclass(frozen=True)
class WriteResult:
    item_id: int
    ok: bool
    crm_id: str | None = None
    code: str | None = None
    detail: str | None = None
    retryable: bool = False
    sent: bool = True  # False: refused before it reached the CRM (not counted as an attempt)


class ChangeKind(StrEnum):
    """Who set the value a conflict holds, as far as the CRM can tell."""

    PERSON = "person"
    WORKFLOW = "workflow"
    INTEGRATION = "integration"  # another integration (not crmsync)
    IMPORT = "import"
    CRMSYNC = "crmsync"  # crmsync itself, before it signed its writes
    PERSON_OR_WORKFLOW = "person or workflow"  # Salesforce: no field history to ask
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FieldChange:
    """The latest change of one field, from the CRM's property history (HubSpot)."""

    kind: ChangeKind
    at: datetime | None = None
    user_id: str | None = None  # the CRM user who made it (a person's change)
    source: str | None = None  # the CRM's own word for the source, e.g. "CRM_UI"


@dataclass(frozen=True)
class FieldCheck:
    object: str
    field: str
    status: str  # "exists", "created", "missing" (dry run), "failed"
    detail: str | None = None
