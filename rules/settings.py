"""Settings shared by the rules, and the strict reader of `[rules.*]` tables.

Every rule declares a frozen `Settings` dataclass whose defaults equal
docs/design.md. `from_table` (state/settings.py, shared with sync/config.py) fills one
from a sync.toml table: unknown keys and wrong types raise `ValueError` naming the key
and the fix; each dataclass's `__post_init__` checks ranges. sync/config.py turns the
ValueError into exit 2.

This module also holds the two settings every rule reads:

- `CommonSettings` (keys directly under `[rules]`): what "engaged", "a role
  that counts" and "renewal soon" mean, so every rule agrees.
- `SuppressionSettings` (`[rules.suppression]`): the words an account manager
  types into the configured exemption field (read by rules/suppression.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmsync.state.settings import coerce, from_table, unknown_key_error

__all__ = ["coerce", "from_table", "unknown_key_error"]  # the strict reader (state/settings.py)


# ---------------------------------------------------------------- strict table reader


def require(ok: bool, where: str, key: str, message: str) -> None:
    """Raise `ValueError("[where] key message")` unless `ok`."""
    if not ok:
        raise ValueError(f"{where} {key} {message}")


def require_days(where: str, obj: Any, *keys: str, minimum: int = 1) -> None:
    for key in keys:
        value = getattr(obj, key)
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            where,
            key,
            f"must be a whole number of days, at least {minimum}; got {value!r}.",
        )


def require_names(where: str, key: str, values: Sequence[str], *, allow_empty: bool = True) -> None:
    require(
        all(isinstance(v, str) and v.strip() for v in values),
        where,
        key,
        f"must list non-empty names; got {list(values)!r}.",
    )
    require(allow_empty or bool(values), where, key, "must list at least one name.")


# ---------------------------------------------------------------- [rules] itself


@dataclass(frozen=True)
class CommonSettings:
    """Keys directly under `[rules]`: the shared vocabulary of every rule.

    - `engaged_days`: a contact is engaged when their last logged activity is
      within this many days of the run date (the edge day counts).
    - `role_won_window_days`: a buying role counts when held on an open
      opportunity, on one won within this many days, or on the contact itself.
    - `renewal_window_days`: an account "renews soon" when its renewal date, or
      the close date of one of its open opportunities, is within this many days.
    """

    engaged_days: int = 90
    role_won_window_days: int = 365
    renewal_window_days: int = 120

    def __post_init__(self) -> None:
        require_days("[rules]", self, "engaged_days", "role_won_window_days")
        require_days("[rules]", self, "renewal_window_days", minimum=0)


# ---------------------------------------------------------------- suppression


ALL_RULES = "*"


@dataclass(frozen=True)
class SuppressionSettings:
    """`[rules.suppression]`: the words an account manager types into the exemption field.

    What the entries mean and do is in rules/suppression.py: `snooze until <date>`
    (`snooze_prefix`), `not a champion` (`not_champion_values`), `exempt`
    (`exempt_all_values`), or a check's name. `date_order` says how a numeric
    date that reads either way (01/02/2027) is read: "day_first" (1 February
    2027) or "month_first" (2 January 2027); 31/01/2027 and 01/31/2027 are
    read the only way they can be, and 2027-01-02 is always year-month-day.
    """

    snooze_prefix: str = "snooze until"
    not_champion_values: tuple[str, ...] = ("not a champion",)
    exempt_all_values: tuple[str, ...] = ("exempt", "all", "true", "yes")
    date_order: str = "day_first"

    def __post_init__(self) -> None:
        where = "[rules.suppression]"
        require(bool(self.snooze_prefix.strip()), where, "snooze_prefix", "must not be empty.")
        require_names(where, "not_champion_values", self.not_champion_values)
        require_names(where, "exempt_all_values", self.exempt_all_values)
        require(
            self.date_order in ("day_first", "month_first"),
            where,
            "date_order",
            f'must be "day_first" or "month_first"; got {self.date_order!r}.',
        )
