"""What each CRM's converters accept (connectors/convert.py): one table per CRM.

The two connectors share the converters; where their CRMs send different things the
difference is a parameter, and these tables pin it, so sharing more code can never
quietly widen or narrow what one CRM's values may be.
"""

from datetime import UTC, date, datetime

import pytest

from crmsync.connectors.hubspot import fields as hs
from crmsync.connectors.salesforce import fields as sf

BAD = ValueError

SALESFORCE_BOOLS = [
    (None, None), ("", None), (True, True), (False, False), (1, True), (0, False),
    ("true", True), ("false", False), ("TRUE", True), ("False", False),
    ("yes", BAD), ("no", BAD), ("y", BAD), ("1", BAD), ("0", BAD), (" true", BAD), (2, BAD), (1.0, BAD),
]  # fmt: skip
HUBSPOT_BOOLS = [
    (None, None), ("", None), (True, True), (False, False), (1, True), (0, False),
    ("true", True), ("false", False), ("TRUE", True), ("False", False),
    ("yes", True), ("no", False), ("Y", True), ("n", False), ("1", True), ("0", False),
    (" true ", True), ("maybe", BAD), (2, BAD), (1.0, BAD),
]  # fmt: skip


def _check(convert, value, want):
    if want is BAD:
        with pytest.raises(ValueError):
            convert(value)
    else:
        assert convert(value) == want


@pytest.mark.parametrize(("value", "want"), SALESFORCE_BOOLS)
def test_salesforce_booleans_are_json_booleans_or_true_false(value, want):
    _check(sf.to_bool, value, want)


@pytest.mark.parametrize(("value", "want"), HUBSPOT_BOOLS)
def test_hubspot_booleans_also_take_yes_no_and_one_zero(value, want):
    _check(hs.to_bool, value, want)


@pytest.mark.parametrize(
    ("value", "sf_want", "hs_want"),
    [
        (None, None, None),
        ("", None, None),
        ("  ", "  ", None),  # HubSpot sends blanks for a cleared property
        ("Ada", "Ada", "Ada"),
        (" Ada ", " Ada ", " Ada "),
        (42, "42", "42"),
    ],
)
def test_text_is_none_for_nothing_and_for_blanks_on_hubspot(value, sf_want, hs_want):
    assert sf.to_text(value) == sf_want
    assert hs.to_text(value) == hs_want


@pytest.mark.parametrize("convert", [sf.to_date, hs.to_date], ids=["salesforce", "hubspot"])
@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, None),
        ("", None),
        ("2026-05-01", date(2026, 5, 1)),
        (" 2026-05-01 ", date(2026, 5, 1)),
        (date(2026, 5, 1), date(2026, 5, 1)),
        (datetime(2026, 5, 1, 23, 0, tzinfo=UTC), date(2026, 5, 1)),
        ("2026-05-01T23:59:59Z", date(2026, 5, 1)),
        ("2026-05-01T23:59:59.000+0000", date(2026, 5, 1)),
        ("2026-05-02T01:00:00+02:00", date(2026, 5, 1)),  # the UTC day
        ("2026-13-01", BAD),
        ("soon", BAD),
    ],
)
def test_dates_from_either_crm(convert, value, want):
    _check(convert, value, want)


def test_hubspot_dates_also_come_as_epoch_milliseconds():
    assert hs.to_date("1777593600000") == date(2026, 5, 1)


@pytest.mark.parametrize("convert", [sf.to_number, hs.to_number], ids=["salesforce", "hubspot"])
@pytest.mark.parametrize(
    ("value", "want"),
    [(None, None), ("", None), (12, 12.0), (12.5, 12.5), ("12.5", 12.5), (" 7 ", 7.0),
     (True, BAD), ("twelve", BAD)],
)  # fmt: skip
def test_numbers_from_either_crm(convert, value, want):
    _check(convert, value, want)


# Salesforce hands the mirror its values in stored form (fields.py "stored form"): each
# must be what the mirror would store for the canonical converter's value, or a pull
# after an upgrade would rewrite every row, and raise where that converter raises.
SALESFORCE_STORED = [
    (sf.parse_datetime, sf.stored_datetime, "created_at", [
        None, "", "2026-05-01T12:34:56.789+0000", "2026-05-01T12:34:56.000+0000",
        "2026-05-01T12:34:56Z", "2026-05-01T14:34:56.789+02:00", "2026-05-01T12:34:56",
        1777638896789, "1777638896789", "2026-W18-5T12:34:56.789+0000", "2026-02-30T12:34:56.789+0000",
        "not a date", True,
    ]),
    (sf.to_midnight, sf.stored_midnight, "last_activity_at", [
        None, "", "2026-05-01", "2026-W18-5", "2026-02-30", "2026-05-01T23:30:00.000-0500", "x",
    ]),
    (sf.to_date, sf.stored_date, "close_date", [None, "", "2026-05-01", "2026-05-01T10:00:00.000+0000", "x"]),
    (sf.to_bool, sf.stored_bool, "is_won", [None, "", True, False, "true", "FALSE", "yes", 2]),
    (sf.to_flag, sf.stored_flag, "left_company", [None, "", False, True, "2026-05-01", "no", "0"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("convert", "stored", "column", "value"),
    [(c, s, col, v) for c, s, col, values in SALESFORCE_STORED for v in values],
)
def test_salesforce_stored_form_is_what_the_mirror_stores(convert, stored, column, value):
    from crmsync.state.db import ENCODERS, column_kind

    try:
        model = convert(value)
    except (ValueError, TypeError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            stored(value)
        return
    want = None if model is None else ENCODERS[column_kind(column)](model)
    assert stored(value) == want
