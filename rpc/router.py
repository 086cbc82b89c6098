"""The procedure table and the one way to call a procedure, shared by every transport.

A call goes: look up the path → authenticate → decode the input Struct → check the access
rule (which may resolve the town the call is about) → run the handler. Adapters only decode
envelopes and encode results/errors; they never know what a procedure does.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from rpc.auth import Caller
from rpc.errors import RpcError, no_procedure

Kind = Literal["query", "mutation", "subscription"]


class _NoInput:
    """The input was absent (tRPC `undefined`), as opposed to JSON null."""

    def __repr__(self) -> str:
        return "NO_INPUT"


NO_INPUT: Any = _NoInput()


@dataclass
class CallContext:
    services: Any  # rpc.services.Services (kept loose here to avoid an import cycle)
    caller: Caller
    path: str
    # Filled by the access rule when the call is about one town (rpc/access.py).
    target: Any = None


class AccessRule(Protocol):
    async def check(self, ctx: CallContext, params: Any) -> None: ...


@dataclass(frozen=True)
class Procedure:
    """One row of the table. The output type is the handler's return annotation (for a
    subscription, what its iterator yields): the generated TypeScript types read it there."""

    path: str
    kind: Kind
    input: type[msgspec.Struct] | None
    access: AccessRule
    handler: Callable[[CallContext, Any], Any]

    @property
    def output(self) -> Any:
        return output_type(self)


class Router:
    def __init__(self, procedures: Iterable[Procedure]) -> None:
        self._procedures: dict[str, Procedure] = {}
        for proc in procedures:
            if proc.path in self._procedures:
                raise ValueError(f"duplicate procedure {proc.path}")
            self._procedures[proc.path] = proc

    def lookup(self, path: str) -> Procedure | None:
        return self._procedures.get(path)

    def paths(self) -> list[str]:
        return sorted(self._procedures)

    def require(self, path: str) -> Procedure:
        proc = self._procedures.get(path)
        if proc is None:
            raise no_procedure(path)
        return proc

    async def prepare(
        self, services: Any, token: str | None, proc: Procedure, raw_input: Any
    ) -> tuple[CallContext, Any]:
        caller = services.tokens.authenticate(token)
        params = decode_input(proc, raw_input)
        ctx = CallContext(services=services, caller=caller, path=proc.path)
        await proc.access.check(ctx, params)
        return ctx, params

    async def call(self, services: Any, token: str | None, path: str, raw_input: Any) -> Any:
        """Run a query or mutation; raises RpcError (or anything, mapped by the adapter)."""
        proc = self.require(path)
        ctx, params = await self.prepare(services, token, proc, raw_input)
        return await proc.handler(ctx, params)

    async def subscribe(
        self, services: Any, token: str | None, path: str, raw_input: Any
    ) -> AsyncIterator[Any]:
        """Start a subscription: errors before the first item are raised here."""
        proc = self.require(path)
        ctx, params = await self.prepare(services, token, proc, raw_input)
        iterator: AsyncIterator[Any] = proc.handler(ctx, params)
        return iterator


def output_type(proc: Procedure) -> Any:
    """The declared output: the return annotation, minus `msgspec.Raw` (an already-encoded
    value of the same type, e.g. a replayed fork result); `None` means void."""
    declared = typing.get_type_hints(proc.handler).get("return", Any)
    if proc.kind == "subscription":
        declared = typing.get_args(declared)[0]  # AsyncIterator[T] -> T
    if typing.get_origin(declared) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(declared) if m is not msgspec.Raw]
        declared = functools.reduce(operator.or_, members)
    return None if declared is type(None) else declared


def decode_input(proc: Procedure, raw_input: Any) -> Any:
    """Convert the JSON input to the procedure's Struct; BAD_REQUEST names the field."""
    if proc.input is None:
        return None
    value = {} if raw_input is NO_INPUT and _all_optional(proc.input) else raw_input
    if value is NO_INPUT:
        raise RpcError("BAD_REQUEST", "Input is required: expected `object`, got nothing")
    # One front end wraps inputs superjson-style as {"json": <input>} (no meta): unwrap it.
    if isinstance(value, dict) and len(value) == 1 and "json" in value and "json" not in proc.input.__struct_fields__:
        value = value["json"]
    try:
        return msgspec.convert(value, proc.input, strict=True)
    except msgspec.ValidationError as exc:
        raise RpcError("BAD_REQUEST", str(exc)) from None


def _all_optional(struct: type[msgspec.Struct]) -> bool:
    return len(struct.__struct_defaults__) == len(struct.__struct_fields__)
