"""m004: HubSpot buying roles a mirror stored as codes become the names the rules read.

The HubSpot connector names hs_buying_role values at pull (BUDGET_HOLDER -> Economic Buyer,
tests/connectors/test_hubspot_fields.py); rows pulled before it did are renamed once, so
the rules know no CRM's codes (rules/context.py normalise_role).
"""

from crmsync.rules.context import normalise_role
from crmsync.state.db import open_db
from crmsync.state.migrations import apply_migrations

OLD_ROLES = {
    "r1": "BUDGET_HOLDER",
    "r2": "CHAMPION;BUDGET_HOLDER",
    "r3": "Economic Buyer",
    "r4": "END_USER",
    "r5": "budget_holder",  # any case, as the rules read codes before
}


def _old_mirror(tmp_path):
    """A mirror migrated up to m003, holding roles as an old HubSpot pull stored them."""
    db = open_db(tmp_path / "m.db")
    db.execute("DELETE FROM _migrations WHERE name = 'm004_hubspot_role_names'")
    db.conn.commit()
    for rid, role in OLD_ROLES.items():
        db["contact_roles"].insert({"crm": "hubspot", "id": rid, "contact_id": "C1", "role": role})
    db["contact_roles"].insert(
        {"crm": "salesforce", "id": "s1", "contact_id": "X", "role": "BUDGET_HOLDER"}
    )
    db.conn.commit()
    return db


def test_old_hubspot_role_codes_become_role_names(tmp_path):
    db = _old_mirror(tmp_path)
    assert apply_migrations(db) == ["m004_hubspot_role_names"]
    roles = {r["id"]: r["role"] for r in db["contact_roles"].rows_where("crm = 'hubspot'")}
    assert roles == {
        "r1": "Economic Buyer",
        "r2": "Champion;Economic Buyer",
        "r3": "Economic Buyer",
        "r4": "END_USER",  # not one the rules name: they read it as "End User"
        "r5": "Economic Buyer",
    }
    champion_roles = ["Champion", "Economic Buyer", "Executive Sponsor", "Decision Maker"]
    assert normalise_role(roles["r2"], champion_roles) == ("Champion", "Economic Buyer")
    # another CRM's values are its own
    assert db["contact_roles"].get(("salesforce", "s1"))["role"] == "BUDGET_HOLDER"

