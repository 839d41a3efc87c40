"""The one reader from a TOML table into a settings dataclass, for the rules and sync.toml.

`coerce(value, hint, name)` checks a TOML value against a dataclass field's type and
returns the value the field holds; `from_table(cls, table, where)` fills a whole dataclass.
Every error is a `ValueError` whose message names the setting (`[rules.stale_contact]
growth_days must be a whole number, not '120'.`); rules/settings.py passes it up as is and
sync/config.py turns it into ConfigError (exit 2).

The rules' settings are immutable all the way down (tables become read-only mappings);
sync/config.py's connector and write-back settings keep plain dicts (`frozen=False`) and
resolve paths against sync.toml's folder (`path=`). It lives in state/ because both the
rules and sync/ use it, and rules import nothing but state.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

S = TypeVar("S")

PathHook = Callable[[Any, str], Path]


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


def coerce(
    value: Any, hint: Any, name: str, *, path: PathHook | None = None, frozen: bool = True
) -> Any:
    """Check a TOML value against a field's type. Lists become tuples for `tuple[X, ...]`
    (lists for `list[X]`), tables become mappings (read-only when `frozen`); `X | None`
    checks X; `Any` takes the value as it is; a `Path` goes through `path`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)

    def again(v: Any, h: Any, n: str) -> Any:
        return coerce(v, h, n, path=path, frozen=frozen)

    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return again(value, non_none[0], name)
    if hint is Path and path is not None:
        return path(value, name)
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
    if (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or origin is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f'{name} must be a list, for example ["a", "b"], not {value!r}.')
        items = [again(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (Mapping, dict, typing.Mapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{name} must be a table, for example {{ strategic = 4 }}, not {value!r}."
            )
        table = {str(k): again(v, args[1], f"{name}.{k}") for k, v in value.items()}
        return types.MappingProxyType(table) if frozen else table
    raise TypeError(f"settings field {name} has an unsupported type {hint!r}")  # programming error
