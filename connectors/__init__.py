"""CRM connectors: one package per CRM, each speaking through its official client library.

CONNECTORS maps a CRM name to its connector class; importing is lazy so a
machine configured for one CRM never imports the other's client.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, cast

from crmsync.connectors.base import Connector


class _Registry(Mapping[str, type[Connector]]):
    _paths = {
        "salesforce": ("crmsync.connectors.salesforce", "SalesforceConnector"),
        "hubspot": ("crmsync.connectors.hubspot", "HubSpotConnector"),
    }

    def __getitem__(self, crm: str) -> type[Connector]:
        module, name = self._paths[crm]
        return cast(type[Connector], getattr(importlib.import_module(module), name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


CONNECTORS: Mapping[str, type[Connector]] = _Registry()

if TYPE_CHECKING:  # mypy holds both connectors to the Protocol
    from crmsync.connectors.hubspot import HubSpotConnector
    from crmsync.connectors.salesforce import SalesforceConnector

    _CHECKED: tuple[type[Connector], ...] = (SalesforceConnector, HubSpotConnector)
