"""The one error type of the RPC layer, the tRPC code table, and the wire error shape.

Every transport builds its error objects through `error_shape`; every exception raised
below the adapters is turned into an `RpcError` by `to_rpc_error` (domain errors by their
code, validation errors as BAD_REQUEST, anything else as a generic INTERNAL_SERVER_ERROR whose
cause is logged once, with a request id, and never sent).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Final, TypeGuard

import msgspec

from town.errors import DomainError

log = logging.getLogger("gastown.rpc")

# tRPC error key -> (JSON-RPC number, HTTP status), from @trpc/server v11 (trpc-wire.md §6).
TRPC_CODES: Final[dict[str, tuple[int, int]]] = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "PAYMENT_REQUIRED": (-32002, 402),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "PRECONDITION_REQUIRED": (-32028, 428),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "CLIENT_CLOSED_REQUEST": (-32099, 499),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
}


# The one path policy: a procedure path is letters, digits, `_` and `.`. Anything else is no
# procedure, and a client's path is echoed (in a message or `data.path`) only when it is one.
_PROCEDURE_PATH: Final = re.compile(r"[A-Za-z0-9_.]{0,256}")


def is_procedure_path(path: object) -> TypeGuard[str]:
    return isinstance(path, str) and _PROCEDURE_PATH.fullmatch(path) is not None


def no_procedure(path: object) -> RpcError:
    """NOT_FOUND for a path the table does not hold, naming it only when it is a valid path."""
    if is_procedure_path(path):
        return RpcError("NOT_FOUND", f'No procedure found on path "{path}"')
    return RpcError("NOT_FOUND", "No procedure found on this path (procedure paths are [A-Za-z0-9_.]+)")


class RpcError(Exception):
    """An error with a tRPC key; `allow` carries the Allow header value for 405s."""

    def __init__(self, code: str, message: str | None = None, *, allow: str | None = None) -> None:
        if code not in TRPC_CODES:
            raise ValueError(f"unknown tRPC error code {code}")
        self.code = code
        self.message = message if message else code
        self.allow = allow
        super().__init__(self.message)

    @property
    def json_rpc_code(self) -> int:
        return TRPC_CODES[self.code][0]

    @property
    def http_status(self) -> int:
        return TRPC_CODES[self.code][1]


class ErrorData(msgspec.Struct, omit_defaults=True):
    code: str
    httpStatus: int
    path: str | msgspec.UnsetType = msgspec.UNSET


class ErrorShape(msgspec.Struct):
    message: str
    code: int
    data: ErrorData


def error_shape(err: RpcError, path: str | None = None) -> ErrorShape:
    """`{message, code, data:{code, httpStatus[, path]}}`; no `stack`, ever."""
    return ErrorShape(
        message=err.message,
        code=err.json_rpc_code,
        data=ErrorData(
            code=err.code,
            httpStatus=err.http_status,
            path=path if is_procedure_path(path) else msgspec.UNSET,
        ),
    )


def to_rpc_error(exc: BaseException, *, path: str | None = None) -> RpcError:
    """Map any exception to the wire; unexpected ones are logged here and only here."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, DomainError):
        return RpcError(exc.code, exc.message)
    if isinstance(exc, msgspec.ValidationError):
        return RpcError("BAD_REQUEST", str(exc))
    request_id = uuid.uuid4().hex[:16]
    log.error(
        "internal error in %s (request %s)", path or "<request>", request_id, exc_info=exc
    )
    return RpcError("INTERNAL_SERVER_ERROR", f"Internal server error (request {request_id})")
