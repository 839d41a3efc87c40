"""Deterministic generator of a realistic CRM org, for both sandbox CRMs.

`generate(seed, accounts)` returns a dataset dict in the shared dataset format
(see the team brief): {"salesforce": {object: [records]}, "hubspot": {type:
[records], "owners": [...]}, "manifest": {...}}. Both CRMs hold the same
people and situations, each with its own ids and field shapes; the emulators
load it and ignore "manifest".

The manifest is computed with docs/design.md's rule definitions and defaults (see
`cases.py`; the planting is in `world.py`). Top level: seed, accounts,
contacts_per_account, as_of, bad_records, proportions, rule_defaults. Per CRM
(manifest["salesforce"], manifest["hubspot"]), lists of that CRM's ids:

  contacts  stale_contact, bouncing_contact (= hard_bounced_contact +
            malformed_email + missing_email), departed_champion,
            soft_bounced_contact (not bouncing), role_address, personal_email,
            opted_out, unicode_name, lapsed_role_contact (a bouncing ex-champion
            whose role is only on a lost or >365-day-old won deal: NOT departed);
            a hard bounce HubSpot records as SPAM, POLICY or CONTENT (a refusal
            about the sender or the message) is in no list: a note, and the
            Salesforce rendering shows no bounce; MAILBOX_FULL is a soft bounce
  accounts  single_threaded_account (= single_threaded_few_engaged |
            single_threaded_missing_role), renewal_soon_account,
            inactive_owner_account, unicode_name_account,
            tier{strategic,growth,maintenance,none}, account_situation{...}
  other     departed_champion_by_signal{bouncing,title,email_domain},
            moved_champion_pairs [{contact_id, account_id, new_contact_id,
            new_account_id}], inactive_owner [owner id], counts {object: n},
            bad_records [{object, id, kind, field}]

With `bad_records=True` one extra account holds malformed records (a bad date
string, in a custom text field on Salesforce, whose date fields cannot hold
one, and in notes_last_contacted on HubSpot; a year-4000 activity date;
unknown picklist values; a 100 KB text field), listed under "bad_records" and
left out of every other case list.

Deterministic: the same arguments give byte-identical
`json.dumps(..., sort_keys=True)`. No clock, no global random, no network.
For very large orgs `iter_records` streams (crm, object, record) triples
instead of building lists.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from .cases import (
    CHAMPION_ROLES,
    ENGAGED_DAYS,
    RENEWAL_SOON_DAYS,
    REQUIRED_ROLES,
    ROLE_WON_DAYS,
    TIER_WINDOW_DAYS,
)
from .clock import epoch_ms
from .hubspot import HubSpotRenderer
from .salesforce import SalesforceRenderer
from .world import FILLER_BLOCK, INACTIVE_OWNER_BLOCK, SITUATION_BLOCK, TIER_BLOCK, World

__all__ = [
    "CRMS",
    "DEFAULT_AS_OF",
    "DEFAULT_CONTACTS_PER_ACCOUNT",
    "OBJECTS",
    "generate",
    "iter_crm",
    "iter_records",
]

CRMS = ("salesforce", "hubspot")
DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
DEFAULT_CONTACTS_PER_ACCOUNT = 10.0
OBJECTS = {
    "salesforce": ("User", "Account", "Contact", "Opportunity", "OpportunityContactRole", "Task"),
    "hubspot": ("owners", "companies", "contacts", "deals", "tasks"),
}
_RENDERERS: dict[str, Any] = {"salesforce": SalesforceRenderer, "hubspot": HubSpotRenderer}
# neutral bad-record field -> the CRM's field
_BAD_FIELD = {
    "salesforce": {
        "tier": "Tier__c",
        "last_activity": "LastActivityDate",
        "bad_date": "Last_Contacted__c",
        "description": "Description",
        "role": "Role",
    },
    "hubspot": {
        "tier": "hs_ideal_customer_profile",
        "last_activity": "notes_last_contacted",
        "bad_date": "notes_last_contacted",
        "description": "message",
        "role": "associations.contacts.label",
    },
}


def generate(
    seed: int = 1,
    accounts: int = 50,
    *,
    contacts_per_account: float | None = None,
    as_of: datetime | None = None,
    crms: Iterable[str] = CRMS,
    bad_records: bool = False,
) -> dict[str, Any]:
    """The whole dataset dict, one key per CRM in `crms`, plus "manifest"."""
    crms = _check_crms(crms)
    data: dict[str, Any] = {crm: {obj: [] for obj in OBJECTS[crm]} for crm in crms}
    manifest: dict[str, Any] = {}
    lists = {(crm, obj): data[crm][obj] for crm in crms for obj in OBJECTS[crm]}
    # Millions of new dicts make the cyclic GC rescan the growing lists again and
    # again (~40% of the time at 300k contacts); the records hold no cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _fill(lists, manifest, seed, accounts, contacts_per_account, as_of, crms, bad_records)
    finally:
        if gc_was_enabled:
            gc.enable()
    data["manifest"] = manifest
    return data


def _fill(
    lists: dict[tuple[str, str], list[dict[str, Any]]],
    manifest: dict[str, Any],
    seed: int,
    accounts: int,
    contacts_per_account: float | None,
    as_of: datetime | None,
    crms: tuple[str, ...],
    bad_records: bool,
) -> None:
    for crm, obj, record in iter_records(
        seed,
        accounts,
        contacts_per_account=contacts_per_account,
        as_of=as_of,
        crms=crms,
        bad_records=bad_records,
        manifest=manifest,
    ):
        lists[(crm, obj)].append(record)


def iter_records(
    seed: int = 1,
    accounts: int = 50,
    *,
    contacts_per_account: float | None = None,
    as_of: datetime | None = None,
    crms: Iterable[str] = CRMS,
    bad_records: bool = False,
    manifest: dict[str, Any] | None = None,
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Stream (crm, object name, record), owners first, then account by account.

    Records of one account come together (account, contacts, deals, roles,
    tasks); a contact may reference an account streamed earlier or later. When
    the stream is exhausted, `manifest` (if given) is filled in place.
    """
    crms = _check_crms(crms)
    as_of = as_of or DEFAULT_AS_OF
    cpa = (
        DEFAULT_CONTACTS_PER_ACCOUNT
        if contacts_per_account is None
        else float(contacts_per_account)
    )
    world = World(seed, accounts, cpa, epoch_ms(as_of), bad_records)
    renderers: list[Any] = [_RENDERERS[crm](world) for crm in crms]
    counts: dict[str, Counter[str]] = {crm: Counter() for crm in crms}
    for r in renderers:
        n = counts[r.crm]
        for obj, rec in r.owners():
            n[obj] += 1
            yield r.crm, obj, rec
    for acc in world.iter_accounts():
        for r in renderers:
            n = counts[r.crm]
            for obj, rec in r.account(acc):
                n[obj] += 1
                yield r.crm, obj, rec
    if manifest is not None:
        manifest.update(_manifest(world, renderers, counts, seed, cpa, as_of, bad_records))


def iter_crm(
    crm: str, seed: int = 1, accounts: int = 50, **kwargs: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """One CRM's (object name, record) stream, e.g. for the Salesforce store's `load_stream`.

    Takes the keyword arguments of `iter_records` (not `crms`).
    """
    for _, obj, record in iter_records(seed, accounts, crms=(crm,), **kwargs):
        yield obj, record


def _check_crms(crms: Iterable[str]) -> tuple[str, ...]:
    out = tuple(crms)
    unknown = [c for c in out if c not in _RENDERERS]
    if unknown or not out:
        raise ValueError(f"crms must be a non-empty subset of {CRMS}, got {out!r}")
    return out


def _manifest(
    world: World,
    renderers: list[Any],
    counts: dict[str, Counter[str]],
    seed: int,
    cpa: float,
    as_of: datetime,
    bad_records: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "generator": "crmsync.sandbox.generate",
        "seed": seed,
        "accounts": world.accounts,
        "contacts_per_account": cpa,
        "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bad_records": bad_records,
        "proportions": {
            "account_situations_per_40_accounts": SITUATION_BLOCK,
            "tiers_per_20_accounts": TIER_BLOCK,
            "filler_contacts_per_200": FILLER_BLOCK,
            "owner_per_40_accounts": INACTIVE_OWNER_BLOCK,
            "owners": "max(3, round(accounts / 25)), the last one inactive",
        },
        "rule_defaults": {
            "tier_window_days": TIER_WINDOW_DAYS,
            "engaged_days": ENGAGED_DAYS,
            "renewal_soon_days": RENEWAL_SOON_DAYS,
            "role_won_days": ROLE_WON_DAYS,
            "champion_roles": sorted(CHAMPION_ROLES),
            "required_roles": list(REQUIRED_ROLES),
        },
    }
    for r in renderers:
        out[r.crm] = _crm_manifest(world, r, counts[r.crm])
    return out


def _crm_manifest(world: World, r: Any, counts: Counter[str]) -> dict[str, Any]:
    cases = world.cases

    def cid(n: int) -> str:
        return str(r.id("contact", n))

    def aid(i: int) -> str:
        return str(r.id("account", i + 1))

    m: dict[str, Any] = {"counts": {obj: counts.get(obj, 0) for obj in OBJECTS[r.crm]}}
    for key, ns in sorted(cases.contact.items()):
        m[key] = [cid(n) for n in ns]
    for key, ns in sorted(cases.account.items()):
        m[key] = [aid(i) for i in ns]
    for key in ("stale_contact", "bouncing_contact", "departed_champion", "role_address"):
        m.setdefault(key, [])
    for key in ("single_threaded_account", "renewal_soon_account"):
        m.setdefault(key, [])
    m["tier"] = {t: [aid(i) for i in cases.tiers.get(t, [])] for t in TIER_BLOCK}
    m["account_situation"] = {
        s: [aid(i) for i in cases.situations.get(s, [])] for s in SITUATION_BLOCK
    }
    m["departed_champion_by_signal"] = {
        s: [cid(n) for n in cases.departed_by_signal.get(s, [])]
        for s in ("bouncing", "title", "email_domain")
    }
    m["moved_champion_pairs"] = [
        {
            "contact_id": cid(old),
            "account_id": aid(a),
            "new_contact_id": cid(new),
            "new_account_id": aid(b),
        }
        for old, a, new, b in cases.moved_pairs
    ]
    m["lapsed_role_contact"] = [cid(n) for n in cases.lapsed_role]
    m["inactive_owner"] = [r.id("owner", o.k + 1) for o in world.owners if not o.active]
    m["bad_records"] = [_bad(r, b) for b in cases.bad]
    return m


def _bad(r: Any, b: dict[str, Any]) -> dict[str, Any]:
    field = _BAD_FIELD[r.crm][b["field"]]
    if b["object"] == "contact_role":
        if r.crm == "salesforce":
            return {
                "object": "OpportunityContactRole",
                "id": r.id("contact_role", b["n"]),
                "kind": b["kind"],
                "field": field,
            }
        return {
            "object": "deals",
            "id": r.id("opportunity", b["opportunity"]),
            "contact_id": r.id("contact", b["contact"]),
            "kind": b["kind"],
            "field": field,
        }
    from . import hubspot, salesforce

    names = salesforce.OBJECT if r.crm == "salesforce" else hubspot.OBJECT
    return {
        "object": names[b["object"]],
        "id": r.id(b["object"], b["n"]),
        "kind": b["kind"],
        "field": field,
    }
