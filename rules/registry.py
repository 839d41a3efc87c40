"""The rules, in the order they run and report: the one list of rule names.

Each rule module declares its `NAME` (the `rule` column, the `[rules.NAME]` table, the
`--rule` value); everything else that names a rule takes it from here or from the module.
Bouncing and departed come first: the others need to know who is no longer active.
"""

from __future__ import annotations

from . import bouncing_contacts, departed_champions, single_threaded, stale_contacts

RULES = (bouncing_contacts, departed_champions, stale_contacts, single_threaded)
RULE_NAMES = tuple(r.NAME for r in RULES)

# What an account manager may type for a rule in the exemption field (rules/suppression.py).
RULE_ALIASES = {
    "stale": stale_contacts.NAME,
    "bouncing": bouncing_contacts.NAME,
    "bounce": bouncing_contacts.NAME,
    "departed": departed_champions.NAME,
    "single threaded": single_threaded.NAME,
    "single-threaded": single_threaded.NAME,
    "single_threaded": single_threaded.NAME,
}
