"""One writer per mirror: a second writer waits or gets MirrorBusy naming the holder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crmsync.state.errors import MirrorBusy
from crmsync.state.lock import acquire_writer_lock, lock_path_for


def test_o2_second_writer_without_wait_is_refused_with_holder_pid(db_path: Path) -> None:
    with acquire_writer_lock(db_path, wait=False):
        with pytest.raises(MirrorBusy) as err:
            with acquire_writer_lock(db_path, wait=False):
                pass  # pragma: no cover
        assert f"crmsync process {os.getpid()}" in str(err.value)
        assert err.value.holder["pid"] == os.getpid()
    with acquire_writer_lock(db_path, wait=False):  # released after the block
        pass


def test_waiting_writer_gives_up_after_timeout(db_path: Path) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with acquire_writer_lock(db_path, wait=False):
        with pytest.raises(MirrorBusy):
            with acquire_writer_lock(
                db_path, wait=True, timeout=1.0, sleep=sleep, clock=lambda: now[0]
            ):
                pass  # pragma: no cover
    assert 4 <= len(sleeps) <= 6


def test_waiting_writer_gets_the_lock_when_released(db_path: Path) -> None:
    holder = acquire_writer_lock(db_path, wait=False)
    holder.__enter__()

    def sleep(seconds: float) -> None:
        holder.__exit__(None, None, None)  # the other run finishes while we wait

    with acquire_writer_lock(db_path, wait=True, timeout=5, sleep=sleep, clock=lambda: 0.0):
        pass


def test_lock_held_by_another_process_names_it_and_dies_with_it(db_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from crmsync.state.lock import acquire_writer_lock
        with acquire_writer_lock({str(db_path)!r}, wait=False):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(MirrorBusy, match=f"crmsync process {proc.pid}"):
            with acquire_writer_lock(db_path, wait=False):
                pass  # pragma: no cover
    finally:
        proc.kill()  # SIGKILL: the kernel drops the flock
        proc.wait()
    with acquire_writer_lock(db_path, wait=False):
        pass
    assert lock_path_for(db_path).name == "mirror.db.lock"
