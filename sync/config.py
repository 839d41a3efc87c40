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
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from crmsync.connectors.base import Secret
from crmsync.rules import RuleSettings
from crmsync.state.errors import (
    ConfigError as ConfigError,  # raised here; callers may import it from here
)
from crmsync.state.settings import coerce
from crmsync.sync.enrichment import EnrichmentSettings
from crmsync.sync.identity import IdentitySettings
from crmsync.sync.writeback_settings import WritebackSettings

from . import logs

if TYPE_CHECKING:  # the connector packages (and their SDKs) load only for a CRM in use
    from crmsync.connectors.hubspot.client import Settings as HubSpotSettings
    from crmsync.connectors.salesforce.client import Settings as SalesforceSettings

    ConnectorSettings = SalesforceSettings | HubSpotSettings

T = TypeVar("T")

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
    connectors: Mapping[str, ConnectorSettings]  # crm name -> its Settings (enabled ones only)
    rules: RuleSettings
    writeback: WritebackSettings
    schedule: ScheduleSettings
    daemon: DaemonSettings
    # [enrichment]: an outside people-data provider (sync/enrichment.py), off by default
    enrichment: EnrichmentSettings = field(default_factory=EnrichmentSettings)
    # [identity]: one person across both CRMs, written in its home CRM (sync/identity.py)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    # ("[crm] key", file) of each secret sync.toml reads from a file (`<secret>_file`, a
    # private key): `crmsync` warns when others may read one (exposed_secret_files)
    secret_files: tuple[tuple[str, Path], ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def salesforce_instance_url(self) -> str:
        """[salesforce] instance_url, or "" when Salesforce is not configured or it is unset."""
        settings = self.connectors.get("salesforce")
        if settings is None:
            return ""
        from crmsync.connectors.salesforce.client import Settings as SfSettings

        return settings.instance_url if isinstance(settings, SfSettings) else ""

    def crms(self, only: str | None = None) -> list[str]:
        if only is not None:
            if only not in self.connectors:
                raise ConfigError(
                    f"--crm {only}: there is no enabled [{only}] table in {self.path}. "
                    f"Enabled: {', '.join(self.connectors) or 'none'}."
                )
            return [only]
        return list(self.connectors)


KNOWN_TABLES = (
    "mirror", "salesforce", "hubspot", "rules", "writeback", "schedule", "daemon", "enrichment",
    "identity",
)  # fmt: skip


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
    # state.settings.coerce / _path); absolute, so a later change of working directory cannot move them.
    base = path.absolute().parent
    _check_keys(data, KNOWN_TABLES, "the top level")
    mirror = build(MirrorSettings, data.get("mirror", {}), "mirror", base=base, environ=env)

    connectors: dict[str, ConnectorSettings] = {}
    for crm in ("salesforce", "hubspot"):
        table = data.get(crm)
        if table is None:
            continue
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"[{crm}] enabled must be true or false, not {enabled!r}.")
        if enabled:
            connectors[crm] = _connector_settings(crm, table, base, env)
    for crm, settings in connectors.items():
        ca_file = settings.ca_file
        if ca_file and not Path(ca_file).is_file():
            raise ConfigError(
                f"[{crm}] ca_file: {ca_file} is not a file. Point ca_file at the PEM bundle of "
                "the CA that signs the CRM's (or your proxy's) certificates, or remove it."
            )
    sf = connectors.get("salesforce")
    if sf is not None:
        from crmsync.connectors.salesforce.client import Settings as SfSettings
        from crmsync.connectors.salesforce.client import check_private_key

        if isinstance(sf, SfSettings) and sf.auth == "jwt" and sf.private_key_file:
            check_private_key(sf.private_key_file)  # a missing or malformed key fails at start

    rules = _rule_settings(data.get("rules", {}))
    writeback = _writeback_settings(data.get("writeback", {}), base, env)
    schedule = build(ScheduleSettings, data.get("schedule", {}), "schedule", base=base, environ=env)
    daemon = build(DaemonSettings, data.get("daemon", {}), "daemon", base=base, environ=env)
    enrichment = build(
        EnrichmentSettings, data.get("enrichment", {}), "enrichment", base=base, environ=env
    )
    identity = build(IdentitySettings, data.get("identity", {}), "identity", base=base, environ=env)
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
        enrichment=enrichment,
        identity=identity,
        secret_files=_secret_files(data, connectors, path.parent),
    )


def _connector_settings(
    crm: str, table: Mapping[str, Any], base: Path, env: Mapping[str, str]
) -> ConnectorSettings:
    return build(_connector_settings_class(crm), table, crm, base=base, environ=env)


def _connector_settings_class(crm: str) -> type[SalesforceSettings] | type[HubSpotSettings]:
    """The Settings class of `crm`'s connector (imported only for a CRM in use)."""
    if crm == "salesforce":
        from crmsync.connectors.salesforce.client import Settings as SfSettings

        return SfSettings
    from crmsync.connectors.hubspot.client import Settings as HsSettings

    return HsSettings


def _rule_settings(tables: Mapping[str, Any]) -> RuleSettings:
    try:
        return RuleSettings.from_tables(dict(tables))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _writeback_settings(
    table: Mapping[str, Any], base: Path, env: Mapping[str, str]
) -> WritebackSettings:
    return build(WritebackSettings, table, "writeback", base=base, environ=env)


# ---------------------------------------------------------------- generic builder


@runtime_checkable
class Validated(Protocol):
    """Settings that check their values together after the fields are filled."""

    def validate(self) -> None: ...


def build(
    cls: type[T], table: Mapping[str, Any], where: str, *, base: Path, environ: Mapping[str, str]
) -> T:
    """Fill dataclass `cls` from a TOML table, naming the key in every error."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
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
        try:
            value = coerce(
                table[name], hints[name], key, path=lambda v, k: _path(v, k, base), frozen=False
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if (name.endswith("_file") or name == "ca_file") and isinstance(value, str) and value:
            value = str(_path(value, key, base))
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(_in_table(where, e)) from None
    if isinstance(obj, Validated):
        try:
            obj.validate()
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


# ---------------------------------------------------------------- secret files

_warned_files: set[Path] = set()


def _secret_files(
    data: Mapping[str, Any], connectors: Mapping[str, object], base: Path
) -> tuple[tuple[str, Path], ...]:
    """("[crm] key", file) for each `*_file` key of an enabled CRM's table but ca_file."""
    found = []
    for crm in connectors:
        for key, value in (data.get(crm) or {}).items():
            if not key.endswith("_file") or key == "ca_file" or not isinstance(value, str):
                continue
            path = Path(value).expanduser()
            found.append((f"[{crm}] {key}", path if path.is_absolute() else base / path))
    return tuple(found)


def exposed_secret_files(cfg: Config) -> list[tuple[str, Path, int]]:
    """(setting, file, mode) of each secret file sync.toml names (`<secret>_file`, a
    private key) that its group or others may read."""
    found = []
    for setting, path in cfg.secret_files:
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            continue  # a missing file is reported where it is read
        if mode & 0o077:
            found.append((setting, path, mode))
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
