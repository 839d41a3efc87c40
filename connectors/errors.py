"""What can go wrong talking to a CRM: the CRM branch of crmsync's one error tree.

The classes live in state/errors.py (the leaf every layer imports) and are
named here for the connectors. Connectors translate library exceptions into
these; nothing above connectors/ catches a simple-salesforce or
hubspot-api-client exception.
"""

from state.errors import (
    AuthFailed,
    CrmError,
    CrmRefused,
    CrmUnavailable,
    FieldsMissing,
    MalformedRecord,
    QuotaExhausted,
    RateLimited,
    RecordRejected,
)

__all__ = [
    "AuthFailed",
    "CrmError",
    "CrmRefused",
    "CrmUnavailable",
    "FieldsMissing",
    "MalformedRecord",
    "QuotaExhausted",
    "RateLimited",
    "RecordRejected",
]
