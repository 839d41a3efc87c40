"""Compound address fields (Account.BillingAddress, Contact.MailingAddress, User.Address).

Salesforce describes them as type "address" with their components marked by
`compoundFieldName`, and answers a compound field in SOQL (REST API) as one object
of its components, null when every component is null ("Compound Fields",
developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
compound_fields_address.htm). Bulk API 2.0 refuses them: 400 INVALID_FIELD
"Selecting compound data not supported in Bulk Query" (the message Airbyte's
source-salesforce checks for). The sandbox stores no value for a compound field:
it is built from the component columns when a query renders it. Components the
sandbox's schema does not have (it keeps BillingCity and BillingCountry only) are
null. Other connectors (Singer's tap-salesforce, Airbyte's source-salesforce)
choose their API and schema from these fields: bench/peers.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Row, Table

# Object keys of an address value, by component field suffix (BillingCity -> city).
ADDRESS_KEYS = {
    "Street": "street", "City": "city", "State": "state", "PostalCode": "postalCode",
    "Country": "country", "StateCode": "stateCode", "CountryCode": "countryCode",
    "Latitude": "latitude", "Longitude": "longitude", "GeocodeAccuracy": "geocodeAccuracy",
}
BULK_COMPOUND_MESSAGE = "Selecting compound data not supported in Bulk Query"


def is_compound(field_type: str) -> bool:
    return field_type in ("address", "location")


def address_value(table: Table, row: Row, name: str) -> dict[str, Any] | None:
    """The compound field `name` of `row` as Salesforce renders it, or None."""
    prefix = name[: -len("Address")] if name.endswith("Address") else name
    out: dict[str, Any] = {}
    for suffix, key in ADDRESS_KEYS.items():
        col = table.cols.get((prefix + suffix).lower())
        out[key] = row[col] if col is not None and col < len(row) else None
    return out if any(v is not None for v in out.values()) else None
