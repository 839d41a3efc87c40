"""The leader report's words, links, Markdown escaping and charts, without a mirror (issue 15)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from crmsync.sync import charts, leader_md, leader_report

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("NOT_STARTED", "Not started"),  # HubSpot hs_task_status
        ("Not Started", "Not started"),  # Salesforce Task.Status
        ("IN_PROGRESS", "In progress"),
        ("WAITING", "Waiting on someone else"),
        ("Waiting on someone else", "Waiting on someone else"),
        ("COMPLETED", "Completed"),
        ("HIGH", "High"),
        ("Normal", "Normal"),
        ("SOME_CUSTOM_VALUE", "Some custom value"),
        (None, ""),
    ],
)
def test_crm_enums_are_shown_in_words(stored: str | None, shown: str) -> None:
    assert leader_report.enum_words(stored) == shown


def test_rules_are_shown_in_words() -> None:
    assert leader_report.rule_words("single_threaded_account") == "Single-threaded account"
    assert leader_report.rule_words("departed_champion") == "Departed champion"
    assert leader_report.rule_words("some_new_rule") == "Some new rule"


def test_how_soon_in_words() -> None:
    assert [leader_report.in_days(n) for n in (0, 1, 23, -1, -4)] == [
        "today", "in 1 day", "in 23 days", "1 day ago", "4 days ago",
    ]


def _cfg(instance_url: str = "") -> SimpleNamespace:
    return SimpleNamespace(connectors={"salesforce": SimpleNamespace(instance_url=instance_url)})


def test_record_links_follow_each_crms_url_format() -> None:
    info = {
        "salesforce": {"instance_url": "https://acme.my.salesforce.com"},
        "hubspot": {"portal_id": "123456", "ui_domain": "app-eu1.hubspot.com"},
    }
    links, missing = leader_report._linkers(_cfg(), info, ["salesforce", "hubspot"])  # type: ignore[arg-type]
    assert missing == []
    assert links["salesforce"]("001A000001") == (
        "https://acme.my.salesforce.com/lightning/r/Account/001A000001/view"
    )
    assert links["hubspot"]("9001") == "https://app-eu1.hubspot.com/contacts/123456/record/0-2/9001"
    # an id is a path segment, whatever it holds
    assert links["hubspot"]("../x?y") == (
        "https://app-eu1.hubspot.com/contacts/123456/record/0-2/..%2Fx%3Fy"
    )


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "https://user@evil.example", "ftp://host", "https://bad host", ""],
)
def test_no_link_from_an_instance_url_that_is_not_a_plain_web_address(url: str) -> None:
    info = {"salesforce": {"instance_url": url}, "hubspot": {"portal_id": "12ab"}}
    links, missing = leader_report._linkers(_cfg(), info, ["salesforce", "hubspot"])  # type: ignore[arg-type]
    assert links == {}
    assert [m.split(":")[0] for m in missing] == ["Salesforce", "HubSpot"]


def test_the_configured_instance_url_is_the_fallback() -> None:
    links, _ = leader_report._linkers(_cfg("https://acme.my.salesforce.com/"), {}, ["salesforce"])  # type: ignore[arg-type]
    assert links["salesforce"]("001").startswith("https://acme.my.salesforce.com/lightning/r/")


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("<script>alert(1)</script>", r"\<script\>alert(1)\</script\>"),
        ("[/]", r"\[/\]"),
        ("[click](http://evil.example)", r"\[click\](http://evil.example)"),
        ("*bold* _it_ `code` ~~x~~ a|b", r"\*bold\* \_it\_ \`code\` \~\~x\~\~ a\|b"),
        ("back\\slash", "back\\\\slash"),
        ("R&D &amp; &#60;", r"R&D \&amp; \&#60;"),
        ("two\nlines\x1b[31m", r"two lines\[31m"),
    ],
)
def test_markdown_shows_crm_text_as_typed(text: str, markdown: str) -> None:
    assert leader_md.md(text) == markdown


def test_charts_are_valid_svg_with_their_labels_escaped() -> None:
    colours = {"green": ("#0a0", "#fff"), "red": ("#a00", "#fff")}
    bars = charts.stacked_bars(
        [("<b>&", {"green": 3, "red": 1}), ("empty", {})], colours, title="a <title>"
    )
    root = ET.fromstring(bars)
    assert root.tag == f"{SVG}svg" and root.get("aria-label") == "a <title>"
    assert [t.text for t in root.iter(f"{SVG}text")][:3] == ["<b>&", "3", "1"]
    widths = [float(r.get("width") or 0) for r in root.iter(f"{SVG}rect")][:2]
    assert widths[0] == pytest.approx(3 * widths[1])  # 3 green to 1 red
    line = charts.line_chart(
        [("Open", "#333", [5, 8, 3]), ("Serious", "#a00", [1, 1, 0])],
        ["1 Nov", "8 Nov", "15 Nov"],
        title="t",
    )
    root = ET.fromstring(line)
    assert len(list(root.iter(f"{SVG}circle"))) == 6
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    single = ET.fromstring(charts.line_chart([("Open", "#333", [4])], ["1 Nov"], title="t"))
    assert len(list(single.iter(f"{SVG}circle"))) == 1
