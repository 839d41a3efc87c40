"""Mirror snapshots and comparisons for the sync-level pull tests (FFP, O1, O6).

FFP ("the mirror equals a fresh full pull") compares what a rule could read:
per canonical table, the live rows (deleted_at IS NULL) keyed by id, with the
canonical columns of state.model.COLUMNS and `modified_at`. Left out on
purpose:

- bookkeeping that depends on the path a row took, not on the CRM: synced_at
  (full-pull generation), deleted_at's value, merged_into of tombstones,
  contact_history (a fresh pull has no history by design);
- tombstones themselves: a record deleted between runs is a tombstone in the
  incremental mirror and absent from a fresh one; both say "not live", and a
  row live on one side only is a difference;
- `raw` unless asked (`with_raw=True`): it is compared parsed, so key order
  is no difference.

`diff()` renders the differences readably (ids and column names first, values
truncated); `assert_same()` fails with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from crmsync.state.model import COLUMNS, ObjectType

# The canonical tables a pull fills (tasks are crmsync's own write-back objects).
TABLES: dict[str, ObjectType] = {
    "owners": ObjectType.OWNER,
    "accounts": ObjectType.ACCOUNT,
    "contacts": ObjectType.CONTACT,
    "opportunities": ObjectType.OPPORTUNITY,
    "contact_roles": ObjectType.CONTACT_ROLE,
}

Row = dict[str, Any]
Snapshot = dict[str, dict[str, Row]]


def snapshot(
    db_path: str | Path,
    crm: str,
    *,
    with_raw: bool = False,
    with_modified: bool = True,
    tables: Iterable[str] = TABLES,
) -> Snapshot:
    """Live canonical rows per table: {table: {id: {column: value}}}."""
    out: Snapshot = {}
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        for table in tables:
            cols = list(COLUMNS[TABLES[table]])
            if with_modified:
                cols.append("modified_at")
            if with_raw:
                cols.append("raw")
            sql = (
                f"SELECT id, {', '.join(cols)} FROM {table} "
                "WHERE crm = ? AND deleted_at IS NULL ORDER BY id"
            )
            rows: dict[str, Row] = {}
            for rid, *values in conn.execute(sql, [crm]):
                row = dict(zip(cols, values, strict=True))
                if with_raw and row.get("raw") is not None:
                    row["raw"] = json.loads(row["raw"])
                rows[rid] = row
            out[table] = rows
    finally:
        conn.close()
    return out


def tombstones(db_path: str | Path, crm: str, table: str) -> dict[str, str | None]:
    """Soft-deleted ids of a table -> merged_into (None for a plain delete)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        return dict(
            conn.execute(
                f"SELECT id, merged_into FROM {table} WHERE crm = ? AND deleted_at IS NOT NULL",
                [crm],
            ).fetchall()
        )
    finally:
        conn.close()


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff(a: Snapshot, b: Snapshot, *, names: tuple[str, str] = ("A", "B"), limit: int = 20) -> str:
    """Readable differences between two snapshots; "" when equal."""
    lines: list[str] = []
    na, nb = names
    for table in sorted(set(a) | set(b)):
        ra, rb = a.get(table, {}), b.get(table, {})
        only_a = sorted(set(ra) - set(rb))
        only_b = sorted(set(rb) - set(ra))
        changed = sorted(i for i in set(ra) & set(rb) if ra[i] != rb[i])
        if not (only_a or only_b or changed):
            continue
        lines.append(
            f"{table}: {len(ra)} live in {na}, {len(rb)} live in {nb}; only in {na}: {len(only_a)}, "
            f"only in {nb}: {len(only_b)}, different: {len(changed)}"
        )
        for rid in only_a[:limit]:
            lines.append(f"  - {rid} live only in {na}")
        for rid in only_b[:limit]:
            lines.append(f"  + {rid} live only in {nb}")
        for rid in changed[:limit]:
            cols = sorted(c for c in set(ra[rid]) | set(rb[rid]) if ra[rid].get(c) != rb[rid].get(c))
            for c in cols:
                lines.append(
                    f"  ~ {rid}.{c}: {na}={_short(ra[rid].get(c))} {nb}={_short(rb[rid].get(c))}"
                )
    return "\n".join(lines)


def assert_same(a: Snapshot, b: Snapshot, *, names: tuple[str, str] = ("A", "B")) -> None:
    """Fail with a readable diff unless the snapshots are equal."""
    text = diff(a, b, names=names)
    assert not text, "mirrors differ:\n" + text


def counts(snap: Snapshot) -> dict[str, int]:
    return {table: len(rows) for table, rows in snap.items()}


def runs(db_path: str | Path) -> list[dict[str, Any]]:
    """The runs table, oldest first, counts parsed."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        out = []
        for row in conn.execute("SELECT * FROM runs ORDER BY id"):
            d = dict(row)
            for key in ("counts", "api_by_operation"):
                if isinstance(d.get(key), str):
                    d[key] = json.loads(d[key])
            out.append(d)
        return out
    finally:
        conn.close()


def cursor(db_path: str | Path, crm: str, obj: str) -> dict[str, Any] | None:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT cursor FROM cursors WHERE crm = ? AND object = ?", [crm, obj]
        ).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])
    finally:
        conn.close()


def write_sync_toml(path: Path, sandbox: Any, mirror: str = "crmsync.db", extra: str = "") -> Path:
    """A working sync.toml for one sandbox: [mirror] + the sandbox's table (+ `extra` lines in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    sandbox.write_config(path)
    text = path.read_text(encoding="utf-8").rstrip("\n")
    if extra:
        text += "\n" + extra.strip() + "\n"
    path.write_text(f'[mirror]\npath = "{mirror}"\n\n{text}\n', encoding="utf-8")
    return path



# ---------------------------------------------------------------- crmsync as a user runs it

ROOT = Path(__file__).resolve().parents[2]

# Runs crmsync with RLIMIT_FSIZE and SIGXFSZ ignored, so a write past the limit fails with
# EFBIG/SQLITE_FULL as a full disk does, instead of killing the process.
_LIMITED = (
    "import resource, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "from crmsync.sync.cli import main\n"
    "main()\n"
)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a crmsync subprocess: no proxies (loopback stays local), this tree."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def crmsync_argv(*args: str, max_file_bytes: int | None = None) -> list[str]:
    """argv that runs `crmsync ARGS` (with a file-size limit when `max_file_bytes` is set)."""
    if max_file_bytes is None:
        return [sys.executable, "-m", "crmsync.sync.cli", *args]
    return [sys.executable, "-c", _LIMITED, str(max_file_bytes), *args]


def crmsync(
    *args: str,
    cwd: Path = ROOT,
    max_file_bytes: int | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run `crmsync ARGS` as a subprocess to the end; stdout and stderr captured."""
    return subprocess.run(
        crmsync_argv(*args, max_file_bytes=max_file_bytes), cwd=cwd, env=env or cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


class Spawned:
    """`crmsync ARGS` running in the background; its stderr is collected line by line."""

    def __init__(self, *args: str, cwd: Path = ROOT) -> None:
        self.proc = subprocess.Popen(
            crmsync_argv(*args), cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self.stdout = ""
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err.start()
        self._out.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for_stderr(self, text: str, timeout: float = 60) -> None:
        wait_until(lambda: any(text in line for line in self.lines) or self.proc.poll() is not None,
                   timeout, f"{text!r} on stderr")
        assert any(text in line for line in self.lines), self.stderr[-3000:]

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._err.join(timeout=10)
        self._out.join(timeout=10)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout` seconds (a bound, not a margin)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def error_lines(output: str) -> list[str]:
    """The `crmsync: ...` lines of a command's stderr (what handles_errors prints)."""
    return [line for line in output.splitlines() if line.startswith("crmsync: ")]


def assert_one_error_line(output: str, *needles: str) -> str:
    """Exactly one `crmsync:` line, holding every needle, and no traceback; returns the line."""
    assert "Traceback" not in output, output[-3000:]
    lines = error_lines(output)
    assert len(lines) == 1, f"expected one error line, got {lines!r}\n{output[-3000:]}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: "nothing was changed" is the same digest after."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Gate:
    """A sandbox's sleep hook: a latency fault parks its request here until the test releases
    it, so a test can act (signal, kill) while a request is known to be in flight."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.timeout = timeout

    def arm(self) -> None:
        self.entered.clear()
        self.released.clear()

    def __call__(self, _duration: float) -> None:
        self.entered.set()
        self.released.wait(timeout=self.timeout)
