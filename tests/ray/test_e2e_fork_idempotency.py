"""tests/e2e/test_fork_idempotency.py again, against the Ray backend (the `server` fixture of
tests/ray/conftest.py: objects as actors on the two-node cluster)."""

from __future__ import annotations

import pytest

from tests.e2e.test_fork_idempotency import *  # noqa: F403 - its tests and fixtures, collected here

pytestmark = pytest.mark.ray

# Restarts a local-backend server of its own: nothing of the Ray backend in it.
del test_first_result_survives_a_restart  # noqa: F405
