"""tests/e2e/test_fork_access.py again, against the Ray backend (the `server` fixture of
tests/ray/conftest.py: objects as actors on the two-node cluster)."""

from __future__ import annotations

import pytest

from tests.e2e.test_fork_access import *  # noqa: F403 - its tests and fixtures, collected here

pytestmark = pytest.mark.ray
