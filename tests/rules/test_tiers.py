"""Tier mapping from the configured field's raw value."""

from __future__ import annotations

import pytest

from crmsync.rules import tiers
from crmsync.state.model import Tier

from .builders import account


@pytest.mark.parametrize(
    ("raw", "tier"),
    [
        ("Strategic", Tier.STRATEGIC),
        ("strategic", Tier.STRATEGIC),
        ("  STRATEGIC ", Tier.STRATEGIC),
        ("Growth", Tier.GROWTH),
        ("Maintenance", Tier.MAINTENANCE),
        ("tier_1", Tier.STRATEGIC),
        ("TIER_2", Tier.GROWTH),
        ("tier_3", Tier.MAINTENANCE),
        ("tier_4", Tier.NONE),
        ("Gold", Tier.NONE),
        ("", Tier.NONE),
        (None, Tier.NONE),
    ],
)
def test_default_value_map(raw, tier):
    assert tiers.tier_of(account(tier=raw), tiers.Settings()) is tier


def test_value_map_is_a_setting():
    s = tiers.Settings(strategic=("Platinum", "A"), growth=("B",), maintenance=())
    assert tiers.tier_of(account(tier="platinum"), s) is Tier.STRATEGIC
    assert tiers.tier_of(account(tier="b"), s) is Tier.GROWTH
    assert tiers.tier_of(account(tier="Strategic"), s) is Tier.NONE
