"""Settings shared by the rules, and the strict reader of `[rules.*]` tables.

Every rule declares a frozen `Settings` dataclass whose defaults equal
docs/design.md. `from_table` fills one from a sync.toml table: unknown keys and
wrong types raise `ValueError` naming the key and the fix; each dataclass's
`__post_init__` checks ranges. sync/config.py turns the ValueError into exit 2.

This module also holds the two settings every rule reads:

- `CommonSettings` (keys directly under `[rules]`): what "engaged", "a role
  that counts" and "renewal soon" mean, so every rule agrees.
- `SuppressionSettings` (`[rules.suppression]`): the words an account manager
  types into the configured exemption field (read by rules/suppression.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

S = TypeVar("S")


# ---------------------------------------------------------------- strict table reader


def unknown_key_error(key: str, allowed: Sequence[str], where: str) -> ValueError:
    """`unknown key `strategic_day` in [rules.stale_contact]; did you mean `strategic_days`?`"""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(allowed)}."
    return ValueError(f"unknown key `{key}` in {where}; {hint}")


def from_table(cls: type[S], table: Any, where: str) -> S:
    """Build settings dataclass `cls` from a TOML table, naming the key in every error."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table of settings, not {table!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise unknown_key_error(key, names, where)
        values[key] = coerce(value, hints[key], f"{where} {key}")
    return cls(**values)


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Check a TOML value against a field's type; lists become tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, not {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string in quotes, not {value!r}.")
        return value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise ValueError(f'{name} must be a list, for example ["a", "b"], not {value!r}.')
        return tuple(coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{name} must be a table, for example {{ strategic = 4 }}, not {value!r}."
            )
        return types.MappingProxyType(
            {str(k): coerce(v, args[1], f"{name}.{k}") for k, v in value.items()}
        )
    raise TypeError(f"settings field {name} has an unsupported type {hint!r}")  # programming error


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


RULE_ALIASES = {
    "stale": "stale_contact",
    "bouncing": "bouncing_contact",
    "bounce": "bouncing_contact",
    "departed": "departed_champion",
    "single threaded": "single_threaded_account",
    "single-threaded": "single_threaded_account",
    "single_threaded": "single_threaded_account",
}
RULE_NAMES = ("stale_contact", "bouncing_contact", "departed_champion", "single_threaded_account")
