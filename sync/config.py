"""sync.toml, read once into frozen settings that are passed down explicitly.

Every problem is a ConfigError naming the key and the fix (exit code 2).
Secrets never live in the file: a Secret-typed setting `password` is given as
`password_env = "VAR"` or `password_file = "path"`, and is loaded here into a
`connectors.base.Secret` whose value the log filter masks. Relative paths are
relative to the directory of sync.toml. Nothing below sync/ reads files or
environment variables.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsync.connectors.base import Secret
from crmsync.state.errors import (
    ConfigError as ConfigError,  # raised here; callers may import it from here
)

from . import logs

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- small tables


@dataclass(frozen=True)
class MirrorSettings:
    """[mirror]"""

    path: Path = Path("crmsync.db")


@dataclass(frozen=True)
class ScheduleSettings:
    """[schedule]: an interval in minutes or a cron expression per job and CRM."""

    incremental: str = "every 15 minutes"
    full: str = "cron: 0 3 * * sun"
    reconcile: str = "cron: 0 4 * * sat"
    misfire_grace_seconds: int = 600

    def validate(self) -> None:
        _in_range("misfire_grace_seconds", self.misfire_grace_seconds, 1, None, "seconds")


@dataclass(frozen=True)
class DaemonSettings:
    """[daemon]"""

    health_port: int = 9464  # 0 disables /healthz and /metrics
    health_host: str = "127.0.0.1"
    log_format: str = "text"  # text | json
    log_level: str = "INFO"
    lock: str = "wait"  # wait | fail: what a second writer does
    lock_timeout_seconds: int = 3600
    stop_timeout_seconds: int = 10

    def validate(self) -> None:
        _in_range("health_port", self.health_port, 0, 65535, "a TCP port (0 disables)")
        _in_range("lock_timeout_seconds", self.lock_timeout_seconds, 0, None, "seconds")
        _in_range("stop_timeout_seconds", self.stop_timeout_seconds, 0, None, "seconds")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level = {self.log_level!r}: use one of {', '.join(LOG_LEVELS)}.")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _in_range(name: str, value: float, low: float, high: float | None, what: str) -> None:
    """ValueError naming the key unless low <= value <= high (build() adds the table)."""
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ValueError(f"{name} = {value}: use {what}, {bound}.")


# ---------------------------------------------------------------- whole config


@dataclass(frozen=True)
class Config:
    path: Path
    mirror: MirrorSettings
    connectors: Mapping[str, Any]  # crm name -> that connector's Settings (enabled ones only)
    rules: Any  # rules.RuleSettings
    writeback: Any  # sync.plan.WritebackSettings
    schedule: ScheduleSettings
    daemon: DaemonSettings
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def crms(self, only: str | None = None) -> list[str]:
        if only is not None:
            if only not in self.connectors:
                raise ConfigError(
                    f"--crm {only}: there is no enabled [{only}] table in {self.path}. "
                    f"Enabled: {', '.join(self.connectors) or 'none'}."
                )
            return [only]
        return list(self.connectors)


KNOWN_TABLES = ("mirror", "salesforce", "hubspot", "rules", "writeback", "schedule", "daemon")


def load(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate sync.toml."""
    path = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found. Copy the example sync.toml from the crmsync "
            "repository, or pass --config PATH."
        ) from None
    except OSError as e:
        raise ConfigError(
            f"cannot read the config file {path} ({e.strerror or e}). Check its permissions."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save sync.toml as UTF-8.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return from_dict(data, path=path, environ=env)


def from_dict(
    data: Mapping[str, Any], *, path: Path, environ: Mapping[str, str] | None = None
) -> Config:
    env = os.environ if environ is None else environ
    # Relative paths in sync.toml are relative to its folder, resolved once here (build ->
    # _coerce / _path); absolute, so a later change of working directory cannot move them.
    base = path.absolute().parent
    _check_keys(data, KNOWN_TABLES, "the top level")
    mirror = build(MirrorSettings, data.get("mirror", {}), "mirror", base=base, environ=env)

    connectors: dict[str, Any] = {}
    for crm in ("salesforce", "hubspot"):
        table = data.get(crm)
        if table is None:
            continue
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"[{crm}] enabled must be true or false, not {enabled!r}.")
        if enabled:
            connectors[crm] = build(
                _connector_settings_class(crm), table, crm, base=base, environ=env
            )
    for crm, settings in connectors.items():
        ca_file = getattr(settings, "ca_file", None)
        if ca_file and not Path(ca_file).is_file():
            raise ConfigError(
                f"[{crm}] ca_file: {ca_file} is not a file. Point ca_file at the PEM bundle of "
                "the CA that signs the CRM's (or your proxy's) certificates, or remove it."
            )
    sf = connectors.get("salesforce")
    if sf is not None and sf.auth == "jwt" and sf.private_key_file:
        from crmsync.connectors.salesforce.client import check_private_key

        check_private_key(sf.private_key_file)  # a missing or malformed key fails at start

    rules = _rule_settings(data.get("rules", {}))
    writeback = _writeback_settings(data.get("writeback", {}), base, env)
    schedule = build(ScheduleSettings, data.get("schedule", {}), "schedule", base=base, environ=env)
    daemon = build(DaemonSettings, data.get("daemon", {}), "daemon", base=base, environ=env)
    if daemon.log_format not in ("text", "json"):
        raise ConfigError(f"[daemon] log_format must be \"text\" or \"json\", not {daemon.log_format!r}.")
    if daemon.lock not in ("wait", "fail"):
        raise ConfigError(f"[daemon] lock must be \"wait\" or \"fail\", not {daemon.lock!r}.")
    return Config(
        path=path,
        mirror=mirror,
        connectors=connectors,
        rules=rules,
        writeback=writeback,
        schedule=schedule,
        daemon=daemon,
        raw=data,
    )


def _connector_settings_class(crm: str) -> type:
    if crm == "salesforce":
        from crmsync.connectors.salesforce.client import Settings as SfSettings

        return SfSettings
    from crmsync.connectors.hubspot.client import Settings as HsSettings

    return HsSettings


def _rule_settings(tables: Mapping[str, Any]) -> Any:
    from crmsync.rules import RuleSettings

    try:
        return RuleSettings.from_tables(dict(tables))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _writeback_settings(table: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> Any:
    from crmsync.sync.plan import WritebackSettings

    return build(WritebackSettings, table, "writeback", base=base, environ=env)


# ---------------------------------------------------------------- generic builder


def build(
    cls: type, table: Mapping[str, Any], where: str, *, base: Path, environ: Mapping[str, str]
) -> Any:
    """Fill dataclass `cls` from a TOML table, naming the key in every error."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    secret_fields = {n for n in fields if _is_secret(hints[n])}
    allowed: list[str] = []
    for n in fields:
        allowed += [f"{n}_env", f"{n}_file"] if n in secret_fields else [n]
    _check_keys(table, allowed, f"[{where}]")

    kwargs: dict[str, Any] = {}
    for name in fields:
        key = f"[{where}] {name}"
        if name in secret_fields:
            secret = _load_secret(table, name, where, base, environ)
            if secret is not None:
                kwargs[name] = secret
            continue
        if name not in table:
            continue
        value = _coerce(table[name], hints[name], key, base)
        if (name.endswith("_file") or name == "ca_file") and isinstance(value, str) and value:
            value = str(_path(value, key, base))
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(_in_table(where, e)) from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(_in_table(where, e)) from None
    return obj


def _in_table(where: str, e: Exception) -> str:
    text = str(e)
    return text if text.startswith(f"[{where}]") else f"[{where}] {text}"


def _check_keys(table: Mapping[str, Any], allowed: typing.Iterable[str], where: str) -> None:
    allowed = list(allowed)
    for key in table:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(key, allowed, n=1)
        bare = key.removesuffix("_env").removesuffix("_file")
        if f"{key}_env" in allowed:
            raise ConfigError(
                f"`{key}` in {where} is a secret and cannot be written in sync.toml: "
                f"name the environment variable that holds it (`{key}_env = \"VAR\"`) "
                f"or a file (`{key}_file = \"path\"`)."
            )
        suggestion = f"; did you mean `{hint[0]}`?" if hint else f". Known keys: {', '.join(allowed)}."
        if bare != key and f"{bare}_env" not in allowed:
            suggestion = f"; `{bare}` is not a secret setting here{suggestion if hint else '.'}"
        raise ConfigError(f"unknown key `{key}` in {where}{suggestion}")


def _is_secret(hint: Any) -> bool:
    return hint is Secret or Secret in typing.get_args(hint)


def _load_secret(
    table: Mapping[str, Any], name: str, where: str, base: Path, environ: Mapping[str, str]
) -> Secret | None:
    env_key, file_key = f"{name}_env", f"{name}_file"
    if env_key in table and file_key in table:
        raise ConfigError(f"[{where}] sets both `{env_key}` and `{file_key}`; keep one.")
    if env_key in table:
        var = table[env_key]
        if not isinstance(var, str) or not var:
            raise ConfigError(f"[{where}] {env_key} must name an environment variable.")
        value = environ.get(var)
        if value is None:
            raise ConfigError(
                f"[{where}] {env_key} names the environment variable {var}, which is not set. "
                f"Export {var} (or use `{file_key}` instead)."
            )
        if not value.strip():
            raise ConfigError(
                f"[{where}] {env_key} names the environment variable {var}, which is set but "
                f"empty. Put the {name.replace('_', ' ')} in {var} (or use `{file_key}` instead)."
            )
        secret = Secret(value.strip(), f"env {var}")
    elif file_key in table:
        p = _path(table[file_key], f"[{where}] {file_key}", base)
        try:
            value = p.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(
                f"[{where}] {file_key}: cannot read {p} ({e.strerror}). Check the path and its permissions."
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"[{where}] {file_key}: {p} is not UTF-8 text.") from None
        if not value:
            raise ConfigError(f"[{where}] {file_key}: {p} is empty.")
        secret = Secret(value, f"file {p}")
    else:
        return None
    logs.register_secret(secret.reveal())
    return secret


def _path(value: Any, key: str, base: Path) -> Path:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a path string, not {value!r}.")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _coerce(value: Any, hint: Any, key: str, base: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(value, non_none[0], key, base)
        return value
    if hint is Path:
        return _path(value, key, base)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, not {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number, not {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, not {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not {value!r}.")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, not {value!r}.")
        item = args[0] if args else Any
        items = [_coerce(v, item, key, base) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a table, not {value!r}.")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{key}.{k}", base) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- secret files

_warned_files: set[Path] = set()


def exposed_secret_files(cfg: Config) -> list[tuple[str, Path, int]]:
    """(setting, file, mode) of each secret file sync.toml names (`<secret>_file`, a
    private key) that its group or others may read."""
    found = []
    for crm in cfg.connectors:
        table = cfg.raw.get(crm) or {}
        for key, value in table.items():
            if not key.endswith("_file") or key == "ca_file" or not isinstance(value, str):
                continue
            path = Path(value).expanduser()
            path = path if path.is_absolute() else cfg.base_dir / path
            try:
                mode = path.stat().st_mode & 0o777
            except OSError:
                continue  # a missing file is reported where it is read
            if mode & 0o077:
                found.append((f"[{crm}] {key}", path, mode))
    return found


def warn_exposed_secret_files(cfg: Config) -> None:
    """Log a WARNING, once per file and process, for each secret file others may read."""
    for setting, path, mode in exposed_secret_files(cfg):
        if path in _warned_files:
            continue
        _warned_files.add(path)
        log.warning(
            f"{setting} names {path}, which its group or others can read (mode {mode:04o}): "
            f"it holds a secret. Fix: chmod 600 {path}",
            extra={"setting": setting, "file": str(path), "mode": f"{mode:04o}"},
        )
