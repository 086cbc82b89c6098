"""Shared material of the fork tests (fork.md §3).

- `seed_edge_cases` writes one hand-made row per rule of the "What is copied" table into a
  town database (a stopped server's file, or a domain-test database);
- `expected_fork` is an oracle written independently of town/fork_export.py: plain Python over
  the source's rows says which rows the new town must hold and what the counts must be;
- `town_rows` reads the same shape back from a new town, and `logical_dump` snapshots a whole
  database (every table sorted + every `_kv` row) to prove the source is untouched.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

TERMINAL = ("closed", "failed")
T0 = "2026-03-01T10:00:00.000Z"
T1 = "2026-03-02T11:30:00.000Z"
T2 = "2026-03-03T12:45:00.000Z"

# Canary values: none of them may ever appear in a payload, a response or the new town.
KILOCODE_CANARY = "kilocode-CANARY-source-token-0001"
GITHUB_TOKEN_CANARY = "ghp_CANARY_source_github_token"
GITLAB_TOKEN_CANARY = "glpat-CANARY-source-gitlab"
GITHUB_CLI_PAT_CANARY = "ghp_CANARY_source_cli_pat"
INTEGRATION_CANARY = "src-integration-CANARY-777"
ENV_SECRET_CANARY = "env-CANARY-secret-value"
TOKEN_CANARIES = (KILOCODE_CANARY, GITHUB_TOKEN_CANARY, GITLAB_TOKEN_CANARY, GITHUB_CLI_PAT_CANARY)

# A source config where every copied field differs from the new-town defaults (model.md §4),
# so a field that was not copied shows.
COPIED_CONFIG: dict[str, Any] = {
    "default_model": "anthropic/claude-src-default",
    "small_model": "anthropic/claude-src-small",
    "role_models": {"mayor": "m-mayor", "refinery": "m-refinery", "polecat": "m-polecat"},
    "max_polecats_per_rig": 7,
    "merge_strategy": "direct",
    "refinery": {
        "gates": ["pytest -q", "ruff check"],
        "auto_merge": False,
        "require_clean_merge": False,
        "code_review": False,
        "review_mode": "rework",
        "auto_resolve_pr_feedback": False,
        "auto_resolve_merge_conflicts": False,
        "auto_merge_delay_minutes": 17,
    },
    "custom_instructions": {"polecat": "be brief", "refinery": "be strict", "mayor": "be kind"},
    "alarm_interval_active": 42,
    "alarm_interval_idle": 420,
    "container": {"sleep_after_minutes": 33},
    "staged_convoys_default": False,
    "convoy_merge_mode": "review-and-merge",
    "disable_ai_coauthor": True,
}
GIT_AUTHOR = {"git_author_name": "Source Author", "git_author_email": "source@acme.test"}
GITLAB_INSTANCE_URL = "https://gitlab.acme.test"
ENV_VARS = {"API_KEY": ENV_SECRET_CANARY, "PLAIN_SETTING": "plain-value"}
SECRET_CONFIG: dict[str, Any] = {
    "env_vars": ENV_VARS,
    "git_auth": {
        "github_token": GITHUB_TOKEN_CANARY,
        "gitlab_token": GITLAB_TOKEN_CANARY,
        "gitlab_instance_url": GITLAB_INSTANCE_URL,
        "platform_integration_id": INTEGRATION_CANARY,
    },
    "github_cli_pat": GITHUB_CLI_PAT_CANARY,
}
# KV keys of runtime state a fork never copies (model.md §4), with a value to find them by.
RUNTIME_KV = {
    "container:registry": ["container-CANARY"],
    "container:state": {"status": "running"},
    "town:draining": True,
    "town:draining:since": T1,
    "billing:period": {"credits": 10},
    "town:private:notes": "private-CANARY",
    "mayor:session": {"id": "mayor-CANARY"},
}


def source_config(*, kilocode_token: str | None = KILOCODE_CANARY) -> dict[str, Any]:
    """The full TownConfig JSON of an edge-case source (for domain tests that write KV directly)."""
    config: dict[str, Any] = {
        **COPIED_CONFIG,
        **GIT_AUTHOR,
        **SECRET_CONFIG,
        "owner_user_id": "source-owner",
        "owner_type": "user",
        "owner_id": "source-owner",
        "created_by_user_id": "source-owner",
    }
    if kilocode_token is not None:
        config["kilocode_token"] = kilocode_token
    return config


def read_db(path: Path) -> apsw.Connection:
    """A read-only connection (a WAL reader: fine while the server owns the file)."""
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def kv(conn: apsw.Connection) -> dict[str, Any]:
    return {str(k): json.loads(v) for k, v in conn.execute("SELECT key, value FROM _kv")}


def put_kv(conn: apsw.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO _kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def logical_dump(path: Path) -> dict[str, Any]:
    """Every table's rows (sorted) and the schema version: equal dumps = same logical content."""
    with read_db(path) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        dump: dict[str, Any] = {"user_version": conn.execute("PRAGMA user_version").fetchone()[0]}
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            dump[table] = sorted(rows, key=repr)
        return dump


# -- the edge-case source ---------------------------------------------------------------------


@dataclass
class EdgeCases:
    """Ids of the hand-made rows, by the rule they exercise."""

    bead: dict[str, str] = field(default_factory=dict)  # name -> bead id
    event: dict[str, str] = field(default_factory=dict)  # name -> bead_event id
    agent: str = ""  # an active agent bead that copied beads were assigned to

    def ids(self, *names: str) -> set[str]:
        return {self.bead[n] for n in names}


# name: (type, status, rig key, parent name) — rig key "a"/"b" live rigs, "gone" a deleted rig.
_BEADS: dict[str, tuple[str, str, str | None, str | None]] = {
    "agent_active": ("agent", "open", "a", None),
    "agent_dead": ("agent", "closed", "a", None),
    "issue_closed": ("issue", "closed", "a", None),
    "issue_failed": ("issue", "failed", "b", None),
    "issue_open": ("issue", "open", "a", None),
    "issue_in_progress": ("issue", "in_progress", "b", None),
    "issue_in_review": ("issue", "in_review", "a", None),
    "message_closed": ("message", "closed", "a", None),
    "message_open": ("message", "open", None, None),
    "mr_closed": ("merge_request", "closed", "a", None),
    "mr_failed": ("merge_request", "failed", "b", None),
    "mr_in_review": ("merge_request", "in_review", "a", None),
    "escalation_with_row": ("escalation", "closed", "a", None),
    "escalation_without_row": ("escalation", "failed", None, None),
    "escalation_open": ("escalation", "open", "b", None),
    "convoy_landed": ("convoy", "closed", "a", None),
    "convoy_closed_not_landed": ("convoy", "closed", "a", None),
    "convoy_failed_without_row": ("convoy", "failed", "b", None),
    "convoy_open": ("convoy", "open", "a", None),
    "molecule_child_of_copied": ("molecule", "closed", "a", "issue_closed"),
    "child_of_open": ("issue", "closed", "b", "issue_open"),
    "child_of_unlanded_convoy": ("issue", "failed", "a", "convoy_closed_not_landed"),
    "child_of_missing": ("issue", "closed", "a", "missing"),
    "convoy_member": ("issue", "closed", "b", "convoy_landed"),
    "on_gone_rig": ("issue", "closed", "gone", None),
    "without_rig": ("issue", "closed", None, None),
}
_METADATA: dict[str, dict[str, Any]] = {
    # top-level rig ids are remapped; nested ones and non-strings are not
    "issue_closed": {"rig_id": "{a}", "nested": {"rig_id": "{a}", "rigId": "{b}"}, "source": "mayor"},
    "issue_failed": {"rigId": "{b}", "rig_ids": ["{a}"]},
    "on_gone_rig": {"rig_id": "{gone}"},
    "without_rig": {"rig_id": 42, "rigId": None},
    "mr_closed": {"pr_number": 12},
}


def seed_edge_cases(conn: apsw.Connection, *, rig_a: str, rig_b: str, gone_rig: str) -> EdgeCases:
    """Insert one row per rule of fork.md §3 (in one transaction) and return their ids."""
    rigs = {"a": rig_a, "b": rig_b, "gone": gone_rig, None: None}
    cases = EdgeCases(bead={name: str(uuid.uuid4()) for name in _BEADS})
    cases.bead["missing"] = str(uuid.uuid4())  # a parent that does not exist at all
    cases.agent = cases.bead["agent_active"]

    def metadata(name: str) -> str:
        text = json.dumps(_METADATA.get(name, {}))
        return text.replace("{a}", rig_a).replace("{b}", rig_b).replace("{gone}", gone_rig)

    with conn:
        for name, (type_, status, rig, parent) in _BEADS.items():
            terminal = status in TERMINAL
            conn.execute(
                "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id,"
                " assignee_agent_bead_id, priority, labels, metadata, dispatch_attempts,"
                " last_dispatch_attempt_at, created_by, created_at, updated_at, closed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cases.bead[name],
                    type_,
                    status,
                    f"bead {name}",
                    f"body of {name}",
                    rigs[rig],
                    None if parent is None else cases.bead[parent],
                    None if type_ == "agent" else cases.agent,  # every work bead was assigned
                    "high",
                    '["gt:edge"]',
                    metadata(name),
                    3,
                    T1,
                    f"creator-{name}",
                    T0,
                    T2,
                    T2 if status == "closed" else None,
                ),
            )
            # every bead has a created event, by the agent (kept as is even though agents are not copied)
            event_id = str(uuid.uuid4())
            cases.event[f"created:{name}"] = event_id
            conn.execute(
                "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value,"
                " new_value, metadata, created_at) VALUES (?, ?, ?, 'created', NULL, 'open', '{}', ?)",
                (event_id, cases.bead[name], cases.agent, T0),
            )
            if terminal:
                event_id = str(uuid.uuid4())
                cases.event[f"status:{name}"] = event_id
                conn.execute(
                    "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value,"
                    " new_value, metadata, created_at) VALUES (?, ?, ?, 'status_changed', 'in_progress', ?, ?, ?)",
                    (event_id, cases.bead[name], cases.agent, status, json.dumps({"rigId": rigs[rig]}), T2),
                )
        # event metadata: top-level remapped (incl. a deleted rig), nested untouched
        for name, meta in (
            ("event_rig_a", {"rig_id": rig_a, "deep": {"rigId": rig_a}}),
            ("event_gone_rig", {"rigId": gone_rig}),
            ("event_no_rig", {"note": "no rig here"}),
        ):
            cases.event[name] = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value,"
                " new_value, metadata, created_at) VALUES (?, ?, 'agent-from-elsewhere', 'fields_updated',"
                " NULL, NULL, ?, ?)",
                (cases.event[name], cases.bead["issue_closed"], json.dumps(meta), T1),
            )
        b = cases.bead
        conn.executemany(
            "INSERT INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type) VALUES (?, ?, ?)",
            [
                (b["issue_failed"], b["issue_closed"], "blocks"),  # both copied
                (b["mr_closed"], b["issue_closed"], "tracks"),  # both copied
                (b["convoy_member"], b["convoy_landed"], "tracks"),  # both copied
                (b["child_of_open"], b["issue_open"], "parent-child"),  # copied -> active
                (b["issue_open"], b["issue_closed"], "blocks"),  # active -> copied
                (b["issue_closed"], b["message_closed"], "blocks"),  # copied -> message
                (b["mr_in_review"], b["issue_in_review"], "tracks"),  # neither
            ],
        )
        conn.executemany(
            "INSERT INTO review_metadata (bead_id, branch, target_branch, merge_commit, pr_url, retry_count,"
            " auto_merge_ready_since, last_feedback_check_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    b["mr_closed"],
                    "feat/x",
                    "main",
                    "abc123",
                    "https://github.com/acme/web/pull/12",
                    2,
                    T1,
                    T2,
                ),
                (b["mr_failed"], "feat/y", "develop", None, None, 5, T1, None),
                (b["mr_in_review"], "feat/z", "main", None, "https://github.com/acme/web/pull/13", 0, T1, T2),
            ],
        )
        conn.executemany(
            "INSERT INTO escalation_metadata (bead_id, severity, category, acknowledged, re_escalation_count,"
            " acknowledged_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (b["escalation_with_row"], "critical", "ci", 1, 2, T2),
                (b["escalation_open"], "low", None, 0, 0, None),
            ],
        )
        conn.executemany(
            "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, landed_at, feature_branch,"
            " merge_mode, staged) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (b["convoy_landed"], 3, 3, T2, "convoy/landed", "review-and-merge", 1),
                (b["convoy_closed_not_landed"], 2, 2, None, "convoy/not-landed", None, 0),
                (b["convoy_open"], 4, 1, None, None, "review-then-land", 0),
            ],
        )
        conn.executemany(
            "INSERT INTO agent_metadata (bead_id, role, identity, status, current_hook_bead_id) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    b["agent_active"],
                    "polecat",
                    f"polecat-edge-{b['agent_active'][:8]}",
                    "working",
                    b["issue_in_progress"],
                ),
                (b["agent_dead"], "refinery", f"refinery-edge-{b['agent_dead'][:8]}", "dead", None),
            ],
        )
        conn.execute(
            "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, created_at) VALUES (?, ?, 'wake up', ?)",
            (str(uuid.uuid4()), b["agent_active"], T1),
        )
        conn.executemany(
            "INSERT INTO town_events (event_id, event_type, agent_id, bead_id, payload, created_at, processed_at)"
            " VALUES (?, ?, ?, ?, '{}', ?, ?)",
            [
                (str(uuid.uuid4()), "bead_closed", b["agent_active"], b["issue_closed"], T1, None),
                (str(uuid.uuid4()), "agent_exited", b["agent_dead"], None, T1, T2),
            ],
        )
        conn.execute(
            "INSERT INTO town_wasteland_connections (connection_id, wasteland_id, upstream, rig_handle,"
            " dolthub_org, connected_at) VALUES (?, 'w-1', 'upstream', 'handle', 'acme', ?)",
            (str(uuid.uuid4()), T1),
        )
        for key, value in RUNTIME_KV.items():
            put_kv(conn, key, value)
    return cases


# -- the oracle ---------------------------------------------------------------------------------


def _json(text: Any) -> Any:
    """Metadata compared as values (a remap may re-encode the text)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class TownRows:
    """The history tables of a town, keyed by primary key; metadata decoded."""

    beads: dict[str, tuple[Any, ...]]
    bead_events: dict[str, tuple[Any, ...]]
    bead_dependencies: set[tuple[Any, ...]]
    review_metadata: dict[str, tuple[Any, ...]]
    escalation_metadata: dict[str, tuple[Any, ...]]
    convoy_metadata: dict[str, tuple[Any, ...]]


@dataclass
class Expected:
    rows: TownRows
    copied: dict[str, int]
    skipped: dict[str, int]
    parents_detached: int
    rig_refs_unmapped: int


_BEAD_COLUMNS = (
    "bead_id, type, status, title, body, rig_id, parent_bead_id, assignee_agent_bead_id, priority, labels,"
    " metadata, dispatch_attempts, last_dispatch_attempt_at, created_by, created_at, updated_at, closed_at"
)
_EVENT_COLUMNS = "bead_event_id, bead_id, agent_id, event_type, old_value, new_value, metadata, created_at"
_REVIEW_COLUMNS = "bead_id, branch, target_branch, merge_commit, pr_url, retry_count, auto_merge_ready_since, last_feedback_check_at"
_ESCALATION_COLUMNS = "bead_id, severity, category, acknowledged, re_escalation_count, acknowledged_at"
_CONVOY_COLUMNS = "bead_id, total_beads, closed_beads, landed_at, feature_branch, merge_mode, staged"


def town_rows(conn: apsw.Connection) -> TownRows:
    def keyed(sql: str) -> dict[str, tuple[Any, ...]]:
        return {r[0]: tuple(r) for r in conn.execute(sql)}

    beads = {
        k: (*v[:10], _json(v[10]), *v[11:]) for k, v in keyed(f"SELECT {_BEAD_COLUMNS} FROM beads").items()
    }
    events = {
        k: (*v[:6], _json(v[6]), v[7]) for k, v in keyed(f"SELECT {_EVENT_COLUMNS} FROM bead_events").items()
    }
    return TownRows(
        beads=beads,
        bead_events=events,
        bead_dependencies={tuple(r) for r in conn.execute("SELECT * FROM bead_dependencies")},
        review_metadata=keyed(f"SELECT {_REVIEW_COLUMNS} FROM review_metadata"),
        escalation_metadata=keyed(f"SELECT {_ESCALATION_COLUMNS} FROM escalation_metadata"),
        convoy_metadata=keyed(f"SELECT {_CONVOY_COLUMNS} FROM convoy_metadata"),
    )


def expected_fork(source: apsw.Connection, rig_mapping: dict[str, str]) -> Expected:
    """What fork.md §3 says the new town holds, computed row by row in Python."""
    src = town_rows(source)
    unmapped = 0

    def rig(old: str | None) -> str | None:
        nonlocal unmapped
        if old is None:
            return None
        if old not in rig_mapping:
            unmapped += 1
        return rig_mapping.get(old)

    def meta(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for key in ("rig_id", "rigId"):
            if isinstance(out.get(key), str):
                out[key] = rig(out[key])
        return out

    landed = {k for k, v in src.convoy_metadata.items() if v[3] is not None}
    skipped = dict.fromkeys(
        (
            "beads_active",
            "beads_agent",
            "beads_message",
            "convoys_not_landed",
            "bead_events",
            "bead_dependencies",
            "agent_metadata",
            "agent_nudges",
            "town_events",
        ),
        0,
    )
    copied_ids: set[str] = set()
    for bead_id, row in src.beads.items():
        type_, status = row[1], row[2]
        if type_ == "agent":
            skipped["beads_agent"] += 1
        elif type_ == "message":
            skipped["beads_message"] += 1
        elif status not in TERMINAL:
            skipped["beads_active"] += 1
        elif type_ == "convoy" and bead_id not in landed:
            skipped["convoys_not_landed"] += 1
        else:
            copied_ids.add(bead_id)

    beads: dict[str, tuple[Any, ...]] = {}
    detached = 0
    for bead_id in copied_ids:
        r = src.beads[bead_id]
        parent = r[6] if r[6] in copied_ids else None
        detached += r[6] is not None and parent is None
        beads[bead_id] = (*r[:5], rig(r[5]), parent, None, r[8], r[9], meta(r[10]), 0, None, *r[13:])
    events = {}
    for event_id, e in src.bead_events.items():
        if e[1] in copied_ids:
            events[event_id] = (*e[:6], meta(e[6]), e[7])
        else:
            skipped["bead_events"] += 1
    deps = {d for d in src.bead_dependencies if d[0] in copied_ids and d[1] in copied_ids}
    skipped["bead_dependencies"] = len(src.bead_dependencies) - len(deps)

    def of_type(table: dict[str, tuple[Any, ...]], type_: str) -> dict[str, tuple[Any, ...]]:
        return {k: v for k, v in table.items() if k in copied_ids and src.beads[k][1] == type_}

    review = {k: (*v[:6], None, None) for k, v in of_type(src.review_metadata, "merge_request").items()}
    escalation = of_type(src.escalation_metadata, "escalation")
    convoy = of_type(src.convoy_metadata, "convoy")
    for table in ("agent_metadata", "agent_nudges", "town_events"):
        skipped[table] = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    rows = TownRows(beads, events, deps, review, escalation, convoy)
    copied = {
        "beads": len(beads),
        "bead_events": len(events),
        "bead_dependencies": len(deps),
        "review_metadata": len(review),
        "escalation_metadata": len(escalation),
        "convoy_metadata": len(convoy),
        "rigs": len(rig_mapping),
    }
    return Expected(rows, copied, skipped, detached, unmapped)


def count_rows(conn: apsw.Connection) -> dict[str, int]:
    tables = (
        "beads",
        "bead_events",
        "bead_dependencies",
        "review_metadata",
        "escalation_metadata",
        "convoy_metadata",
        "rigs",
        "agent_metadata",
        "agent_nudges",
        "town_events",
        "town_wasteland_connections",
    )
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
