"""Rich progress bars for a pull on a terminal: per object, records, rate, ETA, API calls.

Only used when stderr is a terminal; otherwise pull() logs one line per page.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .pull import Progress as PullProgress


class RichProgress(PullProgress):
    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.fields[crm]:<10} {task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8} rec/s"),
            TextColumn("{task.fields[calls]:>5} calls"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        # The bars say what the per-page log lines would; keep the terminal readable.
        self._quiet = {n: logging.getLogger(n) for n in ("crmsync.sync.pull", "crmsync.state", "crmsync.connectors")}
        self._levels = {n: lg.level for n, lg in self._quiet.items()}
        for lg in self._quiet.values():
            lg.setLevel(logging.WARNING)
        self._progress.start()

    def start(self, crm: str, obj: str, mode: str) -> None:
        self._tasks[(crm, obj)] = self._progress.add_task(
            f"{obj} ({mode})", total=None, crm=crm, calls=0, rate="-"
        )

    def advance(self, crm: str, obj: str, records: int, api_calls: int, total: int | None) -> None:
        tid = self._tasks[(crm, obj)]
        self._progress.update(tid, advance=records, calls=api_calls, total=total)
        task = self._progress.tasks[tid]
        speed = task.speed
        self._progress.update(tid, rate=f"{speed:,.0f}" if speed else "-")

    def finish(self, crm: str, obj: str) -> None:
        tid = self._tasks[(crm, obj)]
        task = self._progress.tasks[tid]
        self._progress.update(tid, total=task.completed)

    def close(self) -> None:
        self._progress.stop()
        for n, lg in self._quiet.items():
            lg.setLevel(self._levels[n])
