"""crmsync: mirror Salesforce and HubSpot people data into SQLite, run hygiene rules over the
mirror, and write what they find back into the CRM.

The command line (`crmsync --help`) is the product. For scripts, this module exposes a small,
stable surface; everything else (`crmsync.sync`, `crmsync.state`, `crmsync.rules`,
`crmsync.connectors`) is internal and may change between releases. The names load on first
use, so `import crmsync.rules` stays as light as the rules themselves.

    import crmsync
    config = crmsync.load_config("sync.toml")
    reports = crmsync.run_all(config, crmsync.RunOptions())
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmsync.state.db import open_db
    from crmsync.state.errors import ConfigError, CrmError, CrmsyncError, MirrorError
    from crmsync.sync.config import Config
    from crmsync.sync.config import load as load_config
    from crmsync.sync.run import RunOptions, RunReport, run_all

try:
    __version__ = version("crmsync")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# public name -> (module, attribute)
_PUBLIC: dict[str, tuple[str, str]] = {
    "Config": ("crmsync.sync.config", "Config"),
    "load_config": ("crmsync.sync.config", "load"),
    "RunOptions": ("crmsync.sync.run", "RunOptions"),
    "RunReport": ("crmsync.sync.run", "RunReport"),
    "run_all": ("crmsync.sync.run", "run_all"),
    "open_db": ("crmsync.state.db", "open_db"),
    "CrmsyncError": ("crmsync.state.errors", "CrmsyncError"),
    "ConfigError": ("crmsync.state.errors", "ConfigError"),
    "CrmError": ("crmsync.state.errors", "CrmError"),
    "MirrorError": ("crmsync.state.errors", "MirrorError"),
}

__all__ = [
    "__version__",
    "Config",
    "load_config",
    "RunOptions",
    "RunReport",
    "run_all",
    "open_db",
    "CrmsyncError",
    "ConfigError",
    "CrmError",
    "MirrorError",
]
assert set(__all__) == {"__version__", *_PUBLIC}


def __getattr__(name: str) -> Any:
    """PEP 562: load a public name on first use."""
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'crmsync' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
