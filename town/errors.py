"""Domain errors. Each carries the tRPC error key the RPC layer maps it to (one table, rpc/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose; `code` is a tRPC error key."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    code = "BAD_REQUEST"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Conflict(DomainError):
    code = "CONFLICT"


class PreconditionFailed(DomainError):
    code = "PRECONDITION_FAILED"


class Unavailable(DomainError):
    """The object is on a storage node that is down (Ray backend): retry later. tRPC v11's
    SERVICE_UNAVAILABLE (JSON-RPC -32603, HTTP 503), as a graceful stop answers."""

    code = "SERVICE_UNAVAILABLE"
