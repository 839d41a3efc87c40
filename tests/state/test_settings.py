"""state/settings.py: the one TOML reader behind [rules.*] and the rest of sync.toml."""

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from crmsync.rules import RuleSettings
from crmsync.state.settings import coerce
from crmsync.sync import config


@pytest.mark.parametrize(
    ("value", "hint", "want"),
    [
        (3, int, 3),
        (3, float, 3.0),
        (["a", "b"], tuple[str, ...], ("a", "b")),
        (["a"], list[str], ["a"]),
        (7, int | None, 7),
        ({"x": 1}, Mapping[str, int], {"x": 1}),
        ("v", str, "v"),
    ],
)
def test_coerce_returns_what_the_field_holds(value, hint, want):
    assert coerce(value, hint, "[t] k") == want


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("120", int, "[t] k must be a whole number, not '120'."),
        (True, int, "[t] k must be a whole number, not True."),
        (1, bool, "[t] k must be true or false, not 1."),
        (5, str, "[t] k must be a string in quotes, not 5."),
        ("a", tuple[str, ...], '[t] k must be a list, for example ["a", "b"], not \'a\'.'),
        ([1], tuple[str, ...], "[t] k[0] must be a string in quotes, not 1."),
        (5, Mapping[str, int], "[t] k must be a table"),
        ({"g": "x"}, Mapping[str, int], "[t] k.g must be a whole number"),
    ],
)
def test_coerce_names_the_setting_in_every_error(value, hint, message):
    with pytest.raises(ValueError) as e:
        coerce(value, hint, "[t] k")
    assert str(e.value).startswith(message)


def test_tables_are_read_only_for_rules_and_plain_for_sync_toml():
    assert isinstance(coerce({"a": 1}, Mapping[str, int], "k"), MappingProxyType)
    assert type(coerce({"a": 1}, Mapping[str, int], "k", frozen=False)) is dict


def test_paths_go_through_the_callers_hook():
    got = coerce("x.db", Path, "k", path=lambda v, k: Path("/base") / v)
    assert got == Path("/base/x.db")


def test_sync_toml_and_rules_tables_word_a_wrong_type_alike(tmp_path):
    with pytest.raises(config.ConfigError) as from_config:
        config.from_dict({"daemon": {"stop_timeout_seconds": "10"}}, path=tmp_path / "sync.toml")
    with pytest.raises(ValueError) as from_rules:
        RuleSettings.from_tables({"engaged_days": "10"})
    assert str(from_config.value) == "[daemon] stop_timeout_seconds must be a whole number, not '10'."
    assert str(from_rules.value) == "[rules] engaged_days must be a whole number, not '10'."


def test_an_unsupported_field_type_is_a_programming_error():
    with pytest.raises(TypeError):
        coerce(1, complex, "k")
