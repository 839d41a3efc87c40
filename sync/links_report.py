"""`crmsync links`: the records linked across Salesforce and HubSpot (docs/identity.md).

How many records are linked and by which step, and the matches reported instead of
linked. Record ids only: never a name or an e-mail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rich.table import Table

from crmsync.state import identity

from .config import Config
from .report import _open, _render, cell, to_json

# ---------------------------------------------------------------- crmsync links


def print_links(cfg: Config, *, fmt: str, echo: Callable[[str], None]) -> int:
    """`crmsync links`: how many records are linked and how; the ambiguous candidates
    (ids only: never a name or an e-mail). Exit 0."""
    db = _open(cfg)
    all_links = identity.links(db)
    candidates = identity.ambiguous(db)
    if fmt == "json":
        echo(
            to_json(
                {
                    "home": cfg.identity.home or None,
                    "refreshed_at": identity.refreshed_at(db),
                    "counts": identity.counts(db),
                    "links": [dataclasses.asdict(link) for link in all_links],
                    "ambiguous": [dataclasses.asdict(a) for a in candidates],
                }
            )
        )
        return 0
    home = cfg.identity.home or "off ([identity] home is not set)"
    when = identity.refreshed_at(db)
    at = f"{when:%Y-%m-%d %H:%M} UTC" if when else "never"
    t = Table(
        title=f"{len(all_links)} links; home CRM: {home}; recomputed {at}", title_justify="left"
    )
    for col in ("object", "matched by", "links"):
        t.add_column(col)
    for key, n in identity.counts(db).items():
        obj, _, how = key.partition("_")
        if how != "ambiguous":
            t.add_row(cell(obj), cell(how), cell(n))
    _render(t, echo)
    if candidates:
        a = Table(
            title=f"{len(candidates)} ambiguous matches, not linked (fix the records in the CRM)",
            title_justify="left",
        )
        for col in ("object", "matched by", "salesforce ids", "hubspot ids"):
            a.add_column(col, overflow="fold")
        for c in candidates:
            a.add_row(
                cell(c.object),
                cell(c.how),
                cell(", ".join(c.salesforce_ids)),
                cell(", ".join(c.hubspot_ids)),
            )
        _render(a, echo)
    return 0
