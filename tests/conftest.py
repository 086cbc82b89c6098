from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import RunningServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session (tests that kill servers start their own)."""
    root: Path = tmp_path_factory.mktemp("server")
    running = start_server(root / "data")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that seeded the demo towns (GASTOWN_DEMO=1) for the dev user."""
    root: Path = tmp_path_factory.mktemp("demo")
    running = start_server(root / "data", extra_env={"GASTOWN_DEMO": "1"})
    yield running
    running.stop()
