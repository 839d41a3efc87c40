"""Field-level security: who may see and write a field that needs a grant, and the setup
objects that grant it.

A custom field created through the Tooling API is visible to nobody until
field-level security grants it: absent from describe, refused in SOQL
(INVALID_FIELD) and in writes (INVALID_FIELD_FOR_INSERT_UPDATE). Sources:
simple-salesforce/simple-salesforce#621, restforce/restforce#353 ("I can't
update the field ... until after I go into the Salesforce Web UI and make the
field's accessibility 'Editable'"), ForceCLI/force#163 (api-facts §13).

A user gets a field through a permission set assigned to them: `PermissionSet`
{Name, Label}, `FieldPermissions` {ParentId, SobjectType, Field: "Contact.X__c",
PermissionsRead, PermissionsEdit} and `PermissionSetAssignment` {AssigneeId,
PermissionSetId}, all ordinary sObjects over REST (api-facts §13). Rules the
sandbox enforces when they are written through the API:

- `Field` is a restricted picklist of the permissionable fields: an unknown
  field, a required one (Salesforce-Inspector-reloaded#1141: "bad value for
  restricted picklist"), or an Activity field spelled `Activity.X__c` instead
  of `Task.X__c` (sfpowerkit#446/#517: "the permissions come with
  Task.customFieldName and Event.customFieldName") answers
  INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST;
- `SobjectType` must be the object `Field` names (FIELD_INTEGRITY_EXCEPTION);
- edit without read is refused (the harsher reading; Setup greys out Edit
  without Read);
- a second FieldPermissions for the same permission set and field, a second
  assignment of a permission set to a user, a second permission set of a
  Name: DUPLICATE_VALUE (unconfirmed wording, api-facts §13; update instead);
- a permission set is assigned to active users only.

Profiles grant nothing here: the sandbox's profiles stand for ones whose
field-level security nobody set for crmsync's fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .store import WriteError

if TYPE_CHECKING:
    from .schema import Field
    from .store import Row, Store, Table

_API_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")


def grants(store: Store, user: str) -> dict[str, tuple[bool, bool]]:
    """"object.field" (lower case) -> (read, edit) for one user, from their permission sets."""
    psa = store.tables["permissionsetassignment"]
    fp = store.tables["fieldpermissions"]
    c_who, c_set = psa.cols["assigneeid"], psa.cols["permissionsetid"]
    sets = {_get(r, c_set) for r in psa.rows.values() if _get(r, c_who) == user}
    out: dict[str, tuple[bool, bool]] = {}
    if not sets:
        return out
    c_parent, c_field = fp.cols["parentid"], fp.cols["field"]
    c_read, c_edit = fp.cols["permissionsread"], fp.cols["permissionsedit"]
    for r in fp.rows.values():
        if _get(r, c_parent) not in sets:
            continue
        key = str(_get(r, c_field) or "").lower()
        read = bool(_get(r, c_read))
        edit = read and bool(_get(r, c_edit))
        had = out.get(key, (False, False))
        out[key] = (had[0] or read, had[1] or edit)
    return out


def validate(store: Store, t: Table, cols: Mapping[int, Any], row: Row | None) -> None:
    """Refuse an API write to a setup object as Salesforce would (see the module docstring)."""
    if t.name == "FieldPermissions":
        _field_permissions(store, t, cols, row)
    elif t.name == "PermissionSetAssignment" and row is None:
        _assignment(store, t, cols)
    elif t.name == "PermissionSet":
        _permission_set(t, cols, row)


def _field_permissions(store: Store, t: Table, cols: Mapping[int, Any], row: Row | None) -> None:
    def value(name: str) -> Any:
        col = t.cols[name.lower()]
        if col in cols:
            return cols[col]
        return _get(row, col) if row is not None else None

    read, edit = bool(value("PermissionsRead")), bool(value("PermissionsEdit"))
    if edit and not read:
        raise WriteError(
            "FIELD_INTEGRITY_EXCEPTION",
            "Permission Read Field is required when Edit Field is granted",
            ["PermissionsRead"],
        )
    if row is not None:
        return  # ParentId, SobjectType and Field cannot change
    spelled = str(value("Field") or "")
    obj, _, name = spelled.partition(".")
    target = store.tables.get(obj.lower()) if obj and name else None
    f: Field | None = target.field(name) if target is not None else None
    if target is None or f is None or target.name != obj or not _permissionable(f):
        raise WriteError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Field: bad value for restricted picklist field: {spelled}",
            ["Field"],
        )
    if str(value("SobjectType") or "").lower() != target.name.lower():
        raise WriteError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"SobjectType must be the object of Field {spelled}",
            ["SobjectType"],
        )
    parent = value("ParentId")
    c_parent, c_field = t.cols["parentid"], t.cols["field"]
    for other in t.rows.values():
        if _get(other, c_parent) == parent and str(_get(other, c_field) or "").lower() == spelled.lower():
            raise WriteError(
                "DUPLICATE_VALUE",
                f"duplicate value found: Field duplicates value on record with id: {other[t.c_id]}",
                ["Field"],
            )


def _permissionable(f: Field) -> bool:
    """Fields FieldPermissions accepts: writable, optional, not system (describe's `permissionable`)."""
    return f.nillable and not f.required and f.createable and f.type != "id"


def _assignment(store: Store, t: Table, cols: Mapping[int, Any]) -> None:
    who, what = cols.get(t.cols["assigneeid"]), cols.get(t.cols["permissionsetid"])
    users = store.tables["user"]
    user = users.rows.get(str(who))
    if user is not None and users.value(user, "IsActive") is False:
        raise WriteError(
            "INVALID_CROSS_REFERENCE_KEY",
            f"cannot assign a permission set to an inactive user: {who}",
            ["AssigneeId"],
        )
    c_who, c_set = t.cols["assigneeid"], t.cols["permissionsetid"]
    for other in t.rows.values():
        if _get(other, c_who) == who and _get(other, c_set) == what:
            raise WriteError(
                "DUPLICATE_VALUE",
                f"duplicate value found: <unknown> duplicates value on record with id: {other[t.c_id]}",
                [],
            )


def _permission_set(t: Table, cols: Mapping[int, Any], row: Row | None) -> None:
    c_name = t.cols["name"]
    if c_name not in cols:
        return
    name = str(cols[c_name] or "")
    if not _API_NAME.match(name):
        raise WriteError(
            "FIELD_INTEGRITY_EXCEPTION",
            "The API name must begin with a letter and use only alphanumeric characters and "
            "underscores, without two underscores in a row or one at the end",
            ["Name"],
        )
    for other in t.rows.values():
        if other is not row and str(_get(other, c_name) or "").lower() == name.lower():
            raise WriteError(
                "DUPLICATE_VALUE",
                f"duplicate value found: Name duplicates value on record with id: {other[t.c_id]}",
                ["Name"],
            )


def _get(row: Row | None, col: int) -> Any:
    return None if row is None or col >= len(row) else row[col]
