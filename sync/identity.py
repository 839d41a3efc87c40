"""[identity]: one person across Salesforce and HubSpot, written in one CRM (docs/identity.md).

With `home` set, every pull of either CRM recomputes the links between the two
mirrors (state/identity.py `refresh`); the rules then see each linked contact
with the evidence of both CRMs (state/identity.py `with_linked_evidence`), and
`Router` keeps what is written for linked records in the home CRM:

- in the home CRM nothing changes: flags, tasks and status fields as always;
- in the other CRM a linked contact's flags are dropped (so no task names it),
  and so are the account-level flags of a linked account (one single-threaded
  task, not two); its status and reason fields are left as the CRM holds them
  (`other_crm = "nothing"`, the default) or kept up to date (`other_crm =
  "fields"`). An open task crmsync made there earlier for such a problem is
  completed by the usual lifecycle (the problem is no longer this CRM's).

Unlinked records behave as without [identity]; with `home` unset (the
default) nothing here runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from crmsync.rules import AccountResult, ContactStatus
from crmsync.state import identity as links
from crmsync.state.model import AccountView, HygieneStatus, ObjectType

log = logging.getLogger(__name__)

HOMES = ("salesforce", "hubspot")
OTHER_CRM = ("nothing", "fields")


@dataclass(frozen=True)
class IdentitySettings:
    """[identity]"""

    home: str = ""  # "" (off) | "salesforce" | "hubspot": where linked people's writes go
    other_crm: str = "nothing"  # what the other CRM gets for them: "nothing" | "fields"

    def validate(self) -> None:
        if self.home and self.home not in HOMES:
            raise ValueError(
                f'home = {self.home!r}: use "salesforce" or "hubspot" (or leave it out).'
            )
        if self.other_crm not in OTHER_CRM:
            raise ValueError(f'other_crm = {self.other_crm!r}: use "nothing" or "fields".')

    @property
    def on(self) -> bool:
        return bool(self.home)


def refresh(
    db: sqlite_utils.Database, settings: IdentitySettings, *, now: datetime, changed: bool = True
) -> links.RefreshSummary | None:
    """Recompute the links after a pull (commits); None when [identity] is off, or when
    the pull changed no account or contact (`changed`) and the links were computed before."""
    if not settings.on or (not changed and links.refreshed_at(db) is not None):
        return None
    summary = links.refresh(db, now=now)
    log.info("identity links recomputed", extra=summary.as_dict())
    ambiguous = sum(summary.ambiguous.values())
    if ambiguous and ambiguous != summary.ambiguous_before:  # once per change, not every run
        log.warning(
            "records matched more than one record in the other CRM; not linked "
            "(`crmsync links` lists them)",
            extra={"ambiguous": ambiguous},
        )
    return summary


def views_for_rules(
    db: sqlite_utils.Database,
    crm: str,
    views: Iterable[AccountView],
    settings: IdentitySettings | None,
) -> Iterable[AccountView]:
    """`views` with linked contacts' evidence from both CRMs (unchanged when off)."""
    if settings is None or not settings.on:
        return views
    return links.with_linked_evidence(db, crm, views)


class Router:
    """Keeps linked records' flags and fields in the home CRM (see the module's doc)."""

    def __init__(self, db: sqlite_utils.Database, crm: str, settings: IdentitySettings) -> None:
        self.crm = crm
        self.settings = settings
        away = settings.on and crm != settings.home
        self.contacts = links.linked_ids(db, crm, ObjectType.CONTACT) if away else set()
        self.accounts = links.linked_ids(db, crm, ObjectType.ACCOUNT) if away else set()
        self.active = away

    def route(self, result: AccountResult, view: AccountView) -> AccountResult:
        if not self.active:
            return result
        account_linked = view.id in self.accounts
        flags = tuple(
            f
            for f in result.flags
            if not (f.contact_id in self.contacts if f.contact_id else account_linked)
        )
        statuses = dict(result.contact_status)
        if self.settings.other_crm == "nothing":
            for c in view.contacts:
                if c.id in self.contacts and c.id in statuses:
                    statuses[c.id] = _as_held(c.owned)
        if len(flags) == len(result.flags) and statuses == result.contact_status:
            return result
        return dataclasses.replace(result, flags=flags, contact_status=statuses)


def _as_held(owned: object) -> ContactStatus:
    """The status the CRM holds, so the planner finds nothing to write."""
    held = owned if isinstance(owned, dict) else {}
    try:
        status = HygieneStatus(str(held.get("status") or "ok").strip().lower())
    except ValueError:
        status = HygieneStatus.OK
    return ContactStatus(status, str(held.get("reason") or ""))
