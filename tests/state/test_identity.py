"""state/identity.py: links across the two mirrors, ambiguous matches, merges, evidence."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from crmsync.state import identity, views
from crmsync.state.model import CrmRecord, ObjectType
from tests.state.conftest import load
from tests.state.records import T0, account, contact, opportunity, role

SF, HS = "salesforce", "hubspot"
SF_ID = "0035g00000AbCdEAAQ"  # 18 characters; its first 15 are what older exports hold


def hs_contact(id: str, *, sf_id: str | None = None, **kw: object) -> CrmRecord:
    rec = contact(id, account_id="100", **kw)  # type: ignore[arg-type]
    props = {"email": rec.values.get("email")}
    if sf_id is not None:
        props["salesforcecontactid"] = sf_id
    return dataclasses.replace(rec, raw={"id": id, "properties": props})


def pairs(db, obj=ObjectType.CONTACT):
    return {(link.salesforce_id, link.hubspot_id, link.how) for link in identity.links(db, obj)}


def test_the_integration_id_links_first_even_with_another_email_and_a_15_character_id(db):
    load(db, contact(SF_ID, email="ann@acme.test"), crm=SF)
    load(db, hs_contact("201", email="ann.private@mail.test", sf_id=SF_ID[:15]), crm=HS)
    identity.refresh(db, now=T0)
    assert pairs(db) == {(SF_ID, "201", "integration_id")}


def test_an_integration_id_naming_a_merged_salesforce_record_links_its_survivor(db):
    load(db, contact("003B", email="b@acme.test"), crm=SF)
    load(db, contact("003A", merged_into="003B", email="a@acme.test"), crm=SF)
    load(db, hs_contact("201", email="other@mail.test", sf_id="003A"), crm=HS)
    identity.refresh(db, now=T0)
    assert pairs(db) == {("003B", "201", "integration_id")}


def test_two_hubspot_records_naming_one_salesforce_id_are_reported_not_linked(db):
    load(db, contact("003A", email="a@acme.test"), crm=SF)
    load(
        db,
        hs_contact("201", email="x@mail.test", sf_id="003A"),
        hs_contact("202", email="y@mail.test", sf_id="003A"),
        crm=HS,
    )
    identity.refresh(db, now=T0)
    assert pairs(db) == set()
    [amb] = identity.ambiguous(db)
    assert (amb.how, amb.salesforce_ids, amb.hubspot_ids) == (
        "integration_id",
        ("003A",),
        ("201", "202"),
    )


def test_an_email_shared_by_two_people_is_reported_not_linked(db):
    load(
        db,
        contact("003A", email="info@acme.test"),
        contact("003B", first="Bob", email="INFO@acme.test "),
        contact("003C", email="carl@acme.test"),
        crm=SF,
    )
    load(
        db,
        hs_contact("201", email="info@acme.test"),
        hs_contact("203", email="Carl@Acme.test"),
        crm=HS,
    )
    summary = identity.refresh(db, now=T0)
    assert pairs(db) == {("003C", "203", "email")}
    [amb] = identity.ambiguous(db)
    assert (amb.how, amb.salesforce_ids, amb.hubspot_ids) == ("email", ("003A", "003B"), ("201",))
    assert summary.ambiguous["contacts"] == 1
    assert identity.counts(db) == {"contacts_email": 1, "contacts_ambiguous": 1}


def test_accounts_link_by_domain_without_scheme_or_www(db):
    load(db, account("001A", domain="https://www.Acme.test/about"), crm=SF)
    load(db, account("100", domain="acme.test"), crm=HS)
    identity.refresh(db, now=T0)
    assert pairs(db, ObjectType.ACCOUNT) == {("001A", "100", "domain")}


def test_a_link_survives_a_merge_in_hubspot_and_the_next_refresh(db):
    load(db, contact("003A", email="ann@acme.test"), crm=SF)
    load(
        db,
        hs_contact("201", email="ann@acme.test"),
        hs_contact("202", email="a.n@mail.test"),
        crm=HS,
    )
    identity.refresh(db, now=T0)
    assert pairs(db) == {("003A", "201", "email")}
    # HubSpot merges 201 into 202 (whose e-mail wins): no e-mail or id names 003A any more
    load(db, dataclasses.replace(hs_contact("201", minute=5), merged_into="202"), crm=HS)
    assert pairs(db) == {("003A", "202", "email")}
    for _ in range(2):
        identity.refresh(db, now=T0)
        [link] = identity.links(db)
        assert (link.salesforce_id, link.hubspot_id, link.kept_through_merge) == (
            "003A",
            "202",
            True,
        )
        assert link.linked_at == T0


def test_a_link_survives_a_merge_in_salesforce(db):
    load(db, contact("003A", email="ann@acme.test"), contact("003B", email="x@acme.test"), crm=SF)
    load(db, hs_contact("201", email="ann@acme.test"), crm=HS)
    identity.refresh(db, now=T0)
    load(db, dataclasses.replace(contact("003A", minute=5), merged_into="003B"), crm=SF)
    identity.refresh(db, now=T0)
    assert {
        (link.salesforce_id, link.hubspot_id, link.kept_through_merge)
        for link in identity.links(db)
    } == {("003B", "201", True)}


def test_a_link_whose_email_no_longer_matches_is_dropped(db):
    load(db, contact("003A", email="ann@acme.test"), crm=SF)
    load(db, hs_contact("201", email="ann@acme.test"), crm=HS)
    identity.refresh(db, now=T0)
    load(db, hs_contact("201", email="someone.else@mail.test", minute=5), crm=HS)
    summary = identity.refresh(db, now=T0)
    assert pairs(db) == set()
    assert summary.removed == 1


def test_the_rules_see_the_latest_activity_a_bounce_and_the_roles_of_both(db):
    old = datetime(2025, 1, 1, tzinfo=UTC)
    new = datetime(2026, 10, 1, tzinfo=UTC)
    load(db, account("001A"), crm=SF)
    load(
        db, contact("003A", account_id="001A", email="ann@acme.test", last_activity_at=old), crm=SF
    )
    load(db, account("100"), crm=HS)
    load(
        db,
        hs_contact(
            "201",
            email="ann@acme.test",
            last_activity_at=new,
            email_bounced=True,
            bounce_reason="UNKNOWN_USER",
        ),
        crm=HS,
    )
    load(db, opportunity("301", account_id="100"), crm=HS)
    load(db, opportunity("302", account_id="100", is_closed=True, is_won=False), crm=HS)
    load(db, role("R1", "201", opportunity_id="301", role="Champion"), crm=HS)
    load(db, role("R2", "201", opportunity_id="302", role="Economic Buyer"), crm=HS)
    identity.refresh(db, now=T0)
    [view] = identity.with_linked_evidence(db, SF, views.iter_account_views(db, SF))
    [ann] = view.contacts
    assert (ann.last_activity_at, ann.email_bounced, ann.bounce_reason) == (
        new,
        True,
        "UNKNOWN_USER",
    )
    assert [(r.contact_id, r.role, r.opportunity_id) for r in view.roles] == [
        ("003A", "Champion", None)
    ]
    # without links the view is the CRM's own
    [plain] = views.iter_account_views(db, SF)
    assert plain.contacts[0].last_activity_at == old and plain.roles == ()
