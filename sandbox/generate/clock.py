"""Cheap, exact timestamp formatting for the generator.

Why: a million contacts carry several timestamps each; `datetime` objects and
`strftime` per value would dominate generation time. Times are integer epoch
milliseconds; a day's date string is cached and the time of day comes from a
table of 86,400 precomputed "HH:MM:SS" strings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HMS: list[str] = [
    f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
]
_MS3: list[str] = [f"{i:03d}" for i in range(1000)]
_DAYS: dict[int, str] = {}


def epoch_ms(dt: datetime) -> int:
    """Aware (or naive = UTC) datetime -> epoch milliseconds."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def day_str(day: int) -> str:
    """Days since the epoch -> "YYYY-MM-DD"."""
    s = _DAYS.get(day)
    if s is None:
        s = _DAYS[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
    return s


def date_of(ms: int) -> str:
    """Epoch ms -> the UTC date "YYYY-MM-DD"."""
    day = ms // DAY_MS
    return _DAYS.get(day) or day_str(day)


def sf_datetime(ms: int) -> str:
    """Epoch ms -> Salesforce's "2026-05-01T12:34:56.000+0000"."""
    day, rem = divmod(ms, DAY_MS)
    return f"{_DAYS.get(day) or day_str(day)}T{_HMS[rem // 1000]}.000+0000"


def hs_datetime(ms: int) -> str:
    """Epoch ms -> HubSpot's "2026-05-01T12:34:56.789Z"."""
    day, rem = divmod(ms, DAY_MS)
    sec, milli = divmod(rem, 1000)
    return f"{_DAYS.get(day) or day_str(day)}T{_HMS[sec]}.{_MS3[milli]}Z"


def hs_midnight(day: int) -> str:
    """A date as HubSpot's datetime at UTC midnight (deal closedate)."""
    return f"{day_str(day)}T00:00:00.000Z"
