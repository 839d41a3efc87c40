"""sync.toml validation: every mistake names the key and the fix; secrets never inline."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crmsync.sync import config, logs

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sync.toml"
    p.write_text(text)
    return p


def test_the_example_sync_toml_in_the_repository_loads() -> None:
    cfg = config.load(ROOT / "sync.toml")
    assert cfg.mirror.path == ROOT / "crmsync.db"
    assert cfg.connectors == {}  # both CRMs disabled in the example


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    p = write(tmp_path, "[daemon]\nhealth_prot = 1\n")
    with pytest.raises(config.ConfigError, match=r"unknown key `health_prot` in \[daemon\]; did you mean `health_port`\?"):
        config.load(p)


def test_unknown_rule_setting_names_the_table_and_suggests(tmp_path: Path) -> None:
    p = write(tmp_path, "[rules.stale_contact]\nstrategic_day = 30\n")
    with pytest.raises(config.ConfigError, match="strategic_days"):
        config.load(p)


def test_a_secret_written_inline_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, '[hubspot]\ntoken = "pat-123"\n')
    with pytest.raises(config.ConfigError, match="token_env"):
        config.load(p)


def test_secret_from_an_unset_variable_names_the_variable(tmp_path: Path) -> None:
    p = write(tmp_path, '[hubspot]\ntoken_env = "CRMSYNC_TEST_NOPE"\n')
    with pytest.raises(config.ConfigError, match="CRMSYNC_TEST_NOPE"):
        config.load(p, environ={})


def test_secret_file_is_relative_to_the_config_and_masked(tmp_path: Path) -> None:
    (tmp_path / "tok.txt").write_text("pat-sekret-value-123\n")
    p = write(tmp_path, '[hubspot]\nhost = "http://127.0.0.1:9"\ntoken_file = "tok.txt"\n')
    cfg = config.load(p)
    token = cfg.connectors["hubspot"].token
    assert token.reveal() == "pat-sekret-value-123"
    assert "pat-sekret" not in repr(token)
    # Any log line that would carry it is masked, whatever the formatter.
    rec = logging.makeLogRecord({"msg": "auth header Bearer pat-sekret-value-123", "levelname": "INFO"})
    assert "pat-sekret" not in logs.TextFormatter().format(rec)
    assert "pat-sekret" not in logs.JsonFormatter().format(rec)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    p = write(tmp_path, '[daemon]\nhealth_port = "nine"\n')
    with pytest.raises(config.ConfigError, match=r"\[daemon\] health_port must be a whole number"):
        config.load(p)


def test_mirror_path_is_relative_to_the_config(tmp_path: Path) -> None:
    p = write(tmp_path, '[mirror]\npath = "m.db"\n')
    assert config.load(p).mirror.path == tmp_path / "m.db"


def test_invalid_toml_says_where(tmp_path: Path) -> None:
    p = write(tmp_path, "[mirror\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(p)


def test_hubspot_max_daily_share_is_a_setting_of_its_own(tmp_path: Path) -> None:
    """Issue 11: `max_daily_share` under [hubspot] was an unknown key."""
    p = write(tmp_path, '[hubspot]\ntoken_env = "T"\nmax_daily_share = 0.3\n')
    assert config.load(p, environ={"T": "pat"}).connectors["hubspot"].max_daily_share == 0.3
    p = write(tmp_path, '[hubspot]\ntoken_env = "T"\n')
    assert config.load(p, environ={"T": "pat"}).connectors["hubspot"].max_daily_share == 0.5


def test_hubspot_search_lag_is_a_setting_the_connector_declares(tmp_path: Path) -> None:
    """How far HubSpot's search may lag a write (P6, W4/W5): 5 minutes unless set."""
    from datetime import timedelta

    from crmsync.connectors.hubspot import HubSpotConnector

    def lag(text: str) -> timedelta:
        settings = config.load(write(tmp_path, '[hubspot]\ntoken_env = "T"\n' + text),
                               environ={"T": "pat"}).connectors["hubspot"]
        return HubSpotConnector(settings).index_lag

    assert lag("") == timedelta(minutes=5)
    assert lag("search_lag_seconds = 30\n") == timedelta(seconds=30)
    with pytest.raises(config.ConfigError, match="search_lag_seconds"):
        lag("search_lag_seconds = -1\n")


def test_buying_role_names_are_read_from_a_hubspot_subtable(tmp_path: Path) -> None:
    (tmp_path / "tok.txt").write_text("pat-x\n")
    base = '[hubspot]\nhost = "http://127.0.0.1:9"\ntoken_file = "tok.txt"\n[hubspot.buying_roles]\n'
    cfg = config.load(write(tmp_path, base + 'BUDGET_HOLDER = "Budget Holder"\n'))
    names = cfg.connectors["hubspot"].role_names()
    assert names["BUDGET_HOLDER"] == "Budget Holder" and names["LEGAL_AND_COMPLIANCE"] == "Legal & Compliance"
    with pytest.raises(config.ConfigError, match=r"\[hubspot\] buying_roles.BLOCKER must name the role"):
        config.load(write(tmp_path, base + 'BLOCKER = ""\n'))


def test_a_bounce_reason_with_an_unknown_meaning_names_the_key_and_the_choices(tmp_path: Path) -> None:
    p = write(tmp_path, '[rules.bouncing_contact]\nbounce_reasons = { SPAM = "ignore" }\n')
    with pytest.raises(config.ConfigError, match=r"bounce_reasons.SPAM .*gone, temporary, sender, unknown"):
        config.load(p)
