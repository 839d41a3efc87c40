"""The example sync.toml documents every setting there is, and nothing that is not one.

The schema is the settings dataclasses sync/config.py builds: [mirror], the
Salesforce and HubSpot connectors' Settings, every rule's and the shared
[rules] settings, [writeback], [schedule] and [daemon]. A key counts as
documented when it appears in its table, set or commented out
(`# client_id = "..."`); a secret setting is documented by its `<name>_env` or
`<name>_file` form. The example must also load as it is (both CRM tables are
disabled there, so it needs no credentials). Issue 11: "Every setting is in the
example sync.toml, checked by a test against the config schema".
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest

from crmsync import rules
from crmsync.connectors.base import Secret
from crmsync.sync import config
from crmsync.sync.writeback_settings import WritebackSettings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "sync.toml"

_HEADER = re.compile(r"^\[([A-Za-z0-9_.]+)\]")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")


def schema() -> dict[str, set[str]]:
    """{table: keys sync.toml may set in it}, from the settings dataclasses."""
    tables: dict[str, type] = {
        "mirror": config.MirrorSettings,
        "salesforce": config._connector_settings_class("salesforce"),
        "hubspot": config._connector_settings_class("hubspot"),
        "rules": rules.CommonSettings,
        "writeback": WritebackSettings,
        "schedule": config.ScheduleSettings,
        "daemon": config.DaemonSettings,
        "enrichment": config.EnrichmentSettings,
        "identity": config.IdentitySettings,
    }
    for f in dataclasses.fields(rules.RuleSettings):
        if f.name != "common":
            tables[f"rules.{f.name}"] = rules._settings_class(f.name)
    assert set(tables) >= set(config.KNOWN_TABLES), "a top-level table is missing from the walk"
    out: dict[str, set[str]] = {}
    for table, cls in tables.items():
        hints = typing.get_type_hints(cls)
        keys: set[str] = set()
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            hint = hints[f.name]
            secret = hint is Secret or Secret in typing.get_args(hint)
            keys |= {f"{f.name}_env", f"{f.name}_file"} if secret else {f.name}
        out[table] = keys
    out["hubspot"].add("enabled")  # read by sync/config.py itself, not a Settings field
    out["salesforce"].add("enabled")
    out["rules"] |= {n for n in out if n.startswith("rules.")}  # [rules.x] is key x of [rules]
    return out


def secrets() -> dict[str, set[str]]:
    """{table: secret setting names}: documented by either `<name>_env` or `<name>_file`."""
    out: dict[str, set[str]] = {}
    for crm in ("salesforce", "hubspot"):
        cls = config._connector_settings_class(crm)
        hints = typing.get_type_hints(cls)
        out[crm] = {
            f.name
            for f in dataclasses.fields(cls)
            if hints[f.name] is Secret or Secret in typing.get_args(hints[f.name])
        }
    return out


def documented(text: str) -> dict[str, set[str]]:
    """{table: keys} written in the example, set or commented out.

    A sub-table header `[salesforce.extra_fields]` documents key `extra_fields` of
    [salesforce]; a header under [rules] documents that rule's table."""
    found: dict[str, set[str]] = {}
    table = ""
    for line in text.splitlines():
        bare = line.strip().lstrip("#").strip()
        header = _HEADER.match(bare)
        if header:
            name = header[1]
            parent, _, child = name.rpartition(".")
            if parent and not name.startswith("rules."):
                found.setdefault(parent, set()).add(child)
                table = name
                continue
            if parent:
                found.setdefault(parent, set()).add(name)
            table = name
            found.setdefault(table, set())
            continue
        key = _KEY.match(bare)
        if key and table:
            found.setdefault(table, set()).add(key[1])
    return found


def test_the_schema_walk_sees_every_table_and_known_settings() -> None:
    s = schema()
    # a guard on the walk itself: a few keys from each kind of table
    assert {"path"} <= s["mirror"]
    assert {"auth", "max_daily_share", "password_env", "password_file"} <= s["salesforce"]
    assert {"token_env", "refresh_token_file", "account_timezone"} <= s["hubspot"]
    assert {"engaged_days", "rules.stale_contact", "rules.suppression"} <= s["rules"]
    assert {"date_order", "snooze_prefix"} <= s["rules.suppression"]
    assert {"ownership_guard", "default_owner"} <= s["writeback"]
    assert {"misfire_grace_seconds"} <= s["schedule"]
    assert {"stop_timeout_seconds"} <= s["daemon"]


def test_the_reader_counts_commented_out_keys() -> None:
    text = (
        '[hubspot]\nauth = "oauth"\n# client_id = "..."\n# for auth = "oauth":\n[rules.coverage]\n'
    )
    assert documented(text) == {"hubspot": {"auth", "client_id"}, "rules": {"rules.coverage"},
                                "rules.coverage": set()}  # fmt: skip


@pytest.mark.parametrize("table", sorted(schema()))
def test_every_setting_is_in_the_example_sync_toml(table: str) -> None:
    want = schema()[table]
    have = documented(EXAMPLE.read_text(encoding="utf-8")).get(table, set())
    secret = secrets().get(table, set())
    missing = sorted(
        k
        for k in want
        if k not in have
        and not any(
            k in (f"{n}_env", f"{n}_file") and ({f"{n}_env", f"{n}_file"} & have) for n in secret
        )  # fmt: skip
    )
    assert not missing, (
        f"[{table}] settings missing from the example sync.toml: {', '.join(missing)}. "
        "Add each with a short comment (commented out if it has no safe example value)."
    )


def test_the_example_documents_no_setting_that_does_not_exist() -> None:
    s = schema()
    stray = sorted(
        f"[{table}] {key}"
        for table, keys in documented(EXAMPLE.read_text(encoding="utf-8")).items()
        if table in s  # a sub-table such as [salesforce.extra_fields] holds values, not settings
        for key in keys - s[table]
    )
    assert not stray, f"the example sync.toml names settings crmsync does not know: {stray}"


def test_the_example_loads_as_it_is_and_shows_the_defaults() -> None:
    cfg = config.load(EXAMPLE, environ={})
    assert cfg.connectors == {}  # both CRM tables are disabled in the example
    assert cfg.rules == rules.RuleSettings()
    assert cfg.writeback == WritebackSettings()
    assert cfg.schedule == config.ScheduleSettings()
    assert cfg.daemon == config.DaemonSettings()


def test_the_example_crm_tables_are_valid_once_enabled(tmp_path: Path) -> None:
    """A disabled table is not checked at load; enabled, the example's CRM tables are valid."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    sf_class = config._connector_settings_class("salesforce")
    sf = config.build(sf_class, raw["salesforce"], "salesforce", base=ROOT, environ={})
    assert sf.auth == "jwt" and sf.max_daily_share == 0.5  # the JWT key file is checked at start
    text = EXAMPLE.read_text(encoding="utf-8")
    enabled = re.sub(r"(?m)^(\[hubspot\]\n)enabled = false", r"\1enabled = true", text)
    assert enabled != text
    path = tmp_path / "sync.toml"
    path.write_text(enabled, encoding="utf-8")
    cfg = config.load(path, environ={"HUBSPOT_TOKEN": "pat-example"})
    assert list(cfg.connectors) == ["hubspot"]
