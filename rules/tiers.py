"""Account tier: strategic, growth, maintenance or none.

The account's tier comes from a CRM field an admin chooses (`tier_field` in
`[salesforce]` / `[hubspot]`; Salesforce `Tier__c`, HubSpot
`hs_ideal_customer_profile` by default). Its value is looked up, ignoring case
and surrounding spaces, in the lists below; a value in no list, or an empty
field, means "none". Tiers set the stale window, the engaged-contact target
and how urgent findings are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from crmsync.state.model import Account, Tier

from .settings import require, require_names

NAME = "tiers"


@dataclass(frozen=True)
class Settings:
    """`[rules.tiers]`: the field values that mean each tier."""

    strategic: tuple[str, ...] = ("Strategic", "tier_1")
    growth: tuple[str, ...] = ("Growth", "tier_2")
    maintenance: tuple[str, ...] = ("Maintenance", "tier_3")

    def __post_init__(self) -> None:
        where = "[rules.tiers]"
        seen: dict[str, str] = {}
        for tier in ("strategic", "growth", "maintenance"):
            values: tuple[str, ...] = getattr(self, tier)
            require_names(where, tier, values)
            for v in values:
                key = _key(v)
                require(
                    seen.get(key, tier) == tier,
                    where,
                    tier,
                    f"repeats {v!r}, already listed under {seen.get(key)}; list each value once.",
                )
                seen[key] = tier


def tier_of(account: Account, settings: Settings) -> Tier:
    """Map the raw tier field value to a Tier."""
    if not account.tier:
        return Tier.NONE
    return _value_map(settings.strategic, settings.growth, settings.maintenance).get(
        _key(account.tier), Tier.NONE
    )


@lru_cache(maxsize=32)
def _value_map(
    strategic: tuple[str, ...], growth: tuple[str, ...], maintenance: tuple[str, ...]
) -> dict[str, Tier]:
    out: dict[str, Tier] = {}
    for tier, values in (
        (Tier.STRATEGIC, strategic),
        (Tier.GROWTH, growth),
        (Tier.MAINTENANCE, maintenance),
    ):
        out.update({_key(v): tier for v in values})
    return out


def _key(value: str) -> str:
    return value.strip().casefold()
