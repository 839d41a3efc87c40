"""Converters from a CRM's field values to canonical values, shared by both connectors.

Each connector's fields.py names its converters after these (`to_text`, `to_bool`,
`to_date`, `to_number`) and passes what its CRM sends, so where the two CRMs differ the
difference is spelled out here, next to the code, and pinned by a table test per CRM
(tests/connectors/test_convert.py):

- booleans: a Salesforce checkbox is a JSON boolean (its CSV form "true"/"false"); a HubSpot
  boolean property is a string, and a custom property a portal made may say "yes"/"no".
- text: HubSpot sends "" or whitespace for a cleared property, so blank text is None there;
  Salesforce keeps whitespace it stored.
- dates and datetimes: each CRM has its own datetime wire form, so `to_date` takes the
  connector's `parse_datetime`.

A value a converter cannot read raises ValueError; fields.py turns that into
MalformedRecord for the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class Booleans:
    """The spellings a CRM uses for true and false in text (lower case)."""

    spellings: Mapping[str, bool]
    strip: bool  # surrounding spaces allowed


SALESFORCE_BOOLEANS = Booleans({"true": True, "false": False}, strip=False)
HUBSPOT_BOOLEANS = Booleans(
    {"true": True, "1": True, "yes": True, "y": True, "false": False, "0": False, "no": False, "n": False},
    strip=True,
)


def to_bool(value: Any, booleans: Booleans) -> bool | None:
    """None for nothing; a bool, 0 or 1, or one of the CRM's spellings; else ValueError."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = value.strip().lower() if booleans.strip else value.lower()
        if key in booleans.spellings:
            return booleans.spellings[key]
    raise ValueError(f"not a boolean: {value!r}")


def to_text(value: Any, *, blank_is_none: bool) -> str | None:
    """None for nothing (and, with `blank_is_none`, for whitespace); else the text."""
    if value is None or value == "":
        return None
    s = value if isinstance(value, str) else str(value)
    return None if blank_is_none and not s.strip() else s


def to_date(value: Any, parse_datetime: Callable[[Any], datetime | None]) -> date | None:
    """A date from a date, a datetime (its UTC day), `YYYY-MM-DD`, or the CRM's datetime text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    s = str(value).strip()
    if len(s) == 10 and s[4] == "-":
        return date.fromisoformat(s)
    dt = parse_datetime(s)
    return None if dt is None else dt.date()


def to_number(value: Any) -> float | None:
    """A float from a number or its text; a boolean is not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    return float(value if isinstance(value, int | float) else str(value).strip())
