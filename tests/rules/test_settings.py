"""[rules] settings: defaults equal docs/design.md; bad values name the key and the fix."""

from __future__ import annotations

import pytest

from crmsync import rules
from crmsync.rules import RuleSettings


def test_defaults_equal_design():
    s = RuleSettings()
    assert (
        s.stale_contact.strategic_days,
        s.stale_contact.growth_days,
        s.stale_contact.maintenance_days,
        s.stale_contact.none_days,
    ) == (60, 120, 365, 180)
    assert s.common.engaged_days == 90
    assert s.common.role_won_window_days == 365
    assert s.common.renewal_window_days == 120
    assert s.single_threaded_account.min_engaged == 3
    assert s.single_threaded_account.required_roles == ("Economic Buyer", "Champion")
    assert s.departed_champion.champion_roles == (
        "Champion",
        "Economic Buyer",
        "Executive Sponsor",
        "Decision Maker",
    )
    assert s.departed_champion.left_company_words == ("former", "ex-", "no longer", "left")
    assert s.bouncing_contact.check_deliverability is False
    assert s.tiers.strategic == ("Strategic", "tier_1")
    assert RuleSettings.from_tables({}) == s


def test_every_rule_has_the_three_names_and_a_table():
    for rule in rules.RULES:
        assert isinstance(rule.NAME, str) and callable(rule.evaluate)
        assert hasattr(RuleSettings(), rule.NAME)
        assert isinstance(getattr(RuleSettings(), rule.NAME), rule.Settings)
        assert rule.__doc__ and len(rule.__doc__) > 200
    assert rules.RULE_NAMES == (
        "bouncing_contact",
        "departed_champion",
        "stale_contact",
        "single_threaded_account",
    )


def test_from_tables_fills_every_table():
    s = RuleSettings.from_tables(
        {
            "engaged_days": 60,
            "renewal_window_days": 90,
            "tiers": {"strategic": ["Platinum"], "growth": ["Gold"], "maintenance": ["Silver"]},
            "stale_contact": {"strategic_days": 30},
            "bouncing_contact": {"soft_bounce_threshold": 5, "role_addresses": ["info"]},
            "departed_champion": {"champion_roles": ["Sponsor"]},
            "single_threaded_account": {"min_engaged_by_tier": {"strategic": 5}},
            "coverage": {"engaged_weight": 50, "green_min_score": 80},
            "suppression": {"not_champion_values": ["no champion"]},
        }
    )
    assert s.common.engaged_days == 60 and s.common.renewal_window_days == 90
    assert s.tiers.strategic == ("Platinum",)
    assert s.stale_contact.strategic_days == 30 and s.stale_contact.growth_days == 120
    assert s.bouncing_contact.role_addresses == ("info",)
    assert s.single_threaded_account.min_engaged_by_tier["strategic"] == 5
    assert s.coverage.engaged_weight == 50.0
    assert s.suppression.not_champion_values == ("no champion",)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"stale_contact": {"strategic_day": 30}},
            "unknown key `strategic_day` in [rules.stale_contact]; did you mean `strategic_days`?",
        ),
        (
            {"stale_contacts": {}},
            "unknown key `stale_contacts` in [rules]; did you mean `stale_contact`?",
        ),
        ({"engaged_day": 3}, "unknown key `engaged_day` in [rules]; did you mean `engaged_days`?"),
        ({"zzz": 1}, "unknown key `zzz` in [rules]; known keys:"),
        (
            {"stale_contact": {"growth_days": "120"}},
            "[rules.stale_contact] growth_days must be a whole number, not '120'.",
        ),
        (
            {"stale_contact": {"growth_days": 1.5}},
            "[rules.stale_contact] growth_days must be a whole number",
        ),
        (
            {"stale_contact": {"growth_days": True}},
            "[rules.stale_contact] growth_days must be a whole number",
        ),
        (
            {"stale_contact": {"growth_days": 0}},
            "[rules.stale_contact] growth_days must be a whole number of days, at least 1; got 0.",
        ),
        ({"stale_contact": 5}, "[rules.stale_contact] must be a table"),
        ({"engaged_days": -1}, "[rules] engaged_days must be a whole number of days, at least 1"),
        (
            {"renewal_window_days": -1},
            "[rules] renewal_window_days must be a whole number of days, at least 0",
        ),
        (
            {"bouncing_contact": {"soft_bounce_threshold": 0}},
            "[rules.bouncing_contact] soft_bounce_threshold must be a whole number, at least 1",
        ),
        (
            {"bouncing_contact": {"check_deliverability": "yes"}},
            "[rules.bouncing_contact] check_deliverability must be true or false",
        ),
        (
            {"bouncing_contact": {"role_addresses": "info"}},
            "[rules.bouncing_contact] role_addresses must be a list",
        ),
        (
            {"bouncing_contact": {"role_addresses": ["info@acme.com"]}},
            "[rules.bouncing_contact] role_addresses lists the part before the @ only",
        ),
        (
            {"departed_champion": {"champion_roles": []}},
            "[rules.departed_champion] champion_roles must list at least one name.",
        ),
        (
            {"departed_champion": {"champion_roles": ["Champion", ""]}},
            "[rules.departed_champion] champion_roles must list non-empty names",
        ),
        (
            {"departed_champion": {"left_company_words": [1]}},
            "[rules.departed_champion] left_company_words[0] must be a string",
        ),
        (
            {"single_threaded_account": {"min_engaged": -1}},
            "[rules.single_threaded_account] min_engaged must be a whole number, 0 or more",
        ),
        (
            {"single_threaded_account": {"min_engaged_by_tier": {"platinum": 3}}},
            "[rules.single_threaded_account] min_engaged_by_tier has unknown tier `platinum`",
        ),
        (
            {"single_threaded_account": {"min_engaged_by_tier": {"growth": -2}}},
            "[rules.single_threaded_account] min_engaged_by_tier.growth must be a whole number",
        ),
        (
            {"coverage": {"green_min_score": 101}},
            "[rules.coverage] green_min_score must be a whole number from 0 to 100",
        ),
        (
            {"coverage": {"green_min_score": 30, "amber_min_score": 50}},
            "[rules.coverage] amber_min_score (50) must not be above green_min_score (30).",
        ),
        (
            {"coverage": {"engaged_weight": -1}},
            "[rules.coverage] engaged_weight must be a number, 0 or more",
        ),
        (
            {
                "coverage": {
                    "engaged_weight": 0,
                    "roles_weight": 0,
                    "recency_weight": 0,
                    "champions_weight": 0,
                }
            },
            "give at least one weight above 0",
        ),
        (
            {"tiers": {"strategic": ["Gold"], "growth": ["gold "]}},
            "[rules.tiers] growth repeats 'gold ', already listed under strategic",
        ),
        (
            {"suppression": {"snooze_prefix": "  "}},
            "[rules.suppression] snooze_prefix must not be empty.",
        ),
        (
            {"suppression": {"date_order": "mm/dd"}},
            '[rules.suppression] date_order must be "day_first" or "month_first"',
        ),
    ],
)
def test_invalid_settings_name_the_key(tables, message):
    with pytest.raises(ValueError) as e:
        RuleSettings.from_tables(tables)
    assert message in str(e.value)


def test_settings_are_frozen():
    s = RuleSettings()
    with pytest.raises(AttributeError):
        s.stale_contact.growth_days = 5  # type: ignore[misc]


def test_documented_example_block_equals_the_defaults():
    """The [rules] block of the example sync.toml: every key (tests/test_example_sync_toml.py),
    at its default."""
    import tomllib
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "sync.toml"
    rules_table = tomllib.loads(example.read_text(encoding="utf-8"))["rules"]
    assert RuleSettings.from_tables(rules_table) == RuleSettings()
