"""The generator's CRM-neutral records: what `World` draws and the renderers reshape.

Numbers, not CRM ids: an account is its 0-based index `i` (numbered i + 1 in
ids), people, deals, contact roles and tasks are 1-based counters `n` across
the org; times are epoch milliseconds, dates epoch days.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Owner:
    k: int  # 0-based
    first: str
    last: str
    email: str
    active: bool
    created_ms: int


@dataclass(slots=True)
class Person:
    n: int  # 1-based contact number, across the org
    account: int
    first: str | None
    last: str
    title: str
    dept: str
    email: str | None
    owner: int
    created_days: int
    created_ms: int
    act_days: int | None
    act_ms: int | None
    modified_ms: int = 0
    defect: str = "clean"  # a FILLER_BLOCK key, or the planted departure kind
    bounce: str | None = None  # "hard" | "soft" | "refused" (about the sender: HubSpot only)
    bounce_reason: str | None = None
    bounce_enum: str | None = None  # HubSpot hs_email_hard_bounce_reason_enum, when it has one
    bounce_ms: int | None = None
    opted_out: bool = False
    buying_role: str | None = None  # HubSpot hs_buying_role value
    lead_status: str = "OPEN"
    text: str | None = None  # a huge text field (bad_records)
    bad_date: str | None = None  # "string" (unparseable) or "extreme" (year 4000) (bad_records)


@dataclass(slots=True)
class Role:
    person: Person
    role: str | None
    primary: bool
    n: int = 0  # 1-based contact-role number


@dataclass(slots=True)
class Opportunity:
    n: int
    account: int
    name: str
    stage: tuple[str, str]  # (Salesforce StageName, HubSpot dealstage)
    is_closed: bool
    is_won: bool
    close_day: int  # epoch day
    amount: int
    owner: int
    created_ms: int
    modified_ms: int
    roles: list[Role] = field(default_factory=list)


@dataclass(slots=True)
class Task:
    n: int
    account: int
    person: Person
    owner: int
    at_ms: int


@dataclass(slots=True)
class Account:
    i: int  # 0-based account index; numbers are i + 1
    name: str
    domain: str
    website: str
    owner: int
    tier: str
    situation: str
    renewal_day: int | None
    industry: int
    employees: int
    created_ms: int
    modified_ms: int
    people: list[Person] = field(default_factory=list)
    opps: list[Opportunity] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    bad_tier: str | None = None  # unknown picklist value (bad_records)
