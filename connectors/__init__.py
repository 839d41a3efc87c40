"""CRM connectors: one package per CRM, each speaking through its official client library.

CONNECTORS maps a CRM name to its connector class; importing is lazy so a
machine configured for one CRM never imports the other's client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class _Registry(Mapping[str, Any]):
    _paths = {
        "salesforce": ("crmsync.connectors.salesforce", "SalesforceConnector"),
        "hubspot": ("crmsync.connectors.hubspot", "HubSpotConnector"),
    }

    def __getitem__(self, crm: str) -> Any:
        import importlib

        module, name = self._paths[crm]
        return getattr(importlib.import_module(module), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


CONNECTORS: Mapping[str, Any] = _Registry()
