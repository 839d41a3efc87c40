"""Fault matrix X2 and X3 (docs/reliability.md): encodings and big values, through
simple-salesforce and hubspot-api-client against the sandboxes.

X2: a Bulk API 2.0 result whose Content-Type names the wrong charset, or none, is still
UTF-8 bytes (simple-salesforce itself decodes Bulk results as UTF-8: bulk2.py); crmsync
decodes the bytes, so no value comes back as mojibake.

X3: Salesforce long text areas hold up to 131,072 characters; a HubSpot text value 65,536
entered in the CRM and more from a form; records of 60 KB. Pulls must not fail on the csv
module's field limit (131,072 by default), pages shrink for big records (Salesforce caps a
REST page at 200 rows when two custom long text areas are selected; crmsync asks for fewer
rows and cuts Pages by size: connectors/*/pull.py), and the largest values crmsync itself
writes (task bodies, capped at 32,000 characters) land in full batches. Peak memory of such
pulls is measured in bench/ (bench/README.md "Big records"), not here.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from simple_salesforce import Salesforce
from test_hubspot_support import FakeTime, connect, dataset, pull_all, serve_dates_from

from crmsync.connectors.base import Secret
from crmsync.connectors.hubspot import pull as hs_pull
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector, Settings
from crmsync.connectors.salesforce import pull as sf_pull
from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.state.model import ObjectType, OutboxItem, WriteKind
from crmsync.sync.tasks import BODY_MAX
from tests.clock import crm_now

C = ObjectType.CONTACT
LINE = 'Zoë Köln 東京 مرحبا e\u0301 🙂 "quoted", a line\r\n'  # multi-byte, quotes, CR/LF


def text(n: int, line: str = LINE) -> str:
    return (line * (n // len(line) + 1))[:n]


# ------------------------------------------------------------------ Salesforce

SF_DATA = generate(seed=11, accounts=30, crms=("salesforce",))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def sf_box():
    with SalesforceSandbox(SF_DATA).start() as sb:
        yield sb


@pytest.fixture
def sb(sf_box):
    sf_box.reset(SF_DATA)
    sf_box.query_page_bytes = None
    return sf_box


def sf_connect(sb: SalesforceSandbox, **kw: Any) -> SalesforceConnector:
    settings = Settings(
        login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file, username=USERNAME,
        password=Secret(PASSWORD, "test"), security_token=Secret(SECURITY_TOKEN, "test"), **kw,
    )  # fmt: skip
    return SalesforceConnector(settings, sleep=Sleeps(), retry=RetryPolicy(max_attempts=5))


def sf_pull_all(conn: SalesforceConnector, obj: ObjectType = C) -> tuple[dict[str, Any], list[int]]:
    """Records by id, and the size of each Page."""
    out: dict[str, Any] = {}
    sizes: list[int] = []
    for page in conn.pull(obj, None, full=True, started_at=crm_now()):
        out.update({r.id: r for r in page.records})
        if page.records:
            sizes.append(len(page.records))
    return out, sizes


def contact_ids(sb: SalesforceSandbox) -> list[str]:
    return sorted(r["Id"] for r in sb.records("Contact") if not r.get("IsDeleted"))


def sf_client(sb: SalesforceSandbox) -> Salesforce:
    session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
    return Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN,
                      session=session)


@pytest.mark.parametrize("charset", ["ISO-8859-1", "windows-1252", None])
def test_x2_bulk_results_with_a_wrong_or_missing_charset_keep_their_utf8_text(sb, charset):
    ids = contact_ids(sb)
    odd = {cid: f"{i} Zoë Köln 東京 مرحبا e\u0301 🙂 ß€"[:80] for i, cid in enumerate(ids[:40])}
    for cid, title in odd.items():
        sb.update("Contact", cid, {"Title": title})
    rule = sb.faults.add(kind="bulk_charset", route="bulk2_query_results",
                         **({"charset": charset} if charset else {}))

    # The header really lies: a reader that trusts it (requests' .text) gets mojibake.
    sf = sf_client(sb)
    job = sf.restful("jobs/query", method="POST",
                     json={"operation": "query", "query": "SELECT Id, Title FROM Contact"})
    raw = sf.session.get(f"{sf.base_url}jobs/query/{job['id']}/results",
                         headers={"Authorization": f"Bearer {sf.session_id}"})
    assert raw.headers["Content-Type"] == (f"text/csv;charset={charset}" if charset else "text/csv")
    assert raw.text != raw.content.decode("utf-8")

    contacts, _ = sf_pull_all(sf_connect(sb, bulk="always"))
    assert rule.fired >= 1
    for cid, title in odd.items():
        assert contacts[cid].values["title"] == title


@pytest.mark.parametrize("bulk", ["never", "always"])
def test_x3_long_text_areas_of_131072_characters_pull_whole_over_rest_and_bulk(sb, bulk):
    for name in ("Notes_A__c", "Notes_B__c"):
        sb.add_field("Contact", name, "LongTextArea", length=131_072)
    ids = contact_ids(sb)
    full, half = text(131_072), text(30_000)  # a full field; a ~60 KB record
    want = {}
    for i, cid in enumerate(ids):
        want[cid] = {"Notes_A__c": full if i % 10 == 0 else half, "Notes_B__c": half}
        sb.update("Contact", cid, want[cid])
    conn = sf_connect(sb, bulk=bulk, extra_fields={"Contact": ["Notes_A__c", "Notes_B__c"]})
    contacts, _ = sf_pull_all(conn)
    assert set(contacts) == set(ids)
    for cid, values in want.items():
        raw = contacts[cid].raw
        assert (raw["Notes_A__c"], raw["Notes_B__c"]) == (values["Notes_A__c"], values["Notes_B__c"])
    if bulk == "never":
        # two custom long text areas: Salesforce pages them 200 rows at a time (SOQL reference)
        assert conn.calls.by_operation["query"] == math.ceil(len(ids) / 200)


def test_x3_bulk_results_of_big_records_come_in_chunks_sized_to_the_records(sb, monkeypatch):
    # Salesforce: "To prevent a timeout, specify the maximum number of records your client is
    # expecting to receive in the maxRecords parameter" (Bulk API 2.0, query results). With a
    # 4 MiB budget instead of 256 MiB, 300-odd records of ~60 KB need several chunks.
    monkeypatch.setattr(sf_pull, "RESULT_BYTES", 4 * 2**20)
    for name in ("Notes_A__c", "Notes_B__c"):
        sb.add_field("Contact", name, "LongTextArea", length=131_072)
    ids = contact_ids(sb)
    half = text(30_000)
    for cid in ids:
        sb.update("Contact", cid, {"Notes_A__c": half, "Notes_B__c": half})
    conn = sf_connect(sb, bulk="always", extra_fields={"Contact": ["Notes_A__c", "Notes_B__c"]})
    contacts, _ = sf_pull_all(conn)
    assert set(contacts) == set(ids)
    assert all(contacts[c].raw["Notes_A__c"] == half for c in ids)
    total = len(ids) * 2 * len(half.encode("utf-8"))
    chunks = sb.requests.count(route="bulk2_query_results")
    floor = math.ceil(total / sf_pull.RESULT_BYTES)
    assert floor <= chunks <= 2 * floor + 2  # sized to the records: neither one nor hundreds


def test_x3_a_csv_field_past_the_csv_modules_default_limit_is_read_whole(sb):
    # No documented Salesforce field holds more than 131,072 characters, which is exactly
    # the csv module's default field_size_limit: one character more in a Bulk CSV cell
    # (a value an org counts differently) would fail the whole pull. The sandbox lets an
    # admin define a longer field; crmsync lifts the limit (connectors/salesforce/pull.py).
    sb.add_field("Contact", "Huge__c", "textarea", length=200_000, custom=True)
    cid = contact_ids(sb)[0]
    sb.update("Contact", cid, {"Huge__c": text(200_000)})
    contacts, _ = sf_pull_all(sf_connect(sb, bulk="always", extra_fields={"Contact": ["Huge__c"]}))
    assert contacts[cid].raw["Huge__c"] == text(200_000)


def test_x3_big_records_move_to_bulk_when_their_rest_pages_are_small():
    # 2,000+ contacts with two custom long text areas: Salesforce answers 200 rows a page,
    # so REST would cost ~ n / 200 calls; `bulk = "auto"` counts the page it got, not the
    # 2,000 it asked for, and moves the rest to one Bulk job.
    data = generate(seed=12, accounts=220, crms=("salesforce",))
    with SalesforceSandbox(data).start() as box:
        for name in ("Notes_A__c", "Notes_B__c"):
            box.add_field("Contact", name, "LongTextArea", length=131_072)
        n = len(contact_ids(box))
        assert n > 2000
        conn = sf_connect(box, bulk="auto", extra_fields={"Contact": ["Notes_A__c", "Notes_B__c"]})
        contacts, _ = sf_pull_all(conn)
        assert len(contacts) == n
        assert conn.stats[C].path == "rest+bulk"
        assert conn.calls.by_operation["query"] == 1
        assert conn.calls.by_operation["query"] + conn.calls.by_operation["bulk"] < n / 200


def test_x3_rest_pages_shrink_when_records_are_big(sb):
    # One 131,072-character custom field: no documented page cap applies, so crmsync asks
    # for fewer rows itself, and for fewer again once a page it got held more than its
    # budget (wide characters take 4 bytes each in Python).
    sb.add_field("Contact", "Notes_A__c", "LongTextArea", length=131_072)
    ids = contact_ids(sb)
    big = text(131_072)
    for cid in ids:
        sb.update("Contact", cid, {"Notes_A__c": big})
    conn = sf_connect(sb, bulk="never", extra_fields={"Contact": ["Notes_A__c"]})
    contacts, sizes = sf_pull_all(conn)
    assert all(contacts[cid].raw["Notes_A__c"] == big for cid in ids)
    first = sf_pull.PAGE_BYTES // (131_072 + 2048)
    assert sizes[0] == first < sf_pull.PAGE_SIZE
    assert max(sizes[1:]) < first  # the first page held more than the budget
    assert min(sizes[:-1]) >= sf_pull.MIN_PAGE_SIZE


def test_x3_pages_the_server_cuts_by_size_are_followed_to_the_end(sb):
    # The sandbox's harsher reading of "this can be smaller if you have included blob
    # fields" (help article 000386264): pages end at 1 MiB of records, whatever was asked.
    sb.add_field("Contact", "Notes_A__c", "LongTextArea", length=131_072)
    ids = contact_ids(sb)
    for cid in ids:
        sb.update("Contact", cid, {"Notes_A__c": text(40_000, "plain ascii line\n")})
    sb.query_page_bytes = 2**20
    conn = sf_connect(sb, bulk="never", extra_fields={"Contact": ["Notes_A__c"]})
    contacts, _ = sf_pull_all(conn)
    assert set(contacts) == set(ids)
    assert conn.calls.by_operation["query"] >= math.ceil(len(ids) * 40_000 / 2**20)


def _task(n: int, owner: str, account: str, body: str) -> OutboxItem:
    return OutboxItem(
        id=n, crm="x", kind=WriteKind.CREATE_TASK, key=f"x3-{n}", target_id=None,
        payload={"key": f"x3-{n}", "subject": f"Big body {n}", "body": body,
                 "owner_id": owner, "account_id": account, "status": "open",
                 "priority": "normal", "due_date": "2026-12-01"},
    )  # fmt: skip


def test_x3_salesforce_task_writes_with_the_largest_bodies_land_in_full_batches(sb):
    conn = sf_connect(sb)
    conn.ensure_fields(dry_run=False)
    owner = SF_DATA["salesforce"]["User"][0]["Id"]
    account = SF_DATA["salesforce"]["Account"][0]["Id"]
    body = text(BODY_MAX)
    items = [_task(n, owner, account, body) for n in range(1, 201)]  # one collection: 200 rows
    before = conn.calls.total
    results = conn.write(items)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert conn.calls.total - before == 1
    landed = sf_client(sb).query_all(
        "SELECT Description FROM Task WHERE Crmsync_Key__c LIKE 'x3-%'")["records"]
    assert len(landed) == 200 and {t["Description"] for t in landed} == {body}


# ------------------------------------------------------------------ HubSpot


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    serve_dates_from(monkeypatch, fake)
    return fake


@pytest.fixture
def hs(clock):
    box = HubSpotSandbox(dataset=dataset(contacts=400, companies=4, deals=2),
                         clock=clock.time, sleep=clock.sleep).start()
    yield box
    box.stop()


def test_x3_hubspot_100kb_values_and_60kb_records_pull_whole_in_smaller_pages(hs, clock):
    hs.add_property("contacts", "notes_big")
    ids = [r["id"] for r in hs.records("contacts")]
    normal, huge = text(60_000), text(100_000)
    for i, rid in enumerate(ids):  # set as a form would: no 65,536 limit
        hs.update("contacts", rid, {"notes_big": huge if i % 25 == 0 else normal}, source="import")
    conn = connect(hs, clock, extra_properties={"contacts": ("notes_big",)})
    hs.reset()
    records, _, pages = pull_all(conn, C, full=True)
    assert set(records) == set(ids)
    for i, rid in enumerate(ids):
        assert records[rid].raw["properties"]["notes_big"] == (huge if i % 25 == 0 else normal)
    sizes = [len(p.records) for p in pages if p.records]
    # Pages end at CHUNK_BYTES of values, not at 1,000 records: one association read each
    assert max(sizes) < hs_pull.CHUNK and len(sizes) > 1
    assert hs.requests.count("assoc_batch_read") == len(sizes)


def test_x3_hubspot_api_refuses_text_over_65536_characters_whole_batch(hs, clock):
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    client = HubSpot(access_token="pat-sandbox-0000", host=hs.url, retry=Retry(0))
    ok, too_long = text(65_536), text(65_537)
    with pytest.raises(Exception) as e:
        client.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": "5", "properties": {"jobtitle": "fine"}},
                       {"id": "6", "properties": {"firstname": too_long}}]})
    assert e.value.status == 400 and "VALIDATION_ERROR" in e.value.body
    assert hs.record("contacts", "5")["jobtitle"] != "fine"  # the whole batch was refused
    client.crm.contacts.basic_api.update("6", simple_public_object_input={
        "properties": {"firstname": ok}})
    assert hs.record("contacts", "6")["firstname"] == ok


def test_x3_hubspot_task_writes_with_the_largest_bodies_land_in_full_batches(hs, clock):
    conn = connect(hs, clock)
    conn.ensure_fields(dry_run=False)
    body = text(BODY_MAX)
    items = [_task(n, "501", "1", body) for n in range(1, 101)]  # one batch: 100 inputs
    results = conn.write(items)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert hs.requests.count("batch_create") == 1
    tasks = [t for t in hs.records("tasks") if t["properties"].get("crmsync_key", "").startswith("x3-")]
    assert len(tasks) == 100 and {t["properties"]["hs_task_body"] for t in tasks} == {body}
