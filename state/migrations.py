"""The mirror's schema, as an ordered list of migrations.

Released migrations never change: a schema change is a new function appended
at the end (`m002_...`), so every mirror in the field reaches the same schema
by replaying the same steps. Applied migrations are recorded in `_migrations`
(sqlite-utils' Migrations table) and their count is mirrored in
`PRAGMA user_version`, the schema version `crmsync status` can show.

The column lists below are spelled out on purpose instead of being derived from
state.model.COLUMNS: a later change to the model must not change what a
released migration does. tests/state/test_db.py checks that every canonical
column has a home, so a new model column fails the tests until a migration
adds it.
"""

from __future__ import annotations

import sqlite_utils

from crmsync.state.errors import MirrorTooNew
from crmsync.state.sql import transaction

MIGRATIONS = sqlite_utils.Migrations("crmsync")
MIGRATIONS.migrations_table = "_migrations"

_COMMON_HEAD = """
    crm TEXT NOT NULL,
    id TEXT NOT NULL,"""

# raw: the CRM record's JSON; owned: current CRM values of crmsync-owned fields;
# synced_at: the full-pull generation that last saw the row (local bookkeeping).
_COMMON_TAIL = """
    raw TEXT,
    owned TEXT,
    modified_at TEXT,
    deleted_at TEXT,
    merged_into TEXT,
    synced_at INTEGER,
    PRIMARY KEY (crm, id)"""

_MIRROR_TABLES = {
    "owners": """
    name TEXT,
    email TEXT,
    active INTEGER,""",
    "accounts": """
    name TEXT,
    domain TEXT,
    owner_id TEXT,
    tier TEXT,
    renewal_date TEXT,
    exemption TEXT,""",
    "contacts": """
    account_id TEXT,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    title TEXT,
    owner_id TEXT,
    last_activity_at TEXT,
    created_at TEXT,
    email_bounced INTEGER,
    bounce_reason TEXT,
    bounced_at TEXT,
    opted_out INTEGER,
    left_company INTEGER,
    exemption TEXT,""",
    "opportunities": """
    account_id TEXT,
    name TEXT,
    stage TEXT,
    is_closed INTEGER,
    is_won INTEGER,
    close_date TEXT,
    amount REAL,""",
    "contact_roles": """
    opportunity_id TEXT,
    contact_id TEXT,
    role TEXT,
    is_primary INTEGER,""",
    "tasks": """
    key TEXT,
    account_id TEXT,
    contact_id TEXT,
    owner_id TEXT,
    subject TEXT,
    body TEXT,
    status TEXT,
    priority TEXT,
    due_date TEXT,
    is_closed INTEGER,""",
}

_M001_REST = """
CREATE INDEX contacts_account ON contacts (crm, account_id, id);
CREATE INDEX contacts_name ON contacts (crm, lower(last_name), lower(first_name));
CREATE INDEX opportunities_account ON opportunities (crm, account_id, id);
CREATE INDEX contact_roles_contact ON contact_roles (crm, contact_id);
CREATE INDEX contact_roles_opportunity ON contact_roles (crm, opportunity_id);
CREATE INDEX tasks_key ON tasks (crm, key);
CREATE INDEX tasks_contact ON tasks (crm, contact_id);
CREATE INDEX tasks_account ON tasks (crm, account_id);

CREATE TABLE contact_history (
    id INTEGER PRIMARY KEY,
    crm TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT,
    seen_at TEXT NOT NULL
);
CREATE INDEX contact_history_contact ON contact_history (crm, contact_id);
CREATE INDEX contact_history_old_account ON contact_history (crm, old) WHERE field = 'account_id';

CREATE TABLE cursors (
    crm TEXT NOT NULL,
    object TEXT NOT NULL,
    cursor TEXT,
    mode TEXT,
    generation INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT,
    PRIMARY KEY (crm, object)
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    crm TEXT,
    mode TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    error TEXT,
    counts TEXT,
    api_calls INTEGER,
    api_by_operation TEXT,
    quota_used INTEGER,
    quota_limit INTEGER
);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE flags (
    key TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    crm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    contact_id TEXT,
    subject_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    confidence TEXT,
    evidence TEXT,
    explanation TEXT,
    status TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX flags_rule ON flags (crm, rule, status);
CREATE INDEX flags_account ON flags (crm, account_id);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    crm TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    target_id TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'inflight', 'done', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error TEXT,
    crm_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    done_at TEXT
);
-- One live row per intended write: the same key is never queued twice.
CREATE UNIQUE INDEX outbox_live_key ON outbox (crm, key) WHERE status <> 'done';
CREATE INDEX outbox_status ON outbox (crm, status, id);

CREATE TABLE written (
    crm TEXT NOT NULL,
    object TEXT NOT NULL,
    id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT,
    written_at TEXT NOT NULL,
    PRIMARY KEY (crm, object, id, field)
);
"""


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Mirror tables, history, cursors, runs, flags, outbox, written."""
    for table, columns in _MIRROR_TABLES.items():
        db.execute(f"CREATE TABLE {table} ({_COMMON_HEAD}{columns}{_COMMON_TAIL}\n)")
    for statement in _M001_REST.split(";"):
        if statement.strip():
            db.execute(statement)


_M002_CONFLICTS = """
CREATE TABLE conflicts (
    crm TEXT NOT NULL,
    object TEXT NOT NULL,
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    account_id TEXT,
    label TEXT,
    wanted TEXT,
    held TEXT,
    last_written TEXT,
    after_write INTEGER NOT NULL DEFAULT 0,
    who TEXT,
    who_user TEXT,
    who_name TEXT,
    changed_at TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    handed_back_at TEXT,
    PRIMARY KEY (crm, object, record_id, field)
);
CREATE INDEX conflicts_open ON conflicts (crm, resolved_at);
"""


@MIGRATIONS()
def m002_conflicts(db: sqlite_utils.Database) -> None:
    """Conflicts: values in crmsync's fields that are not crmsync's (state/conflicts.py)."""
    for statement in _M002_CONFLICTS.split(";"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS()
def m003_crm_info_and_run_as_of(db: sqlite_utils.Database) -> None:
    """What each CRM says about itself (for record links); the as-of time of each run's rules.

    crm_info: small facts a pull learns from the CRM and the offline report needs,
    e.g. the Salesforce instance URL and the HubSpot portal id (state/crm_info.py).
    runs.as_of: the time the run evaluated the rules as of (`--as-of`, else its start):
    the date the leader report is dated by.
    """
    db.execute(
        """CREATE TABLE crm_info (
    crm TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    updated_at TEXT,
    PRIMARY KEY (crm, key)
)"""
    )
    db.execute("ALTER TABLE runs ADD COLUMN as_of TEXT")


# hs_buying_role codes a HubSpot pull stored before the connector mapped them to role names
# at pull (connectors/hubspot/fields.py BUYING_ROLES); frozen here as they were then.
_M004_HUBSPOT_ROLES = {
    "CHAMPION": "Champion",
    "BUDGET_HOLDER": "Economic Buyer",
    "EXECUTIVE_SPONSOR": "Executive Sponsor",
    "DECISION_MAKER": "Decision Maker",
}


def _m004_role(role: str) -> str:
    parts = role.split(";")
    named = [
        _M004_HUBSPOT_ROLES.get(p.strip().upper(), p) if ("_" in p or p.isupper()) else p
        for p in parts
    ]
    return ";".join(named)


@MIGRATIONS()
def m004_hubspot_role_names(db: sqlite_utils.Database) -> None:
    """HubSpot buying roles stored as codes (BUDGET_HOLDER) become the role names the rules
    read (Economic Buyer), as a pull stores them now; so the rules know no HubSpot code."""
    rows = db.execute(
        "SELECT id, role FROM contact_roles WHERE crm = 'hubspot' AND role IS NOT NULL"
    ).fetchall()
    for rid, role in rows:
        named = _m004_role(role)
        if named != role:
            db.execute(
                "UPDATE contact_roles SET role = ? WHERE crm = 'hubspot' AND id = ?", [named, rid]
            )


@MIGRATIONS()
def m005_schema_cache(db: sqlite_utils.Database) -> None:
    """Schema look-ups kept between runs (state/schema_cache.py, issue 14): Salesforce
    describes, HubSpot property lists and owners, so an incremental over an unchanged org
    asks for none of them until they are `max age` old or a query names a missing field.

    body: the CRM's answer (JSON); fetched_at: when it was last confirmed (crmsync's clock,
    the run's start); validator: what the CRM wants back to say "unchanged" (Salesforce:
    the describe response's Date, sent as If-Modified-Since).
    """
    db.execute(
        """CREATE TABLE schema_cache (
    crm TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    validator TEXT,
    PRIMARY KEY (crm, key)
)"""
    )


_M006_ENRICHMENT = """
CREATE TABLE enrichment_lookups (
    crm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    provider TEXT NOT NULL,
    domain TEXT,
    fetched_at TEXT NOT NULL,
    found INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (crm, account_id, role, provider)
);
CREATE TABLE enrichment_people (
    crm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    provider TEXT NOT NULL,
    n INTEGER NOT NULL,
    name TEXT NOT NULL,
    title TEXT,
    email TEXT,
    source TEXT,
    PRIMARY KEY (crm, account_id, role, provider, n)
);
CREATE INDEX enrichment_people_account ON enrichment_people (crm, account_id)
"""


@MIGRATIONS()
def m006_enrichment_cache(db: sqlite_utils.Database) -> None:
    """Outside people-data (sync/enrichment.py): which (account, role) a provider was asked
    about and when (enrichment_lookups, also when it found nobody), and the people it
    returned (enrichment_people). Outside data, never a CRM record."""
    for statement in _M006_ENRICHMENT.split(";"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS()
def m007_flag_rules_seen(db: sqlite_utils.Database) -> None:
    """When each rule last ran over each CRM (state/flags.py): a flag found again unchanged
    is not rewritten, so an open flag's last_seen is its rule's last run, read from here.

    Filled from the flags: every flag found by a rule's last run was stamped with it."""
    db.execute(
        """CREATE TABLE flag_rules (
    crm TEXT NOT NULL,
    rule TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (crm, rule)
)"""
    )
    db.execute(
        "INSERT INTO flag_rules (crm, rule, seen_at)"
        " SELECT crm, rule, max(last_seen) FROM flags GROUP BY crm, rule"
    )


_M008_IDENTITY = """
CREATE TABLE identity_links (
    object TEXT NOT NULL,
    salesforce_id TEXT NOT NULL,
    hubspot_id TEXT NOT NULL,
    how TEXT NOT NULL,
    kept_through_merge INTEGER NOT NULL DEFAULT 0,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (object, salesforce_id)
);
CREATE UNIQUE INDEX identity_links_hubspot ON identity_links (object, hubspot_id);
CREATE TABLE identity_ambiguous (
    object TEXT NOT NULL,
    how TEXT NOT NULL,
    n INTEGER NOT NULL,
    salesforce_ids TEXT NOT NULL,
    hubspot_ids TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (object, how, n)
);
CREATE TABLE identity_refresh (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    refreshed_at TEXT NOT NULL
)
"""


@MIGRATIONS()
def m008_identity_links(db: sqlite_utils.Database) -> None:
    """One person across Salesforce and HubSpot (state/identity.py, docs/identity.md).

    identity_links: a Salesforce record and a HubSpot record of the same person (contacts)
    or company (accounts), one to one; how they were matched (integration_id, email,
    domain); whether the link was carried through a merge in either CRM; when first linked.
    identity_ambiguous: candidates that matched more than one record, reported instead of
    linked (replaced at every recompute). identity_refresh: when the links were last
    recomputed (a pull that changed no account or contact does not recompute them)."""
    for statement in _M008_IDENTITY.split(";"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS()
def m009_contacts_live_name(db: sqlite_utils.Database) -> None:
    """Same-name lookups (state/views.py) read a name's live contacts in (account, id)
    order and stop after the few they need: an index on exactly that. It replaces
    contacts_name, which left each name's rows in table order."""
    db.execute(
        "CREATE INDEX contacts_live_name ON contacts"
        " (crm, lower(last_name), lower(first_name), account_id, id) WHERE deleted_at IS NULL"
    )
    db.execute("DROP INDEX contacts_name")


def known_names() -> list[str]:
    return [m.name for m in MIGRATIONS._migrations]


def schema_version(db: sqlite_utils.Database) -> int:
    """How many migrations this mirror has applied."""
    return len(MIGRATIONS.applied(db))


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations under the write lock; return their names."""
    _refuse_newer(db)
    if not MIGRATIONS.pending(db):
        return []
    with transaction(db):
        # Re-check inside the write lock: another process may have just migrated.
        pending = [m.name for m in MIGRATIONS.pending(db)]
        MIGRATIONS.apply(db)
        db.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS.applied(db))}")
    return pending


def _refuse_newer(db: sqlite_utils.Database) -> None:
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in set(known_names())]
    if unknown:
        raise MirrorTooNew(
            f"The mirror was upgraded by a newer crmsync (migration {unknown[-1]})",
            fix="Upgrade crmsync, or point [mirror] path at a new file.",
        )
