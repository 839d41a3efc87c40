"""The outside people-data cache (state/enrichment.py) and the CSV provider's reading."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmsync.state import enrichment
from crmsync.state.model import OutsidePerson
from crmsync.sync.enrichment import CsvProvider, EnrichmentSettings
from tests.state.records import CRM, T0


def person(name: str, **kw) -> OutsidePerson:
    return OutsidePerson(kw.pop("role", "Champion"), name, **kw)


def test_an_answer_replaces_the_last_and_remembers_when(db):
    enrichment.store(db, CRM, "001A", "Champion", "csv", "acme.com", [person("Ann")], T0)
    later = T0 + timedelta(days=1)
    enrichment.store(db, CRM, "001A", "champion", "csv", "acme.com", [person("Bo")], later)
    assert [p.name for _, p in enrichment.people(db, CRM)] == ["Bo"]
    assert enrichment.fetched_at(db, CRM, "csv") == {("001A", "champion"): later}


def test_nobody_found_is_remembered_too(db):
    assert enrichment.store(db, CRM, "001A", "Champion", "csv", "acme.com", [], T0) == 0
    assert enrichment.fetched_at(db, CRM, "csv") == {("001A", "champion"): T0}
    assert enrichment.people(db, CRM) == []


def test_outside_text_is_cleaned_bounded_and_capped(db):
    hostile = [person("Eve\x00 " + "x" * 2000, title="VP\nSales", source="")] + [
        person(f"P{i}") for i in range(20)
    ]
    kept = enrichment.store(db, CRM, "001A", "Champion", "fake", None, hostile, T0)
    assert kept == enrichment.MAX_PER_LOOKUP
    first = enrichment.people(db, CRM, ["001A"])[0][1]
    assert "\x00" not in first.name and len(first.name) <= 500
    assert first.title == "VP Sales" and first.source == "fake"
    assert enrichment.people(db, CRM, ["001B"]) == []


def test_the_csv_provider_matches_domains_and_roles(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "\ufeffDomain,Name,Title,Email,Role,Source\n"
        "https://www.acme.com/,Ann Able,CFO,ann@acme.com,Economic Buyer,\n"
        "acme.com,Bo Birch,VP Sales,,,LinkedIn export\n"
        "eu.acme.com,Cy Cole,VP Ops,,,\n"
        "notacme.com,Di Dee,CEO,,,\n"
        ",No Domain,CEO,,,\n",
        encoding="utf-8",
    )
    provider = CsvProvider(EnrichmentSettings(provider="csv", csv_path=path))
    found = provider.candidates("acme.com", "Champion")
    assert [(p.name, p.source) for p in found] == [("Bo Birch", "LinkedIn export")]
    eb = provider.candidates("eu.acme.com", "economic buyer")
    assert [p.name for p in eb] == ["Ann Able", "Bo Birch", "Cy Cole"]
    assert eb[0].source == "CSV file people.csv" and eb[0].role == "economic buyer"


def test_the_csv_provider_needs_a_header(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("acme.com,Ann\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header row"):
        CsvProvider(EnrichmentSettings(provider="csv", csv_path=path))


def test_prune_forgets_stale_answers_other_providers_and_everything_when_off(db):
    later = T0 + timedelta(days=40)
    enrichment.store(db, CRM, "001A", "Champion", "csv", "a.com", [person("Old")], T0)
    enrichment.store(db, CRM, "001B", "Champion", "csv", "b.com", [person("New")], later)
    enrichment.store(db, CRM, "001C", "Champion", "acme", "c.com", [person("Acme")], later)
    assert enrichment.prune(db, CRM, "csv", before=later - timedelta(days=30)) == 2
    assert [(a, p.name) for a, p in enrichment.people(db, CRM)] == [("001B", "New")]
    assert list(enrichment.fetched_at(db, CRM, "csv")) == [("001B", "champion")]
    assert enrichment.prune(db, CRM, "") == 1
    assert enrichment.people(db, CRM) == [] and enrichment.fetched_at(db, CRM, "csv") == {}
