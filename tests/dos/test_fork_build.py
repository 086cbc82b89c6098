"""A fork's build is data that can be pickled to the worker that holds the new town's file."""

from __future__ import annotations

import pickle
from pathlib import Path

from dos.fork_build import ForkBuild, SourceFile
from dos.git_tokens import GitCredentials
from town.fork_export import ExportOptions


def _build(**callbacks: object) -> ForkBuild:
    return ForkBuild(
        rows=SourceFile(Path("/data/TownDO/source.sqlite3")),
        options=ExportOptions(
            source_town_id="source", include_env_vars=True, include_git_author=False, rig_id_mapping={"old-rig": "new-rig"}
        ),
        ownership={"owner_type": "user", "owner_user_id": "alice"},
        owner_user_id="alice",
        kilocode_token="minted",
        credentials={"new-rig": GitCredentials(token="ghs_x", installationId=7)},
        lineage={"town_id": "source", "forked_at": "2026-12-02T05:00:00.000Z", "by_user_id": "alice"},
        **callbacks,  # type: ignore[arg-type]
    )


def test_a_pickled_build_keeps_its_data_and_leaves_its_in_process_callbacks_behind() -> None:
    seen: list[str] = []
    build = _build(progress=lambda phase, done, total: seen.append(phase), fault=seen.append)
    copy = pickle.loads(pickle.dumps(build))  # closures: they could not be pickled
    assert copy == build  # every field the build writes from
    copy.progress("import", 1, 2)
    copy.fault("initialized")
    assert seen == []  # the copy's callbacks are no-ops, not the originals
    build.fault("initialized")
    assert seen == ["initialized"]
