"""[identity] routing (sync/identity.py): what the planner writes for a linked contact in the
home CRM and in the other one, `other_crm = "nothing"` and `"fields"` (docs/identity.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmsync import rules
from crmsync.state import identity
from crmsync.state.model import WriteKind
from crmsync.sync.evaluate import evaluate_and_plan
from crmsync.sync.identity import IdentitySettings, refresh
from crmsync.sync.writeback_settings import WritebackSettings
from tests.state.conftest import load
from tests.state.records import T0, account, contact, owner

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def both(db):
    """One account and one stale contact, the same in both CRMs (linked by e-mail); and an
    unlinked stale contact in HubSpot."""
    for crm, acc, cid in (("salesforce", "001A", "003A"), ("hubspot", "100", "201")):
        load(db, owner("U1"), crm=crm)
        load(db, account(acc, domain="acme.test"), crm=crm)
        load(
            db,
            contact(cid, account_id=acc, email="ann@acme.test", last_activity_at=LONG_AGO),
            crm=crm,
        )
    load(
        db,
        contact("209", account_id="100", email="solo@acme.test", last_activity_at=LONG_AGO),
        crm="hubspot",
    )
    identity.refresh(db, now=T0)
    return db


def _plan(db, crm: str, settings: IdentitySettings | None):
    _ev, plan = evaluate_and_plan(
        db, crm, rules.RuleSettings(), WritebackSettings(), as_of=AS_OF, seen_at=AS_OF,
        store=False, identity=settings,
    )  # fmt: skip
    return plan


def _contacts_written(plan) -> set[str]:
    return {w.target_id for w in plan.items if w.kind is WriteKind.UPDATE_CONTACT}


def _task_subjects(plan) -> list[str]:
    return [w.label for w in plan.items if w.kind is WriteKind.CREATE_TASK]


def test_the_home_crm_writes_as_without_identity(both):
    home = IdentitySettings(home="salesforce")
    assert _plan(both, "salesforce", home).items == _plan(both, "salesforce", None).items
    assert "003A" in _contacts_written(_plan(both, "salesforce", home))


def test_the_other_crm_writes_nothing_for_linked_people_by_default(both):
    off = _plan(both, "hubspot", None)
    on = _plan(both, "hubspot", IdentitySettings(home="salesforce"))
    assert {"201", "209"} <= _contacts_written(off)
    assert _contacts_written(on) == {"209"}  # the unlinked contact as without identity
    # the linked account's single-threaded task and the linked contact stay in Salesforce;
    # the hygiene task names only the unlinked contact
    assert len(_task_subjects(off)) == 2
    assert [s.split(":")[0] for s in _task_subjects(on)] == ["Tidy up 1 contact at Acme"]


def test_other_crm_fields_keeps_status_fields_but_files_no_flag(both):
    fields = _plan(both, "hubspot", IdentitySettings(home="salesforce", other_crm="fields"))
    assert {"201", "209"} <= _contacts_written(fields)
    nothing = _plan(both, "hubspot", IdentitySettings(home="salesforce"))
    assert _task_subjects(fields) == _task_subjects(nothing)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="home = 'zoho'"):
        IdentitySettings(home="zoho").validate()
    with pytest.raises(ValueError, match="other_crm"):
        IdentitySettings(home="hubspot", other_crm="all").validate()


def test_a_pull_that_changed_no_account_or_contact_does_not_recompute_the_links(db):
    on = IdentitySettings(home="hubspot")
    assert refresh(db, IdentitySettings(), now=T0) is None  # off: never
    assert refresh(db, on, now=T0, changed=False) is not None  # never computed: computed
    assert identity.refreshed_at(db) == T0
    assert refresh(db, on, now=AS_OF, changed=False) is None
    assert identity.refreshed_at(db) == T0
    assert refresh(db, on, now=AS_OF, changed=True) is not None
    assert identity.refreshed_at(db) == AS_OF


def test_ambiguous_matches_are_logged_when_they_change_not_every_run(both, caplog):
    load(both, contact("003B", account_id="001A", email="ann@acme.test"), crm="salesforce")
    on = IdentitySettings(home="salesforce")
    with caplog.at_level("WARNING", logger="crmsync.sync.identity"):
        refresh(both, on, now=AS_OF)
        refresh(both, on, now=AS_OF)
    warned = [r for r in caplog.records if "not linked" in r.getMessage()]
    assert len(warned) == 1 and warned[0].__dict__["ambiguous"] == 1
    assert "ann@acme.test" not in caplog.text  # ids and counts only
