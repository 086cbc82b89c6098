"""The one input-bounds policy: every integer and every string a client can send is bounded.

SQLite stores integers as signed 64-bit values and APSW raises OverflowError when a larger one
is bound, so no client integer may reach a statement unbounded; strings get a length limit so
a single field cannot fill a database row (or a log line) with megabytes. Every input Struct
builds its fields from these (tests/e2e/test_hostile_input.py walks the procedure table and
holds every int and str field to it).
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta

SQLITE_INT_MIN: Final = -(2**63)
SQLITE_INT_MAX: Final = 2**63 - 1
# Counts, offsets, minutes: far above any real value, far below SQLite's limit.
MAX_COUNT: Final = 2**31 - 1

MAX_SHORT: Final = 256  # names, models, ids that are not UUIDs, labels, timestamps
MAX_SECRET: Final = 8192  # tokens, URLs, env var values
MAX_TEXT: Final = 100_000  # bead bodies, messages
MAX_ITEMS: Final = 500  # lists and maps

Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Meta(ge=1, le=MAX_COUNT)]
Short = Annotated[str, Meta(max_length=MAX_SHORT)]
Secret = Annotated[str, Meta(max_length=MAX_SECRET)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
NonEmptyShort = Annotated[str, Meta(min_length=1, max_length=MAX_SHORT)]
Labels = Annotated[list[Short], Meta(max_length=MAX_ITEMS)]
EnvVars = Annotated[dict[Short, Secret], Meta(max_length=MAX_ITEMS)]
