"""A fake CRM behind a fake connector, and helpers that pull it into a real mirror.

`FakeCrm` holds accounts and contacts (owned values only) and crmsync tasks;
`FakeConnector.write` applies outbox items to it, can reject rows (by target
id or task key) permanently or for a number of attempts, and counts one API
call per batch (per write kind, like the real connectors' collections calls).
`pull(db, crm)` copies the fake CRM's current state into the mirror through
state.mirror.apply_page, exactly as sync/pull.py would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.connectors.base import ApiCalls
from crmsync.connectors.errors import CrmUnavailable
from crmsync.state import mirror
from crmsync.state.db import transaction
from crmsync.state.model import (
    Coverage,
    CoverageStatus,
    CrmRecord,
    Flag,
    HygieneStatus,
    ObjectType,
    OutboxItem,
    Page,
    Severity,
    Tier,
    WriteKind,
    WriteResult,
)

CRM = "salesforce"
AS_OF = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Reject:
    code: str
    detail: str
    retryable: bool = False
    times: int | None = None  # None: always


@dataclass
class FakeCrm:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {values.., owned}
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> fields
    opportunities: list[CrmRecord] = field(default_factory=list)  # pulled as they are
    contact_roles: list[CrmRecord] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    inactive: set[str] = field(default_factory=set)
    clock: itertools.count = field(default_factory=lambda: itertools.count(1))

    def stamp(self) -> datetime:
        return datetime(2026, 11, 23, 10, 0, tzinfo=UTC).replace(microsecond=next(self.clock))

    def add_account(
        self, aid: str, name: str, owner: str | None = "005A", tier: str = "Growth", **values: Any
    ) -> None:
        self.accounts[aid] = {
            "values": {"name": name, "owner_id": owner, "tier": tier, **values},
            "owned": {},
            "modified_at": self.stamp(),
        }

    def add_contact(
        self, cid: str, aid: str, first: str, last: str, title: str | None = None, **values: Any
    ) -> None:
        self.contacts[cid] = {
            "values": {
                "account_id": aid,
                "first_name": first,
                "last_name": last,
                "title": title,
                **values,
            },
            "owned": {},
            "modified_at": self.stamp(),
        }

    def edit(self, obj: str, rid: str, **owned: Any) -> None:
        """A person (or a workflow) edits owned fields in the CRM."""
        table = self.accounts if obj == "accounts" else self.contacts
        table[rid]["owned"].update(owned)
        table[rid]["modified_at"] = self.stamp()

    def wrote(self, obj: str, rid: str, **owned: Any) -> None:
        """Values crmsync wrote in an earlier run: set with their signature, as a write does."""
        from crmsync.sync.ownership import SIGNATURE, Record

        table = self.accounts if obj == "accounts" else self.contacts
        current = table[rid]["owned"]
        owned[SIGNATURE] = Record.of(current).after(obj, current, owned)
        self.edit(obj, rid, **owned)

    def open_tasks(self, key: str | None = None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.tasks.values()
            if t["status"] != "completed" and (key is None or t["key"] == key)
        ]


class FakeConnector:
    crm = CRM
    index_lag = timedelta(0)  # its look-ups read the records: nothing lags

    def __init__(self, fake: FakeCrm) -> None:
        self.fake = fake
        self.calls = ApiCalls()
        self.batches: list[list[OutboxItem]] = []
        self.rejects: dict[str, Reject] = {}
        self.lookups: list[list[str]] = []
        self.fail_after_apply = False  # W4: the server applied the batch, the answer was lost
        self.unavailable = False
        self.on_write: list[Any] = []  # hooks(item) run after an item is applied (workflows)
        self._ids = itertools.count(1)

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        if self.unavailable:
            self.calls.add("write")
            raise CrmUnavailable("503 from the fake", crm=CRM, status=503)
        self.batches.append(list(batch))
        self.calls.add("write", len({i.kind for i in batch}))
        results = [self._one(item) for item in batch]
        if self.fail_after_apply:
            raise CrmUnavailable("read timeout after the server applied the batch", crm=CRM)
        return results

    def _one(self, item: OutboxItem) -> WriteResult:
        reject = self.rejects.get(item.target_id or "") or self.rejects.get(
            str(item.payload.get("key") or "")
        )
        if reject is not None and (reject.times is None or reject.times > 0):
            if reject.times is not None:
                reject.times -= 1
            return WriteResult(
                item.id,
                ok=False,
                code=reject.code,
                detail=reject.detail,
                retryable=reject.retryable,
            )
        payload = {k: v for k, v in item.payload.items() if k != "key"}
        if item.kind in (WriteKind.UPDATE_ACCOUNT, WriteKind.UPDATE_CONTACT):
            table = (
                self.fake.accounts if item.kind is WriteKind.UPDATE_ACCOUNT else self.fake.contacts
            )
            record = table[item.target_id or ""]
            record["owned"].update(payload)
            record["modified_at"] = self.fake.stamp()
            for hook in self.on_write:
                hook(item)
            return WriteResult(item.id, ok=True, crm_id=item.target_id)
        key = str(item.payload["key"])
        existing = next((tid for tid, t in self.fake.tasks.items() if t["key"] == key), None)
        if item.kind is WriteKind.CREATE_TASK and existing is None:
            tid = f"00T{next(self._ids):015d}"
            self.fake.tasks[tid] = {
                "key": key,
                "status": "open",
                **payload,
                "modified_at": self.fake.stamp(),
            }
            return WriteResult(item.id, ok=True, crm_id=tid)
        tid = existing or item.target_id
        task = self.fake.tasks[tid or ""]
        task.update(payload)
        if item.kind is WriteKind.COMPLETE_TASK:
            task["status"] = "completed"
        task["modified_at"] = self.fake.stamp()
        return WriteResult(item.id, ok=True, crm_id=tid)

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        self.lookups.append(keys)
        self.calls.add("query")
        return {t["key"]: tid for tid, t in self.fake.tasks.items() if t["key"] in keys}

    @property
    def write_calls(self) -> int:
        return self.calls.by_operation["write"]


def pull(db: Any, fake: FakeCrm) -> None:
    """Mirror the fake CRM (a full pull, as sync/pull.py would apply it)."""
    seen = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    owners = [
        CrmRecord(
            ObjectType.OWNER, oid, None, values={"name": name, "active": oid not in fake.inactive}
        )
        for oid, name in fake.owners.items()
    ]
    accounts = [
        CrmRecord(
            ObjectType.ACCOUNT,
            aid,
            a["modified_at"],
            values=dict(a["values"]),
            owned=dict(a["owned"]),
        )
        for aid, a in fake.accounts.items()
    ]
    contacts = [
        CrmRecord(
            ObjectType.CONTACT,
            cid,
            c["modified_at"],
            values=dict(c["values"]),
            owned=dict(c["owned"]),
        )
        for cid, c in fake.contacts.items()
    ]
    tasks = [
        CrmRecord(
            ObjectType.TASK,
            tid,
            t["modified_at"],
            values={
                "key": t["key"],
                "account_id": t.get("account_id"),
                "contact_id": t.get("contact_id"),
                "owner_id": t.get("owner_id"),
                "subject": t.get("subject"),
                "body": t.get("body"),
                "status": "Completed" if t["status"] == "completed" else "Not Started",
                "priority": str(t.get("priority") or "").capitalize() or None,
                "due_date": t.get("due_date"),
                "is_closed": t["status"] == "completed",
            },
            owned={"key": t["key"], "signature": t.get("signature")},
        )
        for tid, t in fake.tasks.items()
    ]
    with transaction(db):
        for obj, records in (
            (ObjectType.OWNER, owners),
            (ObjectType.ACCOUNT, accounts),
            (ObjectType.CONTACT, contacts),
            (ObjectType.OPPORTUNITY, fake.opportunities),
            (ObjectType.CONTACT_ROLE, fake.contact_roles),
            (ObjectType.TASK, tasks),
        ):
            if records:
                mirror.apply_page(db, CRM, Page(obj, records, None), generation=0, seen_at=seen)


# ---------------------------------------------------------------- rules results


@dataclass(frozen=True)
class Result:
    """What rules.evaluate_account returns, as the planner reads it."""

    flags: tuple[Flag, ...] = ()
    coverage: Coverage | None = None
    contact_status: Mapping[str, tuple[HygieneStatus, str]] = field(default_factory=dict)
    tier: Tier = Tier.GROWTH
    hygiene_summary: str | None = None  # rules write one; None: the coverage's summary


def coverage(
    aid: str,
    *,
    stakeholders: int = 4,
    engaged: int = 2,
    score: int = 55,
    status: CoverageStatus = CoverageStatus.AMBER,
    roles: tuple[str, ...] = ("Champion",),
) -> Coverage:
    return Coverage(
        crm=CRM,
        account_id=aid,
        stakeholders=stakeholders,
        engaged=engaged,
        roles_covered=roles,
        score=score,
        status=status,
        summary=f"{stakeholders} active contacts, {engaged} engaged.",
    )


def flag(
    rule: str,
    aid: str,
    subject: str,
    text: str = "Something needs a look.",
    severity: Severity = Severity.MEDIUM,
    **evidence: Any,
) -> Flag:
    contact = None if subject == aid else subject
    return Flag(
        rule=rule,
        crm=CRM,
        account_id=aid,
        subject_id=subject,
        contact_id=contact,
        severity=severity,
        explanation=text,
        evidence=evidence,
    )


def stale(aid: str, cid: str) -> Flag:
    return flag("stale_contact", aid, cid, "No logged activity since 3 March 2026.", Severity.LOW)


def bouncing(aid: str, cid: str) -> Flag:
    return flag("bouncing_contact", aid, cid, "Email bounced on 1 November 2026.")


def single_threaded(aid: str) -> Flag:
    return flag(
        "single_threaded_account",
        aid,
        aid,
        "Only one engaged contact; no Economic Buyer.",
        Severity.HIGH,
    )


def departed(aid: str, cid: str, moved_to: str | None = None) -> Flag:
    return flag(
        "departed_champion",
        aid,
        cid,
        "The champion shows signs of having left.",
        Severity.HIGH,
        other_account_name=moved_to,
    )
