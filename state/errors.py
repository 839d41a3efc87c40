"""Every failure crmsync reports, classified by what the user does next, and the exit codes.

This is a leaf module: it imports nothing of crmsync, so every layer can raise
these and the CLI can map them in one place (`exit_code_for`).

    CrmsyncError              .fix: one sentence saying what to do
    ├── LocalProblem          exit 2: something on this machine the user must fix
    │   ├── ConfigError       a setting in sync.toml (names the key and the fix)
    │   ├── UsageError        a command-line argument
    │   ├── MirrorError       the mirror file: missing, unreadable, corrupt, read-only, disk full
    │   │   ├── MirrorBusy    another crmsync process holds the mirror's writer lock
    │   │   └── MirrorTooNew  migrated by a newer crmsync
    │   └── OutputError       a file crmsync was asked to write (a report, an export)
    ├── CrmError              exit 3: the CRM; .crm .operation .status .code .detail
    │   ├── CrmUnavailable    unreachable, 5xx, timeout: retried within one budget, then exit 3
    │   │   └── RateLimited   retry after .retry_after seconds
    │   ├── QuotaExhausted    the daily allocation (or crmsync's share) is spent; .retry_at
    │   ├── AuthFailed        bad or revoked credentials; retrying will not help
    │   ├── CrmRefused        the CRM refused a request (HTTP 400 and the like)
    │   ├── FieldsMissing     crmsync's own fields are missing in the CRM: run `crmsync setup`
    │   ├── EmptyFullPull     a full pull found an object empty (refused unless --allow-empty)
    │   └── MalformedRecord   a record that cannot be mapped: logged by id, skipped
    └── Interrupted           exit 130: stopped by the user (Ctrl-C, SIGTERM) or the service

Exit codes (README "Exit codes"; `crmsync --help` says the same):

    0    done
    1    the run finished, but the CRM rejected some rows (`crmsync status`, `crmsync outbox`)
    2    a local problem the user must fix: configuration, files, the mirror, usage
    3    a CRM problem: unreachable, authentication, API quota, a request the CRM refused
    70   an internal error (a bug in crmsync): please report it with the `-v` output
    130  interrupted by the user

A message names the thing (the setting, the file, the record) and never a
person's name, e-mail address or a CRM payload: CRM error texts can echo the
values they refused, so connectors keep those in `.detail`, which is stored
with the outbox row and never logged.
"""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_LOCAL = 2
EXIT_CRM = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class CrmsyncError(Exception):
    """The root of every error crmsync reports. `fix` is what to do about it."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def line(self) -> str:
        """The one line the CLI prints: what is wrong, then what to do."""
        text = self.message.rstrip()
        if self.fix and self.fix not in text:
            text = f"{text.rstrip('.')}. {self.fix}" if text else self.fix
        return text


# ---------------------------------------------------------------- local (exit 2)


class LocalProblem(CrmsyncError):
    """Something on this machine the user must fix."""

    exit_code = EXIT_LOCAL


class ConfigError(LocalProblem):
    """A bad setting; the message names the key and the fix."""

    def line(self) -> str:
        return f"configuration error: {super().line()}"


class UsageError(LocalProblem):
    """A bad command-line argument."""


class MirrorError(LocalProblem):
    """The mirror file cannot be used as it is; it is never overwritten."""


class MirrorBusy(MirrorError):
    """Another crmsync process holds the mirror's writer lock (state/lock.py)."""

    def __init__(self, lock_path: object, holder: dict[str, object] | None) -> None:
        self.lock_path = lock_path
        self.holder = holder or {}
        pid = self.holder.get("pid")
        who = f"crmsync process {pid}" if pid else "another crmsync process"
        host = self.holder.get("host")
        if host and host != socket.gethostname():
            who += f" on {host}"
        since = self.holder.get("since")
        if since:
            who += f" (since {since})"
        super().__init__(
            f"The mirror is busy: {who} is writing to it (lock {lock_path})",
            fix='Wait for it to finish, or run with --wait (or set [daemon] lock = "wait").',
        )


class MirrorTooNew(MirrorError):
    """The mirror was migrated by a newer crmsync than this one."""


class OutputError(LocalProblem):
    """A file crmsync was asked to write cannot be written."""


# ---------------------------------------------------------------- the CRM (exit 3)


class CrmError(CrmsyncError):
    """Something the CRM did or said. `detail` holds the CRM's own words, which may echo
    personal data: it is stored with the outbox row, never logged or printed in a line."""

    exit_code = EXIT_CRM

    def __init__(
        self,
        message: str,
        *,
        crm: str = "",
        operation: str = "",
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.crm = crm
        self.operation = operation
        self.status = status
        self.code = code
        self.detail = detail
        # The WriteResults a write batch got before this error stopped it part-way (a
        # connector sends a batch in several requests): sync/drain.py records them.
        self.answered: list[Any] = []

    def line(self) -> str:
        text = super().line()
        crm = {"salesforce": "Salesforce", "hubspot": "HubSpot"}.get(self.crm, self.crm)
        if crm and not text.lower().startswith(crm.lower()):
            text = f"{crm}: {text}"
        return text


class CrmUnavailable(CrmError):
    """5xx, connection refused or reset, timeout: worth retrying."""

    retry_after: float | None = None  # seconds the CRM asked to wait (Retry-After), if it said


class RateLimited(CrmUnavailable):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaExhausted(CrmError):
    """The daily allocation (or crmsync's configured share of it) is used up."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_at = retry_at

    def line(self) -> str:
        text = super().line()
        if self.retry_at is not None and "retry after" not in text.lower():
            text = f"{text.rstrip('.')}. Retry after {self.retry_at:%Y-%m-%d %H:%M} UTC."
        return text


class AuthFailed(CrmError):
    """Bad or revoked credentials; retrying will not help."""


class CrmRefused(CrmError):
    """The CRM refused a request as malformed or not allowed (HTTP 400, 403, 404)."""


class FieldsMissing(CrmError):
    """Fields crmsync writes to do not exist in the CRM (or it may not write them)."""

    def __init__(self, message: str, *, fields: tuple[str, ...] = (), **kw: object) -> None:
        kw.setdefault("fix", "Run `crmsync setup` to create them.")
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.fields = fields


class EmptyFullPull(CrmError):
    """A full pull found an object empty where the mirror holds rows."""


class MalformedRecord(CrmError):
    """A record from the CRM that cannot be mapped to the canonical model."""

    def __init__(self, message: str, *, record_id: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.record_id = record_id


# ---------------------------------------------------------------- interrupted (exit 130)


class Interrupted(CrmsyncError):
    """A stop was requested (Ctrl-C, SIGTERM) and crmsync stopped at a safe point."""

    exit_code = EXIT_INTERRUPTED


INTERRUPTED_LINE = (
    "interrupted: stopped at a safe point; what was committed is kept and the next run "
    "picks up where this one stopped."
)
STOPPED_AT_ONCE_LINE = (  # a second Ctrl-C / SIGTERM, or one before the command set up its own
    "interrupted: stopped at once; the page or batch in flight was rolled back, what was "
    "committed is kept and the next run picks up where this one stopped."
)


def error_line(error: BaseException) -> str:
    """The one line that reports `error`: the CLI prints it, the run history and the
    daemon's /healthz keep it. Never a CRM payload (those stay in CrmError.detail)."""
    if isinstance(error, CrmsyncError):
        return error.line()
    if isinstance(error, KeyboardInterrupt):
        return STOPPED_AT_ONCE_LINE
    return (
        f"internal error ({type(error).__name__}). This is a bug in crmsync: please report it "
        "with the output of the same command run with -v."
    )


def exit_code_for(error: BaseException) -> int:
    """The exit code for an error that ended a command (the one table)."""
    if isinstance(error, CrmsyncError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_INTERNAL
