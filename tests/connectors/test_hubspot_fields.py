"""HubSpot mapping (fields.py) and the client-side limiter (limiter.py): pure, no HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from test_hubspot_support import FakeTime

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import MalformedRecord
from crmsync.connectors.hubspot import fields as f
from crmsync.connectors.hubspot.client import Settings
from crmsync.connectors.hubspot.limiter import GENERAL, SEARCH, Limiter
from crmsync.state.model import COLUMNS, ObjectType

SPECS = f.object_maps(Settings(left_company_field="no_longer_here", renewal_date_field="renewal"))
T = datetime(2026, 5, 1, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-05-01T12:34:56Z",
        "2026-05-01T12:34:56.000Z",
        "2026-05-01T12:34:56+0000",
        "2026-05-01T12:34:56.000+0000",
        "2026-05-01T14:34:56+02:00",
        "2026-05-01T08:34:56.000-0400",
        "1777638896000",
        1777638896000,
    ],
)
def test_p7_timestamp_formats_parse_to_the_same_utc_instant(value):
    assert f.parse_datetime(value) == T


def test_p7_date_only_and_empty():
    assert f.parse_datetime("2026-05-01") == datetime(2026, 5, 1, tzinfo=UTC)
    assert f.parse_datetime("") is None and f.parse_datetime(None) is None
    assert f.to_date("2026-05-01T23:59:59Z") == date(2026, 5, 1)
    with pytest.raises(ValueError):
        f.parse_datetime("not a date")


def contact(props, **assoc):
    return {
        "id": "42",
        "properties": {"lastmodifieddate": "2026-05-01T12:34:56Z", **props},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-05-01T12:34:56Z",
        "archived": False,
    }


def test_contact_maps_canonical_columns_only():
    rec, problems = f.to_record(
        SPECS[ObjectType.CONTACT],
        contact(
            {
                "email": "a@b.test",
                "firstname": "Ada",
                "lastname": "Lovelace",
                "jobtitle": "CTO",
                "hubspot_owner_id": "7",
                "createdate": "2025-02-03T04:05:06.789Z",
                "hs_last_sales_activity_timestamp": "2026-04-01T00:00:00Z",
                "hs_email_optout": "true",
                "hs_email_hard_bounce_reason": "Mailbox full",
                "no_longer_here": "true",
                "crmsync_status": "stale",
                "crmsync_exempt": "VIP",
            }
        ),
        {"companies": [f.Edge("9"), f.Edge("8", (1,), (), True)]},
    )
    assert problems == []
    assert set(rec.values) == set(COLUMNS[ObjectType.CONTACT])
    v = rec.values
    assert v["account_id"] == "8"  # the primary company (type 1) beats the first
    assert v["last_activity_at"] == datetime(2026, 4, 1, tzinfo=UTC)  # fallback property
    assert v["created_at"] == datetime(2025, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    assert v["opted_out"] is True and v["left_company"] is True and v["exemption"] == "VIP"
    assert v["email_bounced"] is False and v["bounce_reason"] == "Mailbox full"
    assert rec.owned == {"status": "stale", "reason": None, "signature": None}
    assert rec.modified_at == T and rec.raw["properties"]["email"] == "a@b.test"


@pytest.mark.parametrize(
    "props, bounced",
    [
        ({"hs_email_hard_bounce_reason_enum": "UNKNOWN_USER"}, True),
        ({"hs_email_hard_bounce_reason_enum": "SPAM"}, True),  # HubSpot marks it bounced; the rule decides what it means
        ({"hs_email_bad_address": "true"}, True),
        ({"hs_email_hard_bounce_reason_enum": "", "hs_email_bad_address": "false"}, False),
        ({}, False),
    ],
)
def test_email_bounced(props, bounced):
    rec, _ = f.to_record(SPECS[ObjectType.CONTACT], contact(props))
    assert rec.values["email_bounced"] is bounced


def test_account_id_falls_back_to_associatedcompanyid_then_first():
    spec = SPECS[ObjectType.CONTACT]
    rec, _ = f.to_record(spec, contact({"associatedcompanyid": "55"}), {"companies": [f.Edge("9")]})
    assert rec.values["account_id"] == "55"
    rec, _ = f.to_record(spec, contact({}), {"companies": [f.Edge("9"), f.Edge("10")]})
    assert rec.values["account_id"] == "9"


def test_x8_malformed_value_is_none_and_named_never_a_crash():
    rec, problems = f.to_record(
        SPECS[ObjectType.CONTACT], contact({"notes_last_contacted": "yesterday"})
    )
    assert rec.values["last_activity_at"] is None and problems == ["notes_last_contacted"]


def test_record_without_id_is_malformed():
    with pytest.raises(MalformedRecord):
        f.to_record(SPECS[ObjectType.CONTACT], {"properties": {}})


def test_deal_and_task_mapping():
    rec, _ = f.to_record(
        SPECS[ObjectType.OPPORTUNITY],
        {
            "id": "3",
            "properties": {
                "dealname": "Renewal",
                "dealstage": "closedwon",
                "hs_is_closed": "true",
                "hs_is_closed_won": "true",
                "closedate": "2026-06-30T00:00:00Z",
                "amount": "1200.50",
            },
        },
        {"companies": [f.Edge("5", (341,)), f.Edge("6", (5,), (), True)]},
    )
    assert rec.values == {
        "name": "Renewal",
        "stage": "closedwon",
        "is_closed": True,
        "is_won": True,
        "close_date": date(2026, 6, 30),
        "amount": 1200.5,
        "account_id": "6",
    }
    rec, _ = f.to_record(
        SPECS[ObjectType.TASK],
        {
            "id": "4",
            "properties": {
                "crmsync_key": "k",
                "crmsync_signature": "v1 status=0123abcd",
                "hs_task_status": "COMPLETED",
                "hs_timestamp": "1777638896000",
            },
        },
        {"contacts": [f.Edge("11")], "companies": [f.Edge("12")]},
    )
    assert rec.values["is_closed"] is True and rec.values["due_date"] == date(2026, 5, 1)
    assert (rec.values["contact_id"], rec.values["account_id"], rec.owned) == (
        "11",
        "12",
        {"key": "k", "signature": "v1 status=0123abcd"},
    )


def test_edges_from_v4_labels_and_primary():
    e = f.edge_from_v4(
        {
            "toObjectId": 2002,
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None},
                {"category": "USER_DEFINED", "typeId": 36, "label": "Champion"},
            ],
        },
        "deals",
        "contacts",
    )
    assert (e.to_id, e.labels, e.primary) == ("2002", ("Champion",), False)
    p = f.edge_from_v4(
        {
            "toObjectId": "9",
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}],
        },
        "contacts",
        "companies",
    )
    assert p.primary
    v3 = [
        f.edge_from_v3({"id": "9", "type": "contact_to_company"}, "contacts", "companies"),
        f.edge_from_v3(
            {"id": "9", "type": "contact_to_company_unlabeled"}, "contacts", "companies"
        ),
    ]
    assert f.merge_edges(v3) == [f.Edge("9", (), (), True)]


def test_buying_roles_and_role_ids():
    assert [
        f.role_name(v)
        for v in ("CHAMPION", "BUDGET_HOLDER", "EXECUTIVE_SPONSOR", "DECISION_MAKER", "END_USER")
    ] == ["Champion", "Economic Buyer", "Executive Sponsor", "Decision Maker", "End User"]
    raw = {"id": "7", "properties": {"hs_buying_role": "CHAMPION; END_USER;"}}
    assert f.buying_roles(raw) == ["CHAMPION", "END_USER"]
    r = f.buying_role("7", "CHAMPION", None)
    assert r.id == "buying_role:7:CHAMPION" and r.values["opportunity_id"] is None
    assert f.label_role("3", "7", "Champion", None).id == "3:7:Champion"


def test_all_nine_buying_roles_have_names_and_the_names_are_a_setting():
    # hs_buying_role's options (api-facts §4): none falls back to title case
    assert {v: f.role_name(v) for v in f.BUYING_ROLES} == {
        "BLOCKER": "Blocker",
        "BUDGET_HOLDER": "Economic Buyer",
        "CHAMPION": "Champion",
        "DECISION_MAKER": "Decision Maker",
        "END_USER": "End User",
        "EXECUTIVE_SPONSOR": "Executive Sponsor",
        "INFLUENCER": "Influencer",
        "LEGAL_AND_COMPLIANCE": "Legal & Compliance",
        "OTHER": "Other",
    }
    names = Settings(buying_roles={"budget_holder": "Budget Holder"}).role_names()
    assert names["BUDGET_HOLDER"] == "Budget Holder" and names["CHAMPION"] == "Champion"
    assert f.buying_role("7", "BUDGET_HOLDER", None, names=names).values["role"] == "Budget Holder"
    assert f.role_name("CUSTOM_ROLE", names) == "Custom Role"  # a portal's own option
    with pytest.raises(ValueError, match="buying_roles.BLOCKER"):
        Settings(token=Secret("pat-x"), buying_roles={"BLOCKER": " "}).validate()


@pytest.mark.parametrize(
    ("enum", "text", "reason"),
    [
        ("SPAM", "550 5.7.1 rejected", "SPAM: 550 5.7.1 rejected"),
        ("unknown_user", None, "UNKNOWN_USER"),
        (None, "550 5.1.1 user unknown", "550 5.1.1 user unknown"),
        (None, None, None),
    ],
)
def test_bounce_reason_carries_hubspots_code_first(enum, text, reason):
    props = {"hs_email_hard_bounce_reason_enum": enum, "hs_email_hard_bounce_reason": text}
    spec = f.object_maps(Settings())[ObjectType.CONTACT]
    record, _ = f.to_record(spec, {"id": "1", "properties": props})
    assert record.values["bounce_reason"] == reason
    assert record.values["email_bounced"] is bool(enum)


def test_d4_merged_losers():
    assert f.merged_losers({"id": "30", "properties": {"hs_merged_object_ids": "10;20;30"}}) == [
        "10",
        "20",
    ]
    assert f.merged_losers({"id": "30", "properties": {}}) == []


def test_properties_left_out_when_schema_lacks_them():
    spec = SPECS[ObjectType.ACCOUNT]
    props, missing = spec.properties({"name", "domain", "hubspot_owner_id"})
    assert "name" in props and "hs_lastmodifieddate" in props
    assert "renewal" in missing and "crmsync_stakeholders" in missing


def test_task_payload_mapping():
    props = f.task_properties(
        {"subject": "S", "priority": "medium", "due_date": date(2026, 12, 1), "status": "open"},
        "key-1",
        create=True,
    )
    assert props == {
        "hs_task_subject": "S",
        "hs_task_priority": "MEDIUM",
        "hs_timestamp": str(int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)),
        "hs_task_status": "NOT_STARTED",
        "hs_task_type": "TODO",
        "crmsync_key": "key-1",
    }
    assert f.completed_properties({})["hs_task_status"] == "COMPLETED"
    assert (
        f.task_associations({"contact_id": "1", "account_id": "2"})[1]["types"][0][
            "associationTypeId"
        ]
        == 192
    )
    with pytest.raises(KeyError):
        f.account_properties({"bogus": 1})


# ---------------------------------------------------------------- limiter


def test_r4_sliding_window_never_exceeds_limit():
    clock = FakeTime(1000.0)
    lim = Limiter(10, 2, clock=clock.time, sleep=clock.sleep)
    sent = []
    for _ in range(35):
        lim.acquire(GENERAL)
        sent.append(clock.t)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[: i + 1] if u > t - 10.0) <= 10
    assert sent[10] - sent[0] >= 10.0  # the 11th call waited for the first to leave the window


def test_search_has_its_own_per_second_window():
    clock = FakeTime(0.0)
    lim = Limiter(100, 4, clock=clock.time, sleep=clock.sleep)
    times = []
    for _ in range(9):
        lim.acquire(SEARCH)
        times.append(clock.t)
    assert times[3] == 0.0 and times[4] >= 1.0 and times[8] >= 2.0


def test_limit_headers_slow_the_next_call():
    clock = FakeTime(0.0)
    lim = Limiter(100, 4, clock=clock.time, sleep=clock.sleep)
    lim.observe(
        {
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
    )
    lim.acquire(GENERAL)
    assert clock.t == pytest.approx(0.2)  # two missing slots at 10 per second
    lim.observe({"X-HubSpot-RateLimit-Remaining": "57"})
    lim.acquire(GENERAL)
    assert clock.t == pytest.approx(0.2)


def test_malformed_record_is_logged_by_id_and_counted(caplog):
    from crmsync.connectors.hubspot.pull import Puller, _Run

    p = Puller.__new__(Puller)
    p.malformed = 0
    run = _Run("full", None, 0, T, None)
    with caplog.at_level(logging.WARNING):
        out = p._map(
            SPECS[ObjectType.CONTACT],
            run,
            [
                {"properties": {}},
                {"id": "5", "properties": {"email": "x@y.test"}},
                {"id": "6", "properties": None},
            ],
            {},
        )
    assert [r.id for r in out] == ["5"] and p.malformed == 2
    assert "x@y.test" not in caplog.text and "6" in caplog.text


def test_settings_from_a_sync_toml_table(tmp_path):
    from crmsync.sync.config import ConfigError, build

    (tmp_path / "hubspot-token.txt").write_text("pat-sandbox-0000\n")
    s = build(Settings, {"host": "http://127.0.0.1:9", "token_file": "hubspot-token.txt",
                         "extra_properties": {"contacts": ["hs_lead_status"]}},
              "hubspot", base=tmp_path, environ={})  # fmt: skip
    assert s.token.reveal() == "pat-sandbox-0000" and "pat-" not in repr(s)
    assert s.extra_properties == {"contacts": ("hs_lead_status",)}
    (tmp_path / "rt.txt").write_text("rt\n")
    s = build(Settings, {"auth": "oauth", "client_id": "id", "client_secret_env": "CS",
                         "refresh_token_file": "rt.txt"},
              "hubspot", base=tmp_path, environ={"CS": "secret"})  # fmt: skip
    assert s.refresh_token_file == tmp_path / "rt.txt" and s.refresh_token.reveal() == "rt"
    with pytest.raises(ConfigError, match="client_id"):
        build(Settings, {"auth": "oauth"}, "hubspot", base=tmp_path, environ={})
