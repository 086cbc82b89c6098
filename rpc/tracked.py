"""tRPC's `tracked(id, data)` for subscriptions (trpc-wire.md §4, §5.3): an event with an id the
client remembers and sends back as `lastEventId` when it reconnects, so the stream resumes
after it. SSE writes the id as the event's `id:` line; WebSocket as `result.id`, with
`result.data = {id, data}`; the client hands `{id, data}` to `onData` on both.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Tracked(msgspec.Struct, Generic[T], frozen=True):
    id: str
    data: T


def with_last_event_id(raw_input: Any, last_event_id: str | None) -> Any:
    """Merge a reconnecting client's last event id into the input, as tRPC's server does
    (`{...input, lastEventId}`; an absent input becomes `{lastEventId}`)."""
    from rpc.router import NO_INPUT

    if last_event_id is None:
        return raw_input
    if raw_input is NO_INPUT or raw_input is None:
        return {"lastEventId": last_event_id}
    if isinstance(raw_input, dict):
        return {**raw_input, "lastEventId": last_event_id}
    return raw_input  # not an object: the input's own validation answers it
