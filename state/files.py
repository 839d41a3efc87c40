"""Files crmsync writes that hold personal data or secrets: readable by their owner only.

`write_private` is the one way crmsync replaces such a file (a report, a rotated refresh
token): the new content goes to a temporary file beside it, created 0600 before a byte is
written, flushed to disk, then renamed over the old one. A reader sees the old file or the
new one, never half of it, no other user can read it at any moment, and an existing, wider
file at the path is replaced rather than reused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text`, readable by its owner only (0600), atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_MODE)  # mkstemp's mode already; explicit, before writing
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
