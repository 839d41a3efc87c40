"""The org generator: deterministic, well-formed, and its manifest tells the truth.

The strongest check here re-derives every case list of the manifest from the
*rendered* records of each CRM with an independent reading of docs/design.md's rule
definitions (dates parsed with datetime, syntax checked with email-validator),
so a rendering slip or a mis-planted case shows up as a set difference.
"""

from __future__ import annotations

import gc
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email

from crmsync.sandbox.common import sf_id
from crmsync.sandbox.generate import DEFAULT_AS_OF, generate, iter_crm, iter_records
from crmsync.sandbox.generate import words as W
from crmsync.sandbox.generate.__main__ import main as generate_main
from crmsync.sandbox.generate.salesforce import SfIds
from crmsync.sandbox.generate.world import FILLER_BLOCK, SITUATION_BLOCK, TIER_BLOCK

AS_OF = DEFAULT_AS_OF
WINDOWS = {"strategic": 60, "growth": 120, "maintenance": 365, "none": 180}
SF_TIER = {"Strategic": "strategic", "Growth": "growth", "Maintenance": "maintenance"}
HS_TIER = {"tier_1": "strategic", "tier_2": "growth", "tier_3": "maintenance"}
CHAMPION_ROLES = {"Champion", "Economic Buyer", "Executive Sponsor", "Decision Maker"}
BUYING_ROLE = {
    "CHAMPION": "Champion",
    "BUDGET_HOLDER": "Economic Buyer",
    "EXECUTIVE_SPONSOR": "Executive Sponsor",
    "DECISION_MAKER": "Decision Maker",
}
LEFT = re.compile(r"\b(former|no longer|left)\b|\bex-", re.IGNORECASE)
SF_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
HS_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
SF_PREFIX = {
    "User": "005",
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "Task": "00T",
}


@pytest.fixture(scope="module")
def org() -> dict[str, Any]:
    return generate(seed=7, accounts=120)


@pytest.fixture(scope="module")
def bad_org() -> dict[str, Any]:
    return generate(seed=3, accounts=40, bad_records=True)


# ------------------------------------------------------------------ independent rule reading


def _valid(email: str | None) -> bool:
    if not email:
        return False
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _sf_dt(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC)


def _hs_dt(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _domain(website: str) -> str:
    return re.sub(r"^(https?://)?(www\.)?", "", website).rstrip("/")


def _derive(
    accounts: list[dict[str, Any]],
    contacts: list[dict[str, Any]],
    opps: list[dict[str, Any]],
    roles: list[tuple[str, str, str | None]],
) -> dict[str, set[str]]:
    """Cases from canonical-ish rows (see _sf_rows / _hs_rows); docs/design.md definitions."""
    today = AS_OF.date()
    opp_by_id = {o["id"]: o for o in opps}
    counted: dict[str, set[str]] = {}
    for opp_id, contact_id, role in roles:
        o = opp_by_id[opp_id]
        if role and (not o["closed"] or (o["won"] and (today - o["close"]).days <= 365)):
            counted.setdefault(contact_id, set()).add(role)
    out: dict[str, set[str]] = {
        k: set()
        for k in (
            "stale_contact",
            "bouncing_contact",
            "departed_champion",
            "single_threaded_account",
            "role_address",
            "renewal_soon_account",
        )
    }
    by_account: dict[str, list[dict[str, Any]]] = {}
    for c in contacts:
        by_account.setdefault(c["account"], []).append(c)
    for a in accounts:
        window = timedelta(days=WINDOWS[a["tier"]])
        engaged, held = 0, set()
        for c in by_account.get(a["id"], []):
            roles_held = counted.get(c["id"], set()) | c["buying_roles"]
            bouncing = c["hard_bounce"] or not _valid(c["email"])
            if bouncing:
                out["bouncing_contact"].add(c["id"])
            if c["email"] and c["email"].split("@")[0] in W.ROLE_LOCALS and _valid(c["email"]):
                out["role_address"].add(c["id"])
            moved = (
                bool(c["email"])
                and "@" in c["email"]
                and c["email"].rsplit("@", 1)[1] != a["domain"]
            )
            if roles_held & CHAMPION_ROLES and (bouncing or LEFT.search(c["title"] or "") or moved):
                out["departed_champion"].add(c["id"])
                continue
            if bouncing:
                continue
            held |= roles_held
            act = c["activity"]
            if act is not None and AS_OF - act <= timedelta(days=90):
                engaged += 1
            if c["created"] < AS_OF - window and (act is None or act < AS_OF - window):
                out["stale_contact"].add(c["id"])
        if engaged < 3 or not {"Economic Buyer", "Champion"} <= held:
            out["single_threaded_account"].add(a["id"])
        soon = [
            d
            for d in [a["renewal"]]
            + [o["close"] for o in opps if o["account"] == a["id"] and not o["closed"]]
            if d is not None and 0 <= (d - today).days <= 120
        ]
        if soon:
            out["renewal_soon_account"].add(a["id"])
    return out


def _sf_rows(sf: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    accounts = [
        {
            "id": a["Id"],
            "tier": SF_TIER.get(a["Tier__c"] or "", "none"),
            "domain": _domain(a["Website"]),
            "renewal": a["Renewal_Date__c"] and date.fromisoformat(a["Renewal_Date__c"]),
        }
        for a in sf["Account"]
    ]
    contacts = []
    for c in sf["Contact"]:
        lad = c["LastActivityDate"]
        contacts.append(
            {
                "id": c["Id"],
                "account": c["AccountId"],
                "email": c["Email"],
                "title": c["Title"],
                "hard_bounce": c["IsEmailBounced"]
                and (c["EmailBouncedReason"] or "").startswith("5"),
                # a date-only activity counts as the end of that day
                "activity": lad
                and datetime.fromisoformat(lad).replace(tzinfo=UTC) + timedelta(days=1),
                "created": _sf_dt(c["CreatedDate"]),
                "buying_roles": set(),
            }
        )
    opps = [
        {
            "id": o["Id"],
            "account": o["AccountId"],
            "closed": o["IsClosed"],
            "won": o["IsWon"],
            "close": date.fromisoformat(o["CloseDate"]),
        }
        for o in sf["Opportunity"]
    ]
    roles = [(r["OpportunityId"], r["ContactId"], r["Role"]) for r in sf["OpportunityContactRole"]]
    return accounts, contacts, opps, roles


def _hs_rows(hs: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    accounts = [
        {
            "id": a["id"],
            "tier": HS_TIER.get(a["properties"].get("hs_ideal_customer_profile", ""), "none"),
            "domain": a["properties"]["domain"],
            "renewal": (r := a["properties"].get("renewal_date")) and date.fromisoformat(r),
        }
        for a in hs["companies"]
    ]
    contacts = []
    for c in hs["contacts"]:
        p = c["properties"]
        last = p.get("notes_last_contacted")
        contacts.append(
            {
                "id": c["id"],
                "account": c["associations"]["companies"][0]["id"],
                "email": p.get("email"),
                "title": p.get("jobtitle"),
                # only these two make the contact bouncing: SPAM, POLICY and CONTENT are
                # about the sender, MAILBOX_FULL is temporary (api-facts §4)
                "hard_bounce": p.get("hs_email_hard_bounce_reason_enum")
                in {"UNKNOWN_USER", "OTHER"},
                "activity": last and _hs_dt(last),
                "created": _hs_dt(p["createdate"]),
                "buying_roles": {
                    BUYING_ROLE[v]
                    for v in p.get("hs_buying_role", "").split(";")
                    if v in BUYING_ROLE
                },
            }
        )
    opps, roles = [], []
    for d in hs["deals"]:
        p = d["properties"]
        opps.append(
            {
                "id": d["id"],
                "account": d["associations"]["companies"][0]["id"],
                "closed": p["hs_is_closed"] == "true",
                "won": p["hs_is_closed_won"] == "true",
                "close": _hs_dt(p["closedate"]).date(),
            }
        )
        roles += [(d["id"], a["id"], a["label"]) for a in d["associations"]["contacts"]]
    return accounts, contacts, opps, roles


# ------------------------------------------------------------------ determinism


def test_same_seed_and_args_give_byte_identical_json() -> None:
    a = json.dumps(generate(seed=5, accounts=30), sort_keys=True)
    b = json.dumps(generate(seed=5, accounts=30), sort_keys=True)
    assert a == b
    assert a != json.dumps(generate(seed=6, accounts=30), sort_keys=True)
    assert gc.isenabled()  # generate() pauses the cyclic GC and must restore it


def test_one_crm_alone_is_the_same_org_as_both_together(org: dict[str, Any]) -> None:
    hs_only = generate(seed=7, accounts=120, crms=("hubspot",))
    sf_only = generate(seed=7, accounts=120, crms=("salesforce",))
    assert hs_only["hubspot"] == org["hubspot"]
    assert sf_only["salesforce"] == org["salesforce"]
    assert hs_only["manifest"]["hubspot"] == org["manifest"]["hubspot"]
    assert "salesforce" not in hs_only


def test_iter_records_streams_the_same_records_and_fills_the_manifest(org: dict[str, Any]) -> None:
    manifest: dict[str, Any] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for crm, obj, _ in iter_records(seed=7, accounts=120, manifest=manifest):
        counts[(crm, obj)] += 1
    assert manifest == org["manifest"]
    for crm in ("salesforce", "hubspot"):
        for obj, n in org["manifest"][crm]["counts"].items():
            assert counts[(crm, obj)] == n == len(org[crm][obj])


def test_iter_crm_streams_one_crm_as_object_record_pairs() -> None:
    data = generate(seed=8, accounts=10, crms=("salesforce",))
    streamed: dict[str, list[Any]] = {}
    for obj, rec in iter_crm("salesforce", seed=8, accounts=10):
        streamed.setdefault(obj, []).append(rec)
    assert streamed == data["salesforce"]


def test_command_line_writes_a_dataset_file(tmp_path: Any) -> None:
    out = tmp_path / "org.json"
    assert generate_main(["--seed", "2", "--accounts", "4", "-o", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(generate(seed=2, accounts=4)))


# ------------------------------------------------------------------ the manifest tells the truth


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_manifest_case_lists_match_an_independent_reading_of_the_rules(
    org: dict[str, Any], crm: str
) -> None:
    rows = _sf_rows(org["salesforce"]) if crm == "salesforce" else _hs_rows(org["hubspot"])
    derived = _derive(*rows)
    m = org["manifest"][crm]
    for key, ids in derived.items():
        assert set(m[key]) == ids, key
        assert len(m[key]) == len(ids), f"duplicates in {key}"
    assert m["departed_champion"] and m["stale_contact"] and m["single_threaded_account"]


def test_both_crms_flag_the_same_people(org: dict[str, Any]) -> None:
    sf, hs = org["manifest"]["salesforce"], org["manifest"]["hubspot"]
    sf_names = {c["Id"]: (c["FirstName"], c["LastName"]) for c in org["salesforce"]["Contact"]}
    hs_names = {
        c["id"]: (c["properties"].get("firstname"), c["properties"]["lastname"])
        for c in org["hubspot"]["contacts"]
    }
    for key in ("stale_contact", "bouncing_contact", "departed_champion", "role_address"):
        assert [sf_names[i] for i in sf[key]] == [hs_names[i] for i in hs[key]], key
    for key in ("single_threaded_account", "renewal_soon_account"):
        assert len(sf[key]) == len(hs[key])


def test_situations_and_tiers_come_in_the_documented_proportions() -> None:
    data = generate(seed=11, accounts=80)  # two whole blocks of 40, four of 20
    m = data["manifest"]["salesforce"]
    for situation, per_block in SITUATION_BLOCK.items():
        assert len(m["account_situation"][situation]) == 2 * per_block, situation
    tiers = Counter(a["Tier__c"] for a in data["salesforce"]["Account"])
    assert tiers == {
        "Strategic": 4 * TIER_BLOCK["strategic"],
        "Growth": 4 * TIER_BLOCK["growth"],
        "Maintenance": 4 * TIER_BLOCK["maintenance"],
        None: 4 * TIER_BLOCK["none"],
    }
    hs_tiers = Counter(
        c["properties"].get("hs_ideal_customer_profile") for c in data["hubspot"]["companies"]
    )
    assert hs_tiers == {"tier_1": 8, "tier_2": 24, "tier_3": 32, None: 16}
    assert len(m["departed_champion"]) >= 8 * 2


def test_filler_defects_come_in_the_documented_proportions() -> None:
    m = generate(seed=2, accounts=400, contacts_per_account=6)["manifest"]["salesforce"]
    filler = sum(m["counts"].values()) and m["counts"]["Contact"]
    blocks = filler / sum(FILLER_BLOCK.values())
    for key, case in (
        ("hard_bounce", "hard_bounced_contact"),
        ("malformed_email", "malformed_email"),
        ("missing_email", "missing_email"),
        ("role_address", "role_address"),
    ):
        expected = FILLER_BLOCK[key] * blocks
        assert 0.3 * expected <= len(m[case]) <= 1.5 * expected + 3, case


def test_a_fifty_account_org_holds_every_case() -> None:
    m = generate(seed=1, accounts=50)["manifest"]
    for crm in ("salesforce", "hubspot"):
        mc = m[crm]
        for key in (
            "stale_contact",
            "single_threaded_account",
            "single_threaded_few_engaged",
            "single_threaded_missing_role",
            "bouncing_contact",
            "hard_bounced_contact",
            "soft_bounced_contact",
            "malformed_email",
            "missing_email",
            "role_address",
            "departed_champion",
            "moved_champion_pairs",
            "lapsed_role_contact",
            "unicode_name",
            "renewal_soon_account",
            "inactive_owner",
        ):
            assert mc[key], (crm, key)
        assert all(mc["departed_champion_by_signal"].values()), crm


# ------------------------------------------------------------------ planted cases look right


def test_departed_champions_show_their_signal_in_both_crms(org: dict[str, Any]) -> None:
    sf = {c["Id"]: c for c in org["salesforce"]["Contact"]}
    sf_acc = {a["Id"]: _domain(a["Website"]) for a in org["salesforce"]["Account"]}
    sig = org["manifest"]["salesforce"]["departed_champion_by_signal"]
    for cid in sig["bouncing"]:
        assert sf[cid]["IsEmailBounced"] and sf[cid]["EmailBouncedReason"].startswith("550 5.")
        assert SF_DT.match(sf[cid]["EmailBouncedDate"])
    for cid in sig["title"]:
        assert LEFT.search(sf[cid]["Title"])
    for cid in sig["email_domain"]:
        assert sf[cid]["Email"].rsplit("@", 1)[1] != sf_acc[sf[cid]["AccountId"]]
    hs = {c["id"]: c["properties"] for c in org["hubspot"]["contacts"]}
    for cid in org["manifest"]["hubspot"]["departed_champion_by_signal"]["bouncing"]:
        assert hs[cid]["hs_email_hard_bounce_reason_enum"] == "UNKNOWN_USER"
        assert hs[cid]["hs_email_hard_bounce_reason"].startswith("550 5.")


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_moved_champion_reappears_at_another_account_under_the_same_name(
    org: dict[str, Any], crm: str
) -> None:
    pairs = org["manifest"][crm]["moved_champion_pairs"]
    assert pairs
    if crm == "salesforce":
        people = {
            c["Id"]: (c["FirstName"], c["LastName"], c["Email"], c["AccountId"])
            for c in org["salesforce"]["Contact"]
        }
        domains = {a["Id"]: _domain(a["Website"]) for a in org["salesforce"]["Account"]}
    else:
        people = {
            c["id"]: (
                c["properties"].get("firstname"),
                c["properties"]["lastname"],
                c["properties"].get("email"),
                c["associations"]["companies"][0]["id"],
            )
            for c in org["hubspot"]["contacts"]
        }
        domains = {a["id"]: a["properties"]["domain"] for a in org["hubspot"]["companies"]}
    departed = set(org["manifest"][crm]["departed_champion"])
    for p in pairs:
        old, new = people[p["contact_id"]], people[p["new_contact_id"]]
        assert old[:2] == new[:2]
        assert old[3] == p["account_id"] != p["new_account_id"] == new[3]
        assert new[2].rsplit("@", 1)[1] == domains[p["new_account_id"]]
        assert p["contact_id"] in departed and p["new_contact_id"] not in departed


def test_malformed_missing_role_and_soft_bounced_emails_look_as_listed(org: dict[str, Any]) -> None:
    sf = {c["Id"]: c for c in org["salesforce"]["Contact"]}
    m = org["manifest"]["salesforce"]
    for cid in m["malformed_email"]:
        assert sf[cid]["Email"] and not _valid(sf[cid]["Email"])
    for cid in m["missing_email"]:
        assert sf[cid]["Email"] is None
    for cid in m["role_address"]:
        assert sf[cid]["Email"].split("@")[0] in W.ROLE_LOCALS
    for cid in m["soft_bounced_contact"]:
        assert sf[cid]["IsEmailBounced"] and sf[cid]["EmailBouncedReason"][:1] == "4"
        assert cid not in m["bouncing_contact"]
    for cid in m["lapsed_role_contact"]:
        assert cid in m["bouncing_contact"] and cid not in m["departed_champion"]
    listed_bad = set(m["malformed_email"]) | set(m["missing_email"])
    for c in org["salesforce"]["Contact"]:
        if c["Id"] not in listed_bad:
            assert _valid(c["Email"]), c["Id"]


def test_emails_are_unique_across_the_org_as_hubspot_requires(org: dict[str, Any]) -> None:
    emails = [c["properties"].get("email") for c in org["hubspot"]["contacts"]]
    present = [e.lower() for e in emails if e]
    assert len(present) == len(set(present))
    assert [c["Email"] for c in org["salesforce"]["Contact"]] == emails


def test_unicode_names_are_present_and_survive_json(org: dict[str, Any]) -> None:
    sf = {c["Id"]: c for c in org["salesforce"]["Contact"]}
    names = [
        sf[i]["FirstName"] + sf[i]["LastName"]
        for i in org["manifest"]["salesforce"]["unicode_name"]
    ]
    assert names and all(not n.isascii() for n in names)
    text = json.dumps(org, ensure_ascii=False)
    assert json.loads(text) == org


def test_no_ordinary_title_reads_like_someone_who_left() -> None:
    titles = list(W.FILLER_TITLES) + [t for ts in W.TITLES_BY_ROLE.values() for t in ts]
    assert not [t for t in titles if LEFT.search(t) or "former" in t.lower() or "left" in t.lower()]
    assert all(LEFT.search(t) for t in W.DEPARTED_TITLES)


# ------------------------------------------------------------------ well-formed records


def test_every_salesforce_reference_resolves(org: dict[str, Any]) -> None:
    sf = org["salesforce"]
    ids = {obj: {r["Id"] for r in recs} for obj, recs in sf.items()}
    for c in sf["Contact"]:
        assert c["AccountId"] in ids["Account"] and c["OwnerId"] in ids["User"]
    for a in sf["Account"]:
        assert a["OwnerId"] in ids["User"]
    for o in sf["Opportunity"]:
        assert o["AccountId"] in ids["Account"] and o["OwnerId"] in ids["User"]
    for r in sf["OpportunityContactRole"]:
        assert r["OpportunityId"] in ids["Opportunity"] and r["ContactId"] in ids["Contact"]
    primaries = Counter(r["OpportunityId"] for r in sf["OpportunityContactRole"] if r["IsPrimary"])
    assert set(primaries.values()) == {1}
    for t in sf["Task"]:
        assert t["WhoId"] in ids["Contact"] and t["WhatId"] in ids["Account"]
        assert t["OwnerId"] in ids["User"]


def test_every_hubspot_reference_resolves(org: dict[str, Any]) -> None:
    hs = org["hubspot"]
    ids = {obj: {r["id"] for r in recs} for obj, recs in hs.items()}
    owners = ids["owners"]
    for obj in ("companies", "contacts", "deals", "tasks"):
        for r in hs[obj]:
            assert r["properties"]["hubspot_owner_id"] in owners
    for c in hs["contacts"]:
        assert c["associations"] == {
            "companies": [{"id": c["properties"]["associatedcompanyid"], "label": "primary"}]
        }
        assert c["properties"]["associatedcompanyid"] in ids["companies"]
    for d in hs["deals"]:
        assert [a["label"] for a in d["associations"]["companies"]] == ["primary"]
        assert d["associations"]["companies"][0]["id"] in ids["companies"]
        for a in d["associations"]["contacts"]:
            assert a["id"] in ids["contacts"]
            assert a["label"] in (
                None,
                "Champion",
                "Economic Buyer",
                "Executive Sponsor",
                "Decision Maker",
            )
    for t in hs["tasks"]:
        assert t["associations"]["contacts"][0]["id"] in ids["contacts"]
        assert t["associations"]["companies"][0]["id"] in ids["companies"]


def test_salesforce_ids_and_timestamps_are_well_formed(org: dict[str, Any]) -> None:
    seen: set[str] = set()
    as_of = AS_OF
    for obj, recs in org["salesforce"].items():
        for r in recs:
            assert re.fullmatch(SF_PREFIX[obj] + r"5g[0-9A-Za-z]{13}", r["Id"]), r["Id"]
            assert r["Id"] not in seen
            seen.add(r["Id"])
            assert "attributes" not in r
            for f in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
                assert SF_DT.match(r[f]) and _sf_dt(r[f]) < as_of, (obj, f)
            assert _sf_dt(r["CreatedDate"]) <= _sf_dt(r["LastModifiedDate"])
    account_created = {a["Id"]: a["CreatedDate"] for a in org["salesforce"]["Account"]}
    for c in org["salesforce"]["Contact"]:
        assert account_created[c["AccountId"]] < c["CreatedDate"]
        assert c["LastActivityDate"] is None or DATE.match(c["LastActivityDate"])
        if c["LastActivityDate"]:
            assert c["LastActivityDate"] >= c["CreatedDate"][:10]
    for a in org["salesforce"]["Account"]:
        assert a["Tier__c"] in ("Strategic", "Growth", "Maintenance", None)
        assert a["Renewal_Date__c"] is None or DATE.match(a["Renewal_Date__c"])
    roles = {r["Role"] for r in org["salesforce"]["OpportunityContactRole"]}
    assert roles <= set(W.TITLES_BY_ROLE) | {None}


def test_hubspot_ids_and_properties_are_well_formed(org: dict[str, Any]) -> None:
    ranges = {
        "owners": 50_000_000,
        "companies": 100_000_000,
        "contacts": 200_000_000,
        "deals": 300_000_000,
        "tasks": 400_000_000,
    }
    for obj, recs in org["hubspot"].items():
        for r in recs:
            assert r["id"].isdigit() and ranges[obj] < int(r["id"]) < ranges[obj] + 50_000_000
        if obj == "owners":
            continue
        modified = "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
        for r in recs:
            props = r["properties"]
            assert all(isinstance(v, str) for v in props.values()), r["id"]
            assert HS_DT.match(props["createdate"]) and HS_DT.match(props[modified])
            assert _hs_dt(props[modified]) < AS_OF
    archived = [o for o in org["hubspot"]["owners"] if o["archived"]]
    assert len(archived) == 1
    assert {
        c["properties"].get("hs_ideal_customer_profile") for c in org["hubspot"]["companies"]
    } <= {"tier_1", "tier_2", "tier_3", None}
    for c in org["hubspot"]["contacts"]:
        last = c["properties"].get("notes_last_contacted")
        assert last is None or HS_DT.match(last)


def test_owners_scale_with_accounts_and_one_is_inactive() -> None:
    for accounts, owners in ((3, 3), (120, 5), (1000, 40)):
        data = generate(seed=1, accounts=accounts, contacts_per_account=1)
        users = data["salesforce"]["User"]
        assert len(users) == owners
        assert [u["IsActive"] for u in users].count(False) == 1
        assert len(data["hubspot"]["owners"]) == owners


def test_fast_salesforce_ids_equal_the_shared_sf_id() -> None:
    for prefix in SF_PREFIX.values():
        fast = SfIds(prefix)
        for n in [*range(4000), 238_327, 916_132_831, 916_132_832, 10**12]:
            assert fast(n) == sf_id(prefix, n)


# ------------------------------------------------------------------ sizes and options


@pytest.mark.parametrize("accounts", [1, 2, 3])
def test_a_tiny_org_works(accounts: int) -> None:
    data = generate(seed=4, accounts=accounts)
    assert len(data["salesforce"]["Account"]) == accounts == len(data["hubspot"]["companies"])
    assert data["manifest"]["salesforce"]["counts"]["Contact"] >= 4 * accounts
    json.dumps(data)


def test_contacts_per_account_sets_the_mean() -> None:
    m = generate(seed=9, accounts=400, contacts_per_account=20, crms=("hubspot",))["manifest"]
    assert 19 <= m["hubspot"]["counts"]["contacts"] / 400 <= 22


def test_as_of_moves_every_date() -> None:
    as_of = datetime(2025, 3, 1, tzinfo=UTC)
    data = generate(seed=1, accounts=20, as_of=as_of, crms=("salesforce",))
    created = max(_sf_dt(c["SystemModstamp"]) for c in data["salesforce"]["Contact"])
    assert as_of - timedelta(days=30) < created < as_of
    assert data["manifest"]["as_of"] == "2025-03-01T00:00:00Z"


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        generate(accounts=0)
    with pytest.raises(ValueError):
        generate(crms=("pipedrive",))
    with pytest.raises(ValueError):
        generate(contacts_per_account=0)


def test_bad_records_are_planted_only_when_asked(bad_org: dict[str, Any]) -> None:
    assert generate(seed=3, accounts=40)["manifest"]["salesforce"]["bad_records"] == []
    sf = {obj: {r["Id"]: r for r in recs} for obj, recs in bad_org["salesforce"].items()}
    bad = bad_org["manifest"]["salesforce"]["bad_records"]
    kinds = {(b["object"], b["kind"], b["field"]) for b in bad}
    assert kinds == {
        ("Account", "unknown_picklist", "Tier__c"),
        ("Contact", "bad_date", "Last_Contacted__c"),
        ("Contact", "extreme_date", "LastActivityDate"),
        ("Contact", "huge_text", "Description"),
        ("OpportunityContactRole", "unknown_picklist", "Role"),
    }
    for b in bad:
        value = sf[b["object"]][b["id"]][b["field"]]
        if b["kind"] == "huge_text":
            assert len(value) == 100_000
        elif b["kind"] == "bad_date":
            with pytest.raises(ValueError):
                date.fromisoformat(value)
        elif b["kind"] == "extreme_date":
            assert value == "4000-12-31"
        else:
            assert value in ("Platinum", "Chief Cheerleader")
    bad_ids = {b["id"] for b in bad}
    m = bad_org["manifest"]["salesforce"]
    for key in (
        "stale_contact",
        "bouncing_contact",
        "single_threaded_account",
        "departed_champion",
    ):
        assert not bad_ids & set(m[key])
    hs = {c["id"]: c["properties"] for c in bad_org["hubspot"]["contacts"]}
    hs_bad = {b["kind"]: b for b in bad_org["manifest"]["hubspot"]["bad_records"]}
    assert hs[hs_bad["bad_date"]["id"]]["notes_last_contacted"] == "not-a-date"
    assert hs[hs_bad["extreme_date"]["id"]]["notes_last_contacted"].startswith("4000-12-31")
    assert len(hs[hs_bad["huge_text"]["id"]]["message"]) == 100_000
    role = hs_bad["unknown_picklist"]
    deal = next(d for d in bad_org["hubspot"]["deals"] if d["id"] == role["id"])
    assert {"id": role["contact_id"], "label": "Chief Cheerleader"} in deal["associations"][
        "contacts"
    ]
    company = next(
        c
        for c in bad_org["hubspot"]["companies"]
        if c["properties"]["name"] == "Malformed Records Ltd"
    )
    assert company["properties"]["hs_ideal_customer_profile"] == "tier_9"


# ------------------------------------------------------------------ the emulators take it


def test_both_emulators_load_a_generated_org_with_bad_records(bad_org: dict[str, Any]) -> None:
    """In process, no server: the emulators' own load paths accept every record."""
    from crmsync.sandbox.hubspot import HubSpotSandbox
    from crmsync.sandbox.salesforce.server import SalesforceSandbox

    sf = SalesforceSandbox(dataset=bad_org, tls=False)
    try:
        for obj, n in bad_org["manifest"]["salesforce"]["counts"].items():
            seeded = 1 if obj == "User" else 0  # the org's integration user (the sandbox's own)
            assert len(sf.records(obj)) == n + seeded, obj
    finally:
        sf.stop()  # removes its temp dir; no server was started
    hs = HubSpotSandbox(dataset=bad_org)
    for obj, n in bad_org["manifest"]["hubspot"]["counts"].items():
        if obj != "owners":
            assert len(hs.records(obj)) == n, obj


def test_hubspot_enumeration_values_are_options_hubspot_has(org: dict[str, Any]) -> None:
    """Every seeded value of an enumeration with options is one of them (the sandbox refuses
    others on write, as HubSpot does; a dataset is loaded as stored)."""
    from crmsync.sandbox.hubspot.properties import Schema, bad_options

    for obj in ("companies", "contacts", "deals", "tasks"):
        schema = Schema(obj).props
        for rec in org["hubspot"][obj]:
            for name, value in rec["properties"].items():
                prop = schema.get(name)
                if prop is not None and value is not None:
                    assert not bad_options(prop, str(value)), (obj, rec["id"], name, value)


def test_hard_bounce_reasons_come_in_the_documented_mix() -> None:
    """The filler hard bounces draw HubSpot's six reasons in words.HARD_BOUNCE_MIX's weights
    (assumed, not measured: see there); 20,000 draws keep the shares within a few points."""
    from crmsync.sandbox.generate.model import Person
    from crmsync.sandbox.generate.world import World

    world = World(seed=9, accounts=1, contacts_per_account=1, as_of_ms=0)
    got: Counter[str] = Counter()
    kinds: dict[str, set[str]] = {}
    for _ in range(20_000):
        p = Person.__new__(Person)
        world._recorded_hard_bounce(p, 0)
        got[p.bounce_enum] += 1
        kinds.setdefault(p.bounce_enum, set()).add(p.bounce)
    total = sum(w for w, *_ in W.HARD_BOUNCE_MIX)
    for enum in got:
        expected = sum(w for w, _, e, _ in W.HARD_BOUNCE_MIX if e == enum) / total
        assert abs(got[enum] / 20_000 - expected) < 0.02, enum
    assert set(got) == {"UNKNOWN_USER", "MAILBOX_FULL", "SPAM", "POLICY", "CONTENT", "OTHER"}
    # only these make a contact bouncing; a full mailbox is soft; the rest are refusals
    assert kinds == {"UNKNOWN_USER": {"hard"}, "OTHER": {"hard"}, "MAILBOX_FULL": {"soft"},
                     "SPAM": {"refused"}, "POLICY": {"refused"}, "CONTENT": {"refused"}}
