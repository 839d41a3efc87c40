"""One writer per mirror: an flock on "<mirror>.lock".

SQLite would serialise two writers anyway, but two syncs interleaving pages,
cursors and outbox claims would each think the other's rows are theirs (O2:
an incremental still running when the next trigger fires, an admin's `--full`
during the daemon's run). So every command that writes takes this lock first;
readers (`crmsync status`, `crmsync flags`) do not.

The lock is `fcntl.flock` on a side file: the kernel drops it when the process
dies, however it dies, so a SIGKILLed run never leaves a stale lock. The
holder writes its pid into the file so the second process can say who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from crmsync.state.errors import MirrorBusy, MirrorError

POLL_SECONDS = 0.2


def lock_path_for(db_path: str | os.PathLike[str]) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


def read_holder(lock_path: Path) -> dict[str, object] | None:
    try:
        text = lock_path.read_text(encoding="utf-8").strip()
        holder = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


@contextmanager
def acquire_writer_lock(
    db_path: str | os.PathLike[str],
    *,
    wait: bool,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Path]:
    """Hold the mirror's writer lock for the `with` block.

    wait=False: raise MirrorBusy at once if held. wait=True: block until free,
    or until `timeout` seconds have passed (then MirrorBusy); timeout=None
    waits forever.
    """
    path = lock_path_for(db_path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise _lock_file_error(path, e, "create") from e
    try:
        _lock(fd, path, wait=wait, timeout=timeout, sleep=sleep, clock=clock)
        try:
            try:
                _write_holder(fd)
            except OSError as e:
                raise _lock_file_error(path, e, "write") from e
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock(
    fd: int,
    path: Path,
    *,
    wait: bool,
    timeout: float | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    if wait and timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = None if timeout is None else clock() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if not wait or (deadline is not None and clock() >= deadline):
            raise MirrorBusy(path, read_holder(path))
        sleep(POLL_SECONDS)


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)


def _lock_file_error(path: Path, e: OSError, doing: str) -> MirrorError:
    """The lock file beside the mirror cannot be created or written."""
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return MirrorError(
            f"could not {doing} the mirror's lock file {path}: {e.strerror}",
            fix="Free space and run again; nothing half-written was kept.",
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return MirrorError(
            f"could not {doing} the mirror's lock file {path}: {e.strerror} (the mirror's folder "
            "must be writable)",
            fix="Make the folder writable by this user, or set [mirror] path to a writable place.",
        )
    return MirrorError(
        f"could not {doing} the mirror's lock file {path}: {e.strerror or e}",
        fix="Check [mirror] path in sync.toml and the folder's permissions.",
    )
