"""SQL schemas of the object classes, as numbered migration lists (see dos/migrations.py).

Column order, types, defaults and index names follow spec/model.md exactly: operators and the
acceptance tests read these files with the sqlite3 shell. Enums are validated in code, so there
are no CHECK constraints. Every statement is idempotent (`IF NOT EXISTS`) so a database created
by an older build, or half-created by hand, still converges.
"""

from __future__ import annotations

from collections.abc import Sequence

import apsw

from dos.kv import KV_DDL
from dos.migrations import Migration

BEADS_DDL = """
CREATE TABLE IF NOT EXISTS beads (
  bead_id TEXT PRIMARY KEY NOT NULL,
  type TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',
  title TEXT NOT NULL,
  body TEXT,
  rig_id TEXT,
  parent_bead_id TEXT REFERENCES beads(bead_id),
  assignee_agent_bead_id TEXT,
  priority TEXT DEFAULT 'medium',
  labels TEXT DEFAULT '[]',
  metadata TEXT DEFAULT '{}',
  dispatch_attempts INTEGER NOT NULL DEFAULT 0,
  last_dispatch_attempt_at TEXT,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  closed_at TEXT
)"""

BEAD_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS bead_events (
  bead_event_id TEXT PRIMARY KEY NOT NULL,
  bead_id TEXT NOT NULL,
  agent_id TEXT,
  event_type TEXT NOT NULL,
  old_value TEXT,
  new_value TEXT,
  metadata TEXT DEFAULT '{}',
  created_at TEXT NOT NULL
)"""

BEAD_DEPENDENCIES_DDL = """
CREATE TABLE IF NOT EXISTS bead_dependencies (
  bead_id TEXT NOT NULL REFERENCES beads(bead_id),
  depends_on_bead_id TEXT NOT NULL REFERENCES beads(bead_id),
  dependency_type TEXT NOT NULL DEFAULT 'blocks'
)"""

AGENT_METADATA_DDL = """
CREATE TABLE IF NOT EXISTS agent_metadata (
  bead_id TEXT PRIMARY KEY NOT NULL REFERENCES beads(bead_id),
  role TEXT NOT NULL,
  identity TEXT NOT NULL UNIQUE,
  container_process_id TEXT,
  status TEXT NOT NULL DEFAULT 'idle',
  current_hook_bead_id TEXT REFERENCES beads(bead_id),
  dispatch_attempts INTEGER NOT NULL DEFAULT 0,
  checkpoint TEXT,
  last_activity_at TEXT,
  agent_status_message TEXT,
  agent_status_updated_at TEXT,
  last_event_type TEXT,
  last_event_at TEXT,
  active_tools TEXT DEFAULT '[]',
  stalled_at TEXT
)"""

REVIEW_METADATA_DDL = """
CREATE TABLE IF NOT EXISTS review_metadata (
  bead_id TEXT PRIMARY KEY NOT NULL REFERENCES beads(bead_id),
  branch TEXT NOT NULL,
  target_branch TEXT NOT NULL DEFAULT 'main',
  merge_commit TEXT,
  pr_url TEXT,
  retry_count INTEGER DEFAULT 0,
  auto_merge_ready_since TEXT,
  last_feedback_check_at TEXT
)"""

ESCALATION_METADATA_DDL = """
CREATE TABLE IF NOT EXISTS escalation_metadata (
  bead_id TEXT PRIMARY KEY NOT NULL REFERENCES beads(bead_id),
  severity TEXT NOT NULL,
  category TEXT,
  acknowledged INTEGER NOT NULL DEFAULT 0,
  re_escalation_count INTEGER NOT NULL DEFAULT 0,
  acknowledged_at TEXT
)"""

CONVOY_METADATA_DDL = """
CREATE TABLE IF NOT EXISTS convoy_metadata (
  bead_id TEXT PRIMARY KEY NOT NULL REFERENCES beads(bead_id),
  total_beads INTEGER NOT NULL DEFAULT 0,
  closed_beads INTEGER NOT NULL DEFAULT 0,
  landed_at TEXT,
  feature_branch TEXT,
  merge_mode TEXT,
  staged INTEGER NOT NULL DEFAULT 0
)"""

AGENT_NUDGES_DDL = """
CREATE TABLE IF NOT EXISTS agent_nudges (
  nudge_id TEXT PRIMARY KEY NOT NULL,
  agent_bead_id TEXT NOT NULL,
  message TEXT NOT NULL,
  mode TEXT NOT NULL DEFAULT 'wait-idle',
  priority TEXT NOT NULL DEFAULT 'normal',
  source TEXT NOT NULL DEFAULT 'system',
  created_at TEXT NOT NULL,
  delivered_at TEXT,
  expires_at TEXT
)"""

TOWN_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS town_events (
  event_id TEXT PRIMARY KEY NOT NULL,
  event_type TEXT NOT NULL,
  agent_id TEXT,
  bead_id TEXT,
  payload TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  processed_at TEXT
)"""

RIGS_DDL = """
CREATE TABLE IF NOT EXISTS rigs (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  git_url TEXT NOT NULL DEFAULT '',
  default_branch TEXT NOT NULL DEFAULT 'main',
  config TEXT DEFAULT '{}',
  created_at TEXT NOT NULL
)"""

# Upstream keeps a CHECK on status here; the model validates enums in code only.
WASTELAND_CONNECTIONS_DDL = """
CREATE TABLE IF NOT EXISTS town_wasteland_connections (
  connection_id TEXT PRIMARY KEY NOT NULL,
  wasteland_id TEXT NOT NULL,
  upstream TEXT NOT NULL,
  rig_handle TEXT NOT NULL,
  dolthub_org TEXT NOT NULL,
  connected_at TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active'
)"""

TOWN_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_beads_type_status ON beads(type, status)",
    "CREATE INDEX IF NOT EXISTS idx_beads_parent ON beads(parent_bead_id)",
    "CREATE INDEX IF NOT EXISTS idx_beads_rig_status ON beads(rig_id, status)",
    "CREATE INDEX IF NOT EXISTS idx_beads_assignee ON beads(assignee_agent_bead_id, type, status)",
    "CREATE INDEX IF NOT EXISTS idx_bead_events_bead ON bead_events(bead_id)",
    "CREATE INDEX IF NOT EXISTS idx_bead_events_created ON bead_events(created_at)",
    "CREATE INDEX IF NOT EXISTS idx_bead_events_type ON bead_events(event_type)",
    ("CREATE UNIQUE INDEX IF NOT EXISTS idx_bead_deps_pk"
    " ON bead_dependencies(bead_id, depends_on_bead_id)"),
    "CREATE INDEX IF NOT EXISTS idx_bead_deps_depends_on ON bead_dependencies(depends_on_bead_id)",
    ("CREATE INDEX IF NOT EXISTS idx_agent_nudges_pending ON agent_nudges(agent_bead_id)"
    " WHERE delivered_at IS NULL"),
    ("CREATE INDEX IF NOT EXISTS idx_town_events_pending ON town_events(created_at)"
    " WHERE processed_at IS NULL"),
    "CREATE INDEX IF NOT EXISTS idx_town_events_type ON town_events(event_type)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_rigs_name ON rigs(name)",
    # Not in the spec: listBeads pages newest-first, town-wide or per rig; without these a
    # page of a large town sorts all of its (or the rig's) beads on every call.
    "CREATE INDEX IF NOT EXISTS idx_beads_created ON beads(created_at)",
    "CREATE INDEX IF NOT EXISTS idx_beads_rig_created ON beads(rig_id, created_at)",
)

USER_TOWNS_DDL = """
CREATE TABLE IF NOT EXISTS user_towns (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  owner_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
)"""

ORG_TOWNS_DDL = """
CREATE TABLE IF NOT EXISTS org_towns (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  owner_org_id TEXT NOT NULL,
  created_by_user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
)"""

USER_RIGS_DDL = """
CREATE TABLE IF NOT EXISTS user_rigs (
  id TEXT PRIMARY KEY NOT NULL,
  town_id TEXT NOT NULL,
  name TEXT NOT NULL,
  git_url TEXT NOT NULL,
  default_branch TEXT NOT NULL DEFAULT 'main',
  platform_integration_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
)"""

# Not in the spec: listRigs and deleteTown select an owner object's rigs by town.
USER_RIGS_TOWN_INDEX = "CREATE INDEX IF NOT EXISTS idx_user_rigs_town ON user_rigs(town_id)"


def _run_all(statements: Sequence[str]) -> Migration:
    def step(conn: apsw.Connection) -> None:
        for sql in statements:
            conn.execute(sql)

    return step


TOWN_MIGRATIONS: list[Migration] = [
    _run_all(
        (
            KV_DDL,
            BEADS_DDL,
            BEAD_EVENTS_DDL,
            BEAD_DEPENDENCIES_DDL,
            AGENT_METADATA_DDL,
            REVIEW_METADATA_DDL,
            ESCALATION_METADATA_DDL,
            CONVOY_METADATA_DDL,
            AGENT_NUDGES_DDL,
            TOWN_EVENTS_DDL,
            RIGS_DDL,
            WASTELAND_CONNECTIONS_DDL,
            *TOWN_INDEXES,
        )
    ),
]

USER_MIGRATIONS: list[Migration] = [
    _run_all((KV_DDL, USER_TOWNS_DDL, USER_RIGS_DDL, USER_RIGS_TOWN_INDEX)),
]

ORG_MIGRATIONS: list[Migration] = [
    _run_all((KV_DDL, ORG_TOWNS_DDL, USER_RIGS_DDL, USER_RIGS_TOWN_INDEX)),
]

CONTAINER_MIGRATIONS: list[Migration] = [KV_DDL]
