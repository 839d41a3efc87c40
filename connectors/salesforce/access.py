"""Field-level security for crmsync's fields: the two permission sets `crmsync setup` keeps.

A custom field created through the Tooling API is visible to nobody until
field-level security grants it (simple-salesforce#621, restforce#353,
ForceCLI/force#163; api-facts §13): the integration user could not write
crmsync's fields after `setup`, and account managers would never see the
coverage and hygiene fields that are the point of crmsync. Setup grants them
with ordinary sObjects over REST:

- `crmsync_integration`: edit access to every field crmsync writes (read to the
  exemption field it only reads), assigned to the integration user (the user
  the configured credentials log in as);
- `crmsync_read`: read access to the coverage fields on Account and the hygiene
  status and reason on Contact, and edit access to the exemption field (account
  managers set it), assigned to the active users `[salesforce] grant_read_to`
  names: an entry with an "@" is a username (Salesforce usernames are e-mail
  shaped), any other a profile name, whose active users all get it. With no
  setting, setup says to assign it by hand.

Each permission set is a `PermissionSet` {Name, Label}, its grants
`FieldPermissions` {ParentId, SobjectType, Field, PermissionsRead,
PermissionsEdit} and its users `PermissionSetAssignment` {AssigneeId,
PermissionSetId}. Task fields are granted as `Task.<field>` though they are
created on Activity (sfpowerkit#446/#517); crmsync writes no Events. A
required field cannot be granted ("bad value for restricted picklist",
Salesforce-Inspector-reloaded#1141), so crmsync never creates one; one an admin
made required is visible to everyone anyway and is left out.

Everything is read first (one query per object) and only what is missing is
written (collections, up to 200 records a call), so a second `setup` writes
nothing. A dry run reads and reports what it would do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.format import format_soql

from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.connectors.salesforce.client import SalesforceClient, Settings
from crmsync.connectors.salesforce.fields import chunked
from crmsync.state.model import FieldCheck

log = logging.getLogger(__name__)

INTEGRATION_SET = "crmsync_integration"
READ_SET = "crmsync_read"
LABELS = {INTEGRATION_SET: "crmsync integration", READ_SET: "crmsync read"}
DESCRIPTIONS = {
    INTEGRATION_SET: "Lets crmsync's integration user write crmsync's fields (crmsync setup).",
    READ_SET: "Lets account managers see crmsync's coverage and hygiene fields and set its "
    "exemption field (crmsync setup).",
}
# Owned keys account managers read (the coverage fields, the hygiene status and reason).
READ_KEYS = frozenset(
    {"stakeholders", "engaged", "roles_covered", "coverage_score", "coverage_status",
     "hygiene_summary", "status", "reason"}
)  # fmt: skip
STOPS = (CrmUnavailable, AuthFailed, QuotaExhausted)
RESTRICTED = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


@dataclass(frozen=True)
class Grant:
    """One field a permission set should grant: "Contact.Crmsync_Status__c", read, edit."""

    sobject: str
    field: str
    edit: bool

    @property
    def spelled(self) -> str:
        return f"{self.sobject}.{self.field}"


@dataclass
class _Set:
    name: str
    id: str | None = None
    have: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)  # lower field -> (id, r, e)
    assigned: set[str] = field(default_factory=set)
    added: list[str] = field(default_factory=list)  # what this run did, in words
    failed: list[str] = field(default_factory=list)


def grants_for(settings: Settings, wanted: Iterable[tuple[str, str, str]]) -> dict[str, list[Grant]]:
    """Per permission set, the grants crmsync's fields need. `wanted`: (sObject, key, field)."""
    integration: list[Grant] = []
    read: list[Grant] = []
    for sobject, key, name in wanted:
        integration.append(Grant(sobject, name, edit=key != "exemption"))
        if key in READ_KEYS:
            read.append(Grant(sobject, name, edit=False))
        elif key == "exemption":
            read.append(Grant(sobject, name, edit=True))
    return {INTEGRATION_SET: integration, READ_SET: read}


def ensure_access(
    client: SalesforceClient,
    settings: Settings,
    grants: Mapping[str, Sequence[Grant]],
    *,
    dry_run: bool,
) -> list[FieldCheck]:
    """Create, grant and assign the two permission sets; one FieldCheck line for each."""
    sets = {name: _Set(name) for name in grants}
    _read_sets(client, sets)
    for s in sets.values():
        if s.id is None:
            if dry_run:
                s.added.append("would be created")
            else:
                _create_set(client, s)
    _read_grants(client, sets)
    for name, s in sets.items():
        if s.id is not None or dry_run:
            _grant(client, s, grants[name], dry_run=dry_run)
    integration_user = _integration_user(client, settings, sets[INTEGRATION_SET])
    if integration_user is not None:
        _assign(client, sets[INTEGRATION_SET], {integration_user: "the integration user"}, dry_run)
    readers, unknown = _readers(client, settings.grant_read_to)
    sets[READ_SET].failed += [
        f"[salesforce] grant_read_to names {entry!r}, which is no active user's username and "
        "no profile with active users" for entry in unknown
    ]
    if readers:
        _assign(client, sets[READ_SET], readers, dry_run)
    return [_check(s, grants[s.name], settings, dry_run) for s in sets.values()]


# ------------------------------------------------------------------ reading what is there


def _query(client: SalesforceClient, soql: str) -> list[Mapping[str, Any]]:
    page = client.query(soql, include_deleted=False, headers={})
    records = list(page.get("records") or ())
    while not page.get("done", True) and page.get("nextRecordsUrl"):
        page = client.query_more(page["nextRecordsUrl"], headers={})
        records += page.get("records") or ()
    return records


def _read_sets(client: SalesforceClient, sets: Mapping[str, _Set]) -> None:
    soql = format_soql("SELECT Id, Name FROM PermissionSet WHERE Name IN {}", sorted(sets))
    for row in _query(client, soql):
        s = sets.get(str(row.get("Name")))
        if s is not None:
            s.id = str(row["Id"])


def _read_grants(client: SalesforceClient, sets: Mapping[str, _Set]) -> None:
    by_id = {s.id: s for s in sets.values() if s.id}
    if not by_id:
        return
    soql = format_soql(
        "SELECT Id, ParentId, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE ParentId IN {}",
        sorted(by_id),
    )
    for row in _query(client, soql):
        s = by_id.get(str(row.get("ParentId")))
        if s is not None:
            s.have[str(row.get("Field") or "").lower()] = (
                str(row["Id"]), bool(row.get("PermissionsRead")), bool(row.get("PermissionsEdit"))
            )
    soql = format_soql(
        "SELECT AssigneeId, PermissionSetId FROM PermissionSetAssignment WHERE PermissionSetId IN {}",
        sorted(by_id),
    )
    for row in _query(client, soql):
        s = by_id.get(str(row.get("PermissionSetId")))
        if s is not None:
            s.assigned.add(str(row.get("AssigneeId")))


# ------------------------------------------------------------------ writing what is missing


def _collection(client: SalesforceClient, method: str, records: list[dict[str, Any]]) -> list[Any]:
    """Collections create (POST) or update (PATCH), 200 a call; the SaveResults in order."""
    out: list[Any] = []
    for part in chunked(records, 200):
        out += client.restful(
            "composite/sobjects",
            operation="composite",
            method=method,
            json={"allOrNone": False, "records": part},
        ) or [None] * len(part)
    return out


def _error(result: Any) -> tuple[str, str]:
    errors = (result or {}).get("errors") or [{}]
    return str(errors[0].get("statusCode") or "NO_RESULT"), str(errors[0].get("message") or "")


def _create_set(client: SalesforceClient, s: _Set) -> None:
    record = {
        "attributes": {"type": "PermissionSet"},
        "Name": s.name,
        "Label": LABELS[s.name],
        "Description": DESCRIPTIONS[s.name],
    }
    (result,) = _collection(client, "POST", [record])
    if result and result.get("success"):
        s.id = str(result["id"])
        s.added.append("created")
        return
    s.failed.append(
        f"could not create it ({_error(result)[0]}): the integration user needs \"Manage "
        "Profiles and Permission Sets\", or create it by hand and run `crmsync setup` again"
    )


def _grant(client: SalesforceClient, s: _Set, grants: Sequence[Grant], *, dry_run: bool) -> None:
    create: list[tuple[Grant, dict[str, Any]]] = []
    update: list[tuple[Grant, dict[str, Any]]] = []
    for g in grants:
        have = s.have.get(g.spelled.lower())
        if have is not None and have[1] and (have[2] or not g.edit):
            continue
        flags = {"PermissionsRead": True, "PermissionsEdit": g.edit or bool(have and have[2])}
        if have is None:
            create.append((g, {"attributes": {"type": "FieldPermissions"}, "ParentId": s.id,
                               "SobjectType": g.sobject, "Field": g.spelled, **flags}))  # fmt: skip
        else:
            update.append((g, {"attributes": {"type": "FieldPermissions"}, "Id": have[0], **flags}))
    if not create and not update:
        return
    if dry_run:
        s.added.append(f"would grant {_fields(len(create) + len(update))}")
        return
    granted = 0
    for method, todo in (("POST", create), ("PATCH", update)):
        if not todo:
            continue
        for (g, _), result in zip(todo, _collection(client, method, [r for _, r in todo]), strict=True):
            if result and result.get("success"):
                granted += 1
                continue
            code, message = _error(result)
            if code == RESTRICTED:
                continue  # a required field: everyone sees it, nothing to grant
            s.failed.append(f"{g.spelled}: {code}")
            log.debug("field permission refused",
                      extra={"crm": "salesforce", "field": g.spelled, "code": code})
    if granted:
        s.added.append(f"granted {_fields(granted)}")


def _assign(
    client: SalesforceClient, s: _Set, users: Mapping[str, str], dry_run: bool
) -> None:
    """Assign the set to `users` (Id -> how to name them) that do not have it yet."""
    todo = sorted(u for u in users if u not in s.assigned)
    if not todo:
        return
    if dry_run or s.id is None:
        s.added.append(f"would be assigned to {_whom(todo, users)}")
        return
    records = [
        {"attributes": {"type": "PermissionSetAssignment"}, "AssigneeId": u, "PermissionSetId": s.id}
        for u in todo
    ]
    done = []
    for user, result in zip(todo, _collection(client, "POST", records), strict=True):
        if result and result.get("success"):
            done.append(user)
            s.assigned.add(user)
        else:
            s.failed.append(f"assignment to {users[user]}: {_error(result)[0]}")
    if done:
        s.added.append(f"assigned to {_whom(done, users)}")


def _whom(ids: Sequence[str], users: Mapping[str, str]) -> str:
    named = sorted({users[i] for i in ids})
    if len(named) == 1:
        return named[0]
    return f"{len(ids)} users"


# ------------------------------------------------------------------ who


def _integration_user(client: SalesforceClient, settings: Settings, s: _Set) -> str | None:
    try:
        return client.user_id()
    except STOPS:
        raise
    except CrmError as exc:
        s.failed.append(
            f"could not tell which user crmsync logs in as ({exc.code or exc.status}): assign "
            f"the permission set {INTEGRATION_SET} to it by hand"
        )
        return None


def _readers(client: SalesforceClient, entries: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Active users `grant_read_to` names (Id -> "user" / "profile NAME"), and the entries
    that name nobody. Usernames are never printed: they are e-mail addresses."""
    if not entries:
        return {}, []
    usernames = sorted({e for e in entries if "@" in e}, key=str.lower)
    profiles = sorted({e for e in entries if "@" not in e}, key=str.lower)
    where = []
    if usernames:
        where.append(format_soql("Username IN {}", usernames))
    if profiles:
        where.append(format_soql("Profile.Name IN {}", profiles))
    soql = (
        "SELECT Id, Username, Profile.Name FROM User WHERE IsActive = true AND ("
        + " OR ".join(where) + ") ORDER BY Id"
    )
    found: dict[str, str] = {}
    seen: set[str] = set()
    for row in _query(client, soql):
        username = str(row.get("Username") or "").lower()
        profile = str((row.get("Profile") or {}).get("Name") or "")
        if username in {u.lower() for u in usernames}:
            found[str(row["Id"])] = "a named user"
            seen.add(username)
        if profile.lower() in {p.lower() for p in profiles}:
            found.setdefault(str(row["Id"]), f"profile {profile}")
            seen.add(profile.lower())
    unknown = [e for e in entries if e.lower() not in seen]
    return found, unknown


# ------------------------------------------------------------------ the report


def _fields(n: int) -> str:
    return f"{n} field" + ("" if n == 1 else "s")


def _check(s: _Set, grants: Sequence[Grant], settings: Settings, dry_run: bool) -> FieldCheck:
    edits = sum(g.edit for g in grants)
    reads = len(grants) - edits
    if s.name == INTEGRATION_SET:
        what = f"the integration user may edit {_fields(edits)}" + (
            f" and read {_fields(reads)}" if reads else ""
        )
    else:
        what = f"account managers may read {_fields(reads)}" + (
            f" and set the exemption field ({_fields(edits)})" if edits else ""
        )
    notes = [what]
    if s.added:
        notes.append(", ".join(s.added))
    if s.name == READ_SET and not settings.grant_read_to:
        notes.append(
            f"assign the permission set {READ_SET} to the people who should see the fields "
            "(or name their profiles or usernames in [salesforce] grant_read_to)"
        )
    if s.failed:
        return FieldCheck("PermissionSet", s.name, "failed", "; ".join(notes + s.failed))
    if dry_run and s.added:
        return FieldCheck("PermissionSet", s.name, "missing", "; ".join(notes))
    changed = any(not a.startswith("would") for a in s.added)
    return FieldCheck("PermissionSet", s.name, "created" if changed else "exists", "; ".join(notes))
