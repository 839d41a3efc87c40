"""iter_account_views: streamed, merged by (crm, account), typed, a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crmsync.state import views
from tests.state.conftest import load
from tests.state.records import account, at, contact, opportunity, owner, role


@pytest.fixture
def org(db):
    """Three Salesforce accounts and one HubSpot account.

    A1 (acme.test): C1 champion (moves to A2 later), C2, C3 deleted; O1 open, O9 deleted.
    A2 (beta.test): C4. A3 (gamma.test): "ADA LOVELACE" (same name as C1, new record).
    A4 deleted. HubSpot H1 with its own C1 id (ids are per CRM).
    """
    load(
        db,
        owner("U1"),
        account("A1", tier="Strategic", renewal_date=date(2026, 12, 31)),
        account("A2", name="Beta", domain="beta.test"),
        account("A3", name="Gamma", domain="gamma.test"),
        account("A4", name="Gone"),
        contact("C1", title="CTO", last_activity_at=at(-5)),
        contact("C2", first="Bob", last="Builder", opted_out=True),
        contact("C3", first="Cy", last="Deleted"),
        contact("C4", account_id="A2", first="Dee", last="Dee"),
        contact("C5", account_id="A3", first="ADA", last="LOVELACE"),
        contact("C6", account_id=None, first="No", last="Account"),
        opportunity("O1", close_date=date(2026, 6, 30)),
        opportunity("O9"),
        opportunity("O2", account_id="A2"),
        role("R1", "C1", "O1", role="Champion"),
        role("R2", "C2", "O1", role="Economic Buyer"),
        role("R3", "C4", None, role="DECISION_MAKER"),
        role("R4", "C2", "O1", role="Gone Role"),
    )
    load(
        db,
        contact("C3", first="Cy", last="Deleted", deleted=True, minute=1),
        account("A4", name="Gone", deleted=True, minute=1),
        opportunity("O9", deleted=True, minute=1),
        role("R4", "C2", "O1", role="Gone Role", deleted=True, minute=1),
    )
    load(
        db,
        account("H1", name="Hub", domain="hub.test"),
        contact("C1", account_id="H1"),
        crm="hubspot",
    )
    return db


def _by_id(db, **kw) -> dict[tuple[str, str], object]:
    return {(v.crm, v.id): v for v in views.iter_account_views(db, **kw)}


def test_views_group_live_rows_by_account_in_order(org) -> None:
    got = list(views.iter_account_views(org))
    assert [(v.crm, v.id) for v in got] == [
        ("hubspot", "H1"),
        ("salesforce", "A1"),
        ("salesforce", "A2"),
        ("salesforce", "A3"),
    ]
    a1 = _by_id(org)[("salesforce", "A1")]
    assert [c.id for c in a1.contacts] == ["C1", "C2"]
    assert [o.id for o in a1.opportunities] == ["O1"]
    assert sorted(r.id for r in a1.roles) == ["R1", "R2"]
    assert a1.owner is not None and a1.owner.id == "U1" and a1.owner.active
    hub = _by_id(org)[("hubspot", "H1")]
    assert [c.id for c in hub.contacts] == ["C1"] and hub.owner is None


def test_views_parse_stored_types(org) -> None:
    a1 = _by_id(org)[("salesforce", "A1")]
    assert a1.account.renewal_date == date(2026, 12, 31)
    assert a1.account.tier == "Strategic"
    c1, c2 = a1.contacts
    assert c1.last_activity_at == datetime(2026, 5, 1, 11, 55, tzinfo=UTC)
    assert c1.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert c1.email_bounced is False and c2.opted_out is True
    assert a1.opportunities[0].close_date == date(2026, 6, 30)
    assert a1.opportunities[0].is_closed is False
    assert a1.opportunities[0].amount == 1000.0


def test_departed_champion_is_visible_on_the_account_that_lost_them(org) -> None:
    load(org, contact("C1", account_id="A2", email="ada@beta.test", minute=10), seen_at=at(20))
    got = _by_id(org)
    a1, a2 = got[("salesforce", "A1")], got[("salesforce", "A2")]
    assert [c.id for c in a1.contacts] == ["C2"]
    assert [c.id for c in a1.former_contacts] == ["C1"]
    assert a1.former_contacts[0].account_id == "A2"
    # the role on A1's deal stays on A1's view, through the opportunity
    assert "R1" in {r.id for r in a1.roles}
    assert {(h.contact_id, h.field, h.old, h.new) for h in a1.history} == {
        ("C1", "account_id", "A1", "A2"),
        ("C1", "email", "c1@acme.test", "ada@beta.test"),
    }
    assert a1.history[0].seen_at == at(20)
    moved = [e for e in a1.elsewhere if e.how == "moved"]
    assert [(e.contact_id, e.other_account_id, e.other_account_name) for e in moved] == [
        ("C1", "A2", "Beta")
    ]
    # and on the new account, as its own contact with its history
    assert [c.id for c in a2.contacts] == ["C1", "C4"]
    assert len(a2.history) == 2 and a2.former_contacts == ()


def test_same_name_new_record_at_another_domain_is_elsewhere(org) -> None:
    a1 = _by_id(org)[("salesforce", "A1")]
    same = [e for e in a1.elsewhere if e.how == "same_name"]
    assert [(e.contact_id, e.other_contact_id, e.other_account_id) for e in same] == [
        ("C1", "C5", "A3")
    ]


def test_same_name_at_the_same_domain_is_not_elsewhere(org) -> None:
    load(org, account("A3", name="Gamma", domain="ACME.test", minute=2))
    a1 = _by_id(org)[("salesforce", "A1")]
    assert [e for e in a1.elsewhere if e.how == "same_name"] == []


def test_contacts_without_a_role_are_not_name_matched(org) -> None:
    load(
        org,
        contact("C7", account_id="A2", first="Bob", last="BUILDER"),
        contact("C10", first="Zed", last="Zero"),
        contact("C11", account_id="A2", first="Zed", last="Zero"),
    )
    a1 = _by_id(org)[("salesforce", "A1")]
    # C2 holds a role: matched; C10 holds none: not looked up
    assert {e.contact_id for e in a1.elsewhere} == {"C1", "C2"}
    load(org, contact("C8", account_id="A3", first="dee", last="dee"))
    a2 = _by_id(org)[("salesforce", "A2")]  # C4 holds a contact-level role
    assert [(e.contact_id, e.other_contact_id) for e in a2.elsewhere] == [("C4", "C8")]


def test_filters_by_crm_and_account_ids(org) -> None:
    assert [v.id for v in views.iter_account_views(org, "hubspot")] == ["H1"]
    got = list(views.iter_account_views(org, account_ids=["A2", "A4", "nope"]))
    assert [(v.id, [c.id for c in v.contacts]) for v in got] == [("A2", ["C4"])]
    got = list(views.iter_account_views(org, "salesforce", account_ids=["A1"]))
    assert [v.id for v in got] == ["A1"] and {r.id for r in got[0].roles} == {"R1", "R2"}


def test_views_issue_a_fixed_number_of_queries(db) -> None:
    def statements(n_accounts: int) -> int:
        db.execute("DELETE FROM accounts")
        db.execute("DELETE FROM contacts")
        load(
            db,
            *[account(f"A{i:03}") for i in range(n_accounts)],
            *[contact(f"C{i:03}", account_id=f"A{i:03}") for i in range(n_accounts)],
        )
        seen: list[str] = []
        db.conn.set_trace_callback(seen.append)
        try:
            assert len(list(views.iter_account_views(db))) == n_accounts
        finally:
            db.conn.set_trace_callback(None)
        return len(seen)

    few, many = statements(3), statements(60)
    assert few == many <= 8


def test_load_contact_and_counts(org) -> None:
    c3 = views.load_contact(org, "salesforce", "C3")
    assert c3 is not None and c3.deleted_at is not None
    assert views.load_contact(org, "salesforce", "nope") is None
    assert views.load_account(org, "salesforce", "A1").name == "Acme"
    counts = views.counts(org)
    assert counts["salesforce"]["contacts"] == {"live": 5, "deleted": 1}
    assert counts["salesforce"]["accounts"] == {"live": 3, "deleted": 1}
    assert counts["hubspot"]["contacts"] == {"live": 1, "deleted": 0}


def test_filtered_views_equal_the_full_scan(org) -> None:
    """Filtered views use a different join order; they must see exactly the same rows."""
    load(org, contact("C1", account_id="A2", email="ada@beta.test", minute=10), seen_at=at(20))
    full = _by_id(org)
    for (crm, account_id), view in full.items():
        (alone,) = views.iter_account_views(org, crm, account_ids=[account_id])
        assert alone == view
        (no_crm,) = [
            v for v in views.iter_account_views(org, account_ids=[account_id]) if v.crm == crm
        ]
        assert no_crm == view
