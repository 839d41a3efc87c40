"""Whose queue an account's tasks land in, and whose an account's writes and conflicts are.

The account owner; if the account has none, or that user is deactivated (the
CRM refuses tasks for them, e.g. Salesforce INACTIVE_OWNER_OR_USER; HubSpot
lists them as archived owners) or unknown to the mirror's owners,
`[writeback] default_owner`; if that is unset, the active owner with the most
accounts. The planner warns naming the accounts whose tasks went to that
fallback, once when an account joins them (sync/plan.py, state/owner_fallback.py).
"""

from __future__ import annotations

from collections.abc import Mapping


class Owners:
    """The owner rule for one CRM, with the accounts whose tasks went to the fallback."""

    def __init__(
        self,
        default_owner: str | None,
        active: Mapping[str, bool],
        inactive: frozenset[str] = frozenset(),
        fallback: str | None = None,
    ) -> None:
        self.default_owner = default_owner
        self.active = dict(active)  # owner id -> active, as the mirror knows them
        self.inactive = inactive
        self.fallback = fallback  # the active owner with the most accounts
        self.fallback_accounts: set[str] = set()  # accounts whose tasks went to it

    def of(self, account_id: str, owner_id: str | None, *, task: bool = False) -> str | None:
        """Who the account's tasks (and writes) belong to; `task=True` notes a fallback."""
        if owner_id and self._active(owner_id):
            return owner_id
        if self.default_owner:
            return self.default_owner
        if self.fallback and task:
            self.fallback_accounts.add(account_id)
        return self.fallback

    def _active(self, owner_id: str) -> bool:
        if owner_id in self.inactive:
            return False
        if owner_id in self.active:
            return self.active[owner_id]
        return not self.active  # the mirror knows no owners at all: trust the account
