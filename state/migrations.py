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

import re

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


# ---------------------------------------------------------------- m010: evaluate what changed

# Which accounts a run must evaluate again (state/dirty.py, docs/design.md "Evaluating
# what changed"). Triggers on every table a rule or the planner reads put the (crm,
# account) pairs whose view a write can change into dirty_accounts, whatever wrote it
# (a page, a tombstone, a merge's repoint, a reconcile, a cascade); they stay quiet
# until a CRM's first evaluation is recorded (evaluation_state), so a first pull pays
# nothing. Bookkeeping (synced_at, raw, modified_at) dirties nothing; crmsync's own
# fields (owned) only when the CRM holds something other than what crmsync last wrote.
_M010_TABLES = """
CREATE TABLE evaluation_state (
    crm TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    as_of TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    evaluated_at TEXT NOT NULL
);
CREATE TABLE account_state (
    crm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    due TEXT,
    coverage TEXT,
    PRIMARY KEY (crm, account_id)
) WITHOUT ROWID;
CREATE INDEX account_state_due ON account_state (crm, due) WHERE due IS NOT NULL;
CREATE TABLE dirty_accounts (
    crm TEXT NOT NULL,
    account_id TEXT NOT NULL
);
CREATE INDEX dirty_accounts_account ON dirty_accounts (crm, account_id);
CREATE INDEX flags_contact ON flags (crm, contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX accounts_owner ON accounts (crm, owner_id);
CREATE INDEX tasks_owner ON tasks (crm, owner_id)
"""

_M010_ON = "EXISTS (SELECT 1 FROM evaluation_state s WHERE s.crm = {r}.crm)"
# No key: a trigger's OR IGNORE gives way to the writing statement's own conflict clause
# (an upsert's), so an account may be listed more than once; readers take it once.
_M010_DIRTY = "INSERT INTO dirty_accounts (crm, account_id) "


def _m010_changed(columns: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns) + ")"


def _m010_owned(obj: str) -> str:
    """new.owned differs from old.owned other than by becoming what crmsync last wrote."""
    return f"""(EXISTS (SELECT 1 FROM json_each(coalesce(new.owned, '{{}}')) j
        WHERE j.value IS NOT json_extract(coalesce(old.owned, '{{}}'), '$."' || j.key || '"')
          AND NOT EXISTS (SELECT 1 FROM written w WHERE w.crm = new.crm AND w.object = '{obj}'
              AND w.id = new.id AND w.field = j.key AND json_extract(w.value, '$') IS j.value))
    OR EXISTS (SELECT 1 FROM json_each(coalesce(old.owned, '{{}}')) j
        WHERE json_type(coalesce(new.owned, '{{}}'), '$."' || j.key || '"') IS NULL))"""


def _m010_contact_accounts(r: str) -> str:
    """Statements dirtying the accounts whose view holds contact `r`'s row (old or new):
    its account, the accounts it left (a former contact), and the accounts of flags
    naming it (the planner names the people a flag is about)."""
    return f"""
    {_M010_DIRTY} SELECT {r}.crm, {r}.account_id WHERE {r}.account_id IS NOT NULL;
    {_M010_DIRTY} SELECT h.crm, h.old FROM contact_history h
        WHERE h.crm = {r}.crm AND h.contact_id = {r}.id AND h.field = 'account_id'
          AND h.old IS NOT NULL;
    {_M010_DIRTY} SELECT f.crm, f.account_id FROM flags f
        WHERE f.crm = {r}.crm AND f.contact_id = {r}.id;"""


def _m010_contact_links(r: str) -> str:
    """Statements dirtying the accounts whose view reads only contact `r`'s id, name,
    account and liveness: the accounts of the deals it holds a role on, and those of
    role holders and former contacts with the same name (same-name matches)."""
    return f"""
    {_M010_DIRTY} SELECT o.crm, o.account_id FROM contact_roles cr CROSS JOIN opportunities o
        WHERE cr.crm = {r}.crm AND cr.contact_id = {r}.id
          AND o.crm = cr.crm AND o.id = cr.opportunity_id AND o.account_id IS NOT NULL;
    {_m010_same_name(r)}"""


def _m010_same_name(r: str) -> str:
    """Dirty the accounts of role holders and former contacts named like contact `r`."""
    named = (
        f"x.crm = {r}.crm AND lower(x.last_name) = lower({r}.last_name)"
        f" AND lower(x.first_name) = lower({r}.first_name) AND x.deleted_at IS NULL"
        f" AND coalesce({r}.first_name, '') <> '' AND coalesce({r}.last_name, '') <> ''"
    )
    return f"""{_M010_DIRTY} SELECT x.crm, x.account_id FROM contacts x
        WHERE {named} AND x.account_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM contact_roles cr WHERE cr.crm = x.crm AND cr.contact_id = x.id);
    {_M010_DIRTY} SELECT h.crm, h.old FROM contacts x CROSS JOIN contact_history h
        WHERE {named} AND h.crm = x.crm AND h.contact_id = x.id AND h.field = 'account_id'
          AND h.old IS NOT NULL;"""


def _m010_task_accounts(r: str) -> str:
    """Dirty a crmsync task's account and the account its key names
    (`<kind>:<crm>:<account>:<subject>`, state.model.TaskKey)."""
    return f"""
    {_M010_DIRTY} SELECT {r}.crm, {r}.account_id
        WHERE {r}.key IS NOT NULL AND {r}.account_id IS NOT NULL;
    {_M010_DIRTY} SELECT {r}.crm, substr(k2, 1, instr(k2, ':') - 1) FROM (
        SELECT substr(k1, instr(k1, ':') + 1) AS k2 FROM (
            SELECT substr({r}.key, instr({r}.key, ':') + 1) AS k1 WHERE {r}.key IS NOT NULL))
        WHERE instr(k2, ':') > 1;"""


def _m010_triggers() -> list[str]:
    out: list[str] = []

    def trigger(name: str, event: str, table: str, row: str, when: str, body: str) -> None:
        # An UPDATE trigger starts only for the columns its condition compares (UPDATE OF):
        # a statement setting synced_at alone (a full pull's touch) starts none.
        columns = re.findall(r"old\.(\w+) IS NOT new\.", when)
        columns += ["owned"] if "new.owned" in when else []
        if event == "UPDATE" and columns:
            event = f"UPDATE OF {', '.join(dict.fromkeys(columns))}"
        cond = _M010_ON.format(r=row) + (f" AND {when}" if when else "")
        out.append(
            f"CREATE TRIGGER dirty_{name} AFTER {event} ON {table} WHEN {cond}\nBEGIN{body}\nEND"
        )

    def both(name_table: tuple[str, str], cols: tuple[str, ...], body: str) -> None:
        """Insert, update (of `cols`: the old row's accounts and the new one's) and delete
        triggers on a table, all with `body` ({d}: the dirty insert, {r}: the row)."""
        name, table = name_table
        old, new = body.format(d=_M010_DIRTY, r="old"), body.format(d=_M010_DIRTY, r="new")
        trigger(f"{name}_insert", "INSERT", table, "new", "", new)
        trigger(f"{name}_update", "UPDATE", table, "new", _m010_changed(cols) if cols else "",
                old + new)  # fmt: skip
        trigger(f"{name}_delete", "DELETE", table, "old", "", old)

    acc_cols = ("name", "domain", "owner_id", "tier", "renewal_date", "exemption", "deleted_at")
    acc_named = f"""
    {_M010_DIRTY} SELECT x.crm, x.account_id FROM contacts y CROSS JOIN contacts x
        WHERE y.crm = new.crm AND y.account_id = new.id AND y.deleted_at IS NULL
          AND coalesce(y.first_name, '') <> '' AND coalesce(y.last_name, '') <> ''
          AND x.crm = y.crm AND lower(x.last_name) = lower(y.last_name)
          AND lower(x.first_name) = lower(y.first_name) AND x.deleted_at IS NULL
          AND x.account_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM contact_roles cr WHERE cr.crm = x.crm AND cr.contact_id = x.id);
    {_M010_DIRTY} SELECT h.crm, h.old FROM contacts y CROSS JOIN contacts x
        CROSS JOIN contact_history h
        WHERE y.crm = new.crm AND y.account_id = new.id AND y.deleted_at IS NULL
          AND coalesce(y.first_name, '') <> '' AND coalesce(y.last_name, '') <> ''
          AND x.crm = y.crm AND lower(x.last_name) = lower(y.last_name)
          AND lower(x.first_name) = lower(y.first_name) AND x.deleted_at IS NULL
          AND h.crm = x.crm AND h.contact_id = x.id AND h.field = 'account_id'
          AND h.old IS NOT NULL;
    {_M010_DIRTY} SELECT h.crm, h.old FROM contacts y CROSS JOIN contact_history h
        WHERE y.crm = new.crm AND y.account_id = new.id
          AND h.crm = y.crm AND h.contact_id = y.id AND h.field = 'account_id'
          AND h.old IS NOT NULL;"""
    self_new = f"\n    {_M010_DIRTY} VALUES (new.crm, new.id);"
    trigger("accounts_insert", "INSERT", "accounts", "new", "", self_new + acc_named)
    trigger(
        "accounts_named", "UPDATE", "accounts", "new",
        _m010_changed(("name", "domain", "deleted_at")), self_new + acc_named,
    )  # fmt: skip
    trigger(
        "accounts_update", "UPDATE", "accounts", "new",
        f"({_m010_changed(acc_cols)} OR {_m010_owned('accounts')})", self_new,
    )  # fmt: skip
    contact_cols = (
        "account_id", "first_name", "last_name", "email", "title", "owner_id",
        "last_activity_at", "created_at", "email_bounced", "bounce_reason", "bounced_at",
        "opted_out", "left_company", "exemption", "deleted_at",
    )  # fmt: skip
    linked = ("first_name", "last_name", "account_id", "deleted_at")
    trigger("contacts_insert", "INSERT", "contacts", "new", "",
            _m010_contact_accounts("new") + _m010_contact_links("new"))  # fmt: skip
    trigger(
        "contacts_update", "UPDATE", "contacts", "new", _m010_changed(contact_cols),
        _m010_contact_accounts("old") + _m010_contact_accounts("new"),
    )  # fmt: skip
    trigger(
        "contacts_linked", "UPDATE", "contacts", "new", _m010_changed(linked),
        _m010_contact_links("old") + _m010_contact_links("new"),
    )  # fmt: skip
    trigger(
        "contacts_owned", "UPDATE", "contacts", "new",
        f"NOT {_m010_changed(contact_cols)} AND {_m010_owned('contacts')}",
        f"\n    {_M010_DIRTY} SELECT new.crm, new.account_id WHERE new.account_id IS NOT NULL;",
    )  # fmt: skip
    trigger("contacts_delete", "DELETE", "contacts", "old", "",
            _m010_contact_accounts("old") + _m010_contact_links("old"))  # fmt: skip
    opp = "\n    {d} SELECT {r}.crm, {r}.account_id WHERE {r}.account_id IS NOT NULL;"
    opp_cols = ("account_id", "name", "stage", "is_closed", "is_won", "close_date", "amount",
                "deleted_at")  # fmt: skip
    both(("opportunities", "opportunities"), opp_cols, opp)
    role = """
    {d} SELECT c.crm, c.account_id FROM contacts c
        WHERE c.crm = {r}.crm AND c.id = {r}.contact_id AND c.account_id IS NOT NULL;
    {d} SELECT o.crm, o.account_id FROM opportunities o
        WHERE o.crm = {r}.crm AND o.id = {r}.opportunity_id AND o.account_id IS NOT NULL;"""
    role_cols = ("opportunity_id", "contact_id", "role", "is_primary", "deleted_at")
    both(("roles", "contact_roles"), role_cols, role)
    hist = """
    {d} SELECT {r}.crm, {r}.old WHERE {r}.field = 'account_id' AND {r}.old IS NOT NULL;
    {d} SELECT {r}.crm, {r}.new WHERE {r}.field = 'account_id' AND {r}.new IS NOT NULL;
    {d} SELECT c.crm, c.account_id FROM contacts c
        WHERE c.crm = {r}.crm AND c.id = {r}.contact_id AND c.account_id IS NOT NULL;
    {d} SELECT h.crm, h.old FROM contact_history h
        WHERE h.crm = {r}.crm AND h.contact_id = {r}.contact_id AND h.field = 'account_id'
          AND h.old IS NOT NULL;"""
    both(("history", "contact_history"), (), hist)
    owner = """
    {d} SELECT a.crm, a.id FROM accounts a WHERE a.crm = {r}.crm AND a.owner_id = {r}.id;
    {d} SELECT t.crm, t.account_id FROM tasks t
        WHERE t.crm = {r}.crm AND t.owner_id = {r}.id AND t.key IS NOT NULL
          AND t.account_id IS NOT NULL;"""
    trigger("owners_insert", "INSERT", "owners", "new", "", owner.format(d=_M010_DIRTY, r="new"))
    trigger(
        "owners_update", "UPDATE", "owners", "new",
        _m010_changed(("name", "email", "active", "deleted_at", "raw")),
        owner.format(d=_M010_DIRTY, r="new"),
    )  # fmt: skip
    task_cols = (
        "key", "account_id", "contact_id", "owner_id", "subject", "body", "status", "priority",
        "due_date", "is_closed", "raw", "owned", "modified_at", "deleted_at", "merged_into",
    )  # fmt: skip
    trigger("tasks_insert", "INSERT", "tasks", "new", "", _m010_task_accounts("new"))
    trigger(
        "tasks_update", "UPDATE", "tasks", "new", _m010_changed(task_cols),
        _m010_task_accounts("old") + _m010_task_accounts("new"),
    )  # fmt: skip
    trigger("tasks_delete", "DELETE", "tasks", "old", "", _m010_task_accounts("old"))
    people = "\n    {d} VALUES ({r}.crm, {r}.account_id);"
    for event, r in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
        body = people.format(d=_M010_DIRTY, r=r)
        if event == "UPDATE":
            body = people.format(d=_M010_DIRTY, r="old") + body
        trigger(f"enrichment_{event.lower()}", event, "enrichment_people", r, "", body)
    written = """
    {d} SELECT {r}.crm, {r}.id WHERE {r}.object = 'accounts';
    {d} SELECT c.crm, c.account_id FROM contacts c WHERE {r}.object = 'contacts'
        AND c.crm = {r}.crm AND c.id = {r}.id AND c.account_id IS NOT NULL;
    {d} SELECT t.crm, t.account_id FROM tasks t WHERE {r}.object = 'tasks'
        AND t.crm = {r}.crm AND t.id = {r}.id AND t.account_id IS NOT NULL;"""
    for event, r in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
        trigger(f"written_{event.lower()}", event, "written", r, "",
                written.format(d=_M010_DIRTY, r=r))  # fmt: skip
    conflict = "\n    {d} SELECT {r}.crm, {r}.account_id WHERE {r}.account_id IS NOT NULL;"
    trigger(
        "conflicts_update", "UPDATE", "conflicts", "new",
        _m010_changed(("handed_back_at", "resolved_at")),
        conflict.format(d=_M010_DIRTY, r="old") + conflict.format(d=_M010_DIRTY, r="new"),
    )  # fmt: skip
    trigger("conflicts_delete", "DELETE", "conflicts", "old", "",
            conflict.format(d=_M010_DIRTY, r="old"))  # fmt: skip
    return out


@MIGRATIONS()
def m010_dirty_accounts(db: sqlite_utils.Database) -> None:
    """What a run must evaluate again (state/dirty.py): the accounts a write touched
    (dirty_accounts, filled by triggers), each account's next due day and coverage status
    after its last evaluation (account_state), and what the last evaluation ran with
    (evaluation_state)."""
    for statement in _M010_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    for statement in _m010_triggers():
        db.execute(statement)


def _m011_triggers() -> list[str]:
    """See m011_identity_dirty. Each insert names a CRM evaluated before (as m010's)."""
    on = "EXISTS (SELECT 1 FROM evaluation_state s WHERE s.crm = '{crm}')"
    sides = (("salesforce", "hubspot"), ("hubspot", "salesforce"))

    def ids(crm: str) -> str:
        return f"{crm}_id"

    # The other CRM's account linked to the dirty one, and the other CRM's accounts of
    # contacts linked to the dirty account's contacts.
    spread = "".join(
        f"""
    INSERT INTO dirty_accounts (crm, account_id, linked)
        SELECT '{other}', l.{ids(other)}, 1 FROM identity_links l
        WHERE new.crm = '{crm}' AND l.object = 'accounts' AND l.{ids(crm)} = new.account_id
          AND {on.format(crm=other)};
    INSERT INTO dirty_accounts (crm, account_id, linked)
        SELECT o.crm, o.account_id, 1
        FROM contacts c CROSS JOIN identity_links l CROSS JOIN contacts o
        WHERE new.crm = '{crm}' AND c.crm = '{crm}' AND c.account_id = new.account_id
          AND l.object = 'contacts' AND l.{ids(crm)} = c.id
          AND o.crm = '{other}' AND o.id = l.{ids(other)} AND o.account_id IS NOT NULL
          AND {on.format(crm=other)};"""
        for crm, other in sides
    )

    def link(r: str) -> str:
        """Both records of link `r`: the accounts, or the contacts' accounts."""
        return "".join(
            f"""
    INSERT INTO dirty_accounts (crm, account_id)
        SELECT '{crm}', {r}.{ids(crm)} WHERE {r}.object = 'accounts' AND {on.format(crm=crm)}
        UNION ALL
        SELECT c.crm, c.account_id FROM contacts c
        WHERE {r}.object = 'contacts' AND c.crm = '{crm}' AND c.id = {r}.{ids(crm)}
          AND c.account_id IS NOT NULL AND {on.format(crm=crm)};"""
            for crm, _other in sides
        )

    return [
        # `linked`: listed by this trigger, which lists nothing for it (sqlite-utils turns
        # recursive_triggers on)
        "ALTER TABLE dirty_accounts ADD COLUMN linked INTEGER NOT NULL DEFAULT 0",
        "CREATE TRIGGER dirty_linked_accounts AFTER INSERT ON dirty_accounts"
        f" WHEN new.linked = 0 AND EXISTS (SELECT 1 FROM identity_links)\nBEGIN{spread}\nEND",
        f"CREATE TRIGGER dirty_link_insert AFTER INSERT ON identity_links\nBEGIN{link('new')}\nEND",
        "CREATE TRIGGER dirty_link_update AFTER UPDATE ON identity_links"
        f"\nBEGIN{link('old')}{link('new')}\nEND",
        f"CREATE TRIGGER dirty_link_delete AFTER DELETE ON identity_links\nBEGIN{link('old')}\nEND",
    ]


@MIGRATIONS()
def m011_identity_dirty(db: sqlite_utils.Database) -> None:
    """[identity] (docs/identity.md) lets an account's findings read the other CRM's
    records: a linked contact's activity, bounce and roles, and whether the account or a
    contact is linked at all. So an account listed in dirty_accounts (m010) lists the other
    CRM's account linked to it and those holding a contact linked to one of its contacts
    (marked `linked`, so they list nothing further), and a link made, moved or dropped
    lists the accounts of both its records."""
    for statement in _m011_triggers():
        db.execute(statement)


@MIGRATIONS()
def m012_enrichment_wants(db: sqlite_utils.Database) -> None:
    """The lookups the rules want of an outside people-data provider (sync/enrichment.py),
    by account, in the order they are asked: kept between runs, so a run works out again
    only the wants of the accounts that can have changed, and a lookup left for a later
    run (over the budget, failed, expired) is still wanted there. A domain and a role:
    no person."""
    db.execute(
        "CREATE TABLE enrichment_wants (crm TEXT NOT NULL, account_id TEXT NOT NULL, "
        "n INTEGER NOT NULL, domain TEXT NOT NULL, role TEXT NOT NULL, "
        "PRIMARY KEY (crm, account_id, n))"
    )


@MIGRATIONS()
def m013_accounts_live_owner(db: sqlite_utils.Database) -> None:
    """Who gets the tasks of accounts without an active owner (the active owner with the
    most live accounts, state/views.py `owner_with_most_accounts`) is read twice a run, an
    incremental one too: counted on an index of the live accounts' owners, not by reading
    every account's row (at 100,000 accounts about 0.19 s a read, 0.05 s on the index)."""
    db.execute(
        "CREATE INDEX accounts_live_owner ON accounts (crm, owner_id) WHERE deleted_at IS NULL"
    )


@MIGRATIONS()
def m014_owner_fallbacks(db: sqlite_utils.Database) -> None:
    """The accounts without an active owner whose tasks went to the fallback owner, and to
    whom, as of the last stored run (state/owner_fallback.py): a run warns about an account
    when it joins them or its tasks go to someone else, not again at every run."""
    db.execute(
        "CREATE TABLE owner_fallbacks (crm TEXT NOT NULL, account_id TEXT NOT NULL, "
        "owner_id TEXT NOT NULL, PRIMARY KEY (crm, account_id)) WITHOUT ROWID"
    )


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
