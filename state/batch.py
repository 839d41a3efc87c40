"""`batched(items, n)`: lists of at most n items, in order (itertools.batched, Python 3.12).

The one chunking helper of the product: a CRM's per-call limit (ids per search, rows per
batch write) and a page of rows both go through it. Chunking with a uniqueness rule (no
record twice in one write batch) stays in each connector's push.py, where the CRM's rule is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Successive lists of `n` items (the last may be shorter); nothing for no items."""
    if n < 1:
        raise ValueError("batch size must be at least 1")
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk
