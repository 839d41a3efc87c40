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
