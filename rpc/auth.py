"""Bearer tokens: HS256 JWTs signed with NEXTAUTH_SECRET, as the upstream worker accepts them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from typing import Annotated, Literal

import jwt
import msgspec

from rpc.errors import RpcError

OrgRole = Literal["owner", "member", "billing_manager"]
TOKEN_TTL_SECONDS = 30 * 24 * 3600


# Bounds of the claims we use: a signed token is still client-supplied text (a key, a log line,
# a database value later), so it is held to the same rules as any input.
UserId = Annotated[str, msgspec.Meta(max_length=256)]  # empty: refused in _verify, in upstream's words
OrgId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
MAX_ORG_MEMBERSHIPS = 1000


class OrgMembership(msgspec.Struct, frozen=True):
    orgId: OrgId
    role: OrgRole


class _Claims(msgspec.Struct):
    """The one claims-validation step: what does not convert is UNAUTHORIZED, never cached."""

    kiloUserId: UserId
    isAdmin: bool = False
    gastownAccess: bool = False
    orgMemberships: Annotated[list[OrgMembership], msgspec.Meta(max_length=MAX_ORG_MEMBERSHIPS)] = []

    def __post_init__(self) -> None:
        # JSON escapes can carry lone UTF-16 surrogates, which no UTF-8 encoder accepts.
        if not _is_printable_unicode(self.kiloUserId):
            raise ValueError("kiloUserId must be printable Unicode")


def _is_printable_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


class Caller(msgspec.Struct, frozen=True):
    """Who is calling, as the token says."""

    user_id: str
    is_admin: bool
    gastown_access: bool
    org_memberships: tuple[OrgMembership, ...]

    def org_role(self, org_id: str) -> OrgRole | None:
        for membership in self.org_memberships:
            if membership.orgId == org_id:
                return membership.role
        return None


def _verify(token: str | None, secret: str) -> tuple[Caller, int | None]:
    """Verify the token and the gastown access claim; never echoes the token. The caller and
    the token's `exp` (as PyJWT reads it: an integer), if it has one."""
    if not token:
        raise RpcError("UNAUTHORIZED", "Missing bearer token")
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["kiloUserId"]}
        )
    except jwt.ExpiredSignatureError:
        raise RpcError("UNAUTHORIZED", "Token expired") from None
    except (jwt.PyJWTError, ValueError, OverflowError, TypeError):
        # PyJWT lets through a token str that is not UTF-8 (UnicodeEncodeError) and claims
        # like `"exp": 1e400` (OverflowError): a client's bytes, so UNAUTHORIZED, not a 500.
        raise RpcError("UNAUTHORIZED", "Invalid token") from None
    try:
        claims = msgspec.convert(payload, _Claims)
    except msgspec.ValidationError as exc:
        raise RpcError("UNAUTHORIZED", f"Invalid token claims: {exc}") from None
    if not claims.kiloUserId:
        raise RpcError("UNAUTHORIZED", "Invalid token claims: empty kiloUserId")
    if not (claims.gastownAccess or claims.isAdmin):
        raise RpcError("FORBIDDEN", "Gastown access required")
    caller = Caller(
        user_id=claims.kiloUserId,
        is_admin=claims.isAdmin,
        gastown_access=claims.gastownAccess,
        org_memberships=tuple(claims.orgMemberships),
    )
    # jwt.decode has checked that a present `exp` is an integer-convertible value.
    return caller, (int(payload["exp"]) if "exp" in payload else None)


class TokenCache:
    """Verifies bearer tokens, remembering each one that verified until its `exp`.

    A token's claims are covered by its signature, so a token that verified once verifies the
    same way for as long as it has not expired: a hit only rechecks the expiry, exactly as PyJWT
    does (expired once `exp <= now`). Only successes are kept; every refusal is re-verified.
    The keys are bearer tokens: they are never logged, printed or handed out.
    """

    def __init__(self, secret: str, max_entries: int = 4096) -> None:
        self._secret = secret
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Caller, int | None]] = OrderedDict()
        self._lock = threading.Lock()  # callers are on the event loop, but stay safe off it

    def __repr__(self) -> str:
        return f"TokenCache({len(self._entries)} of {self._max_entries})"

    def authenticate(self, token: str | None) -> Caller:
        if token:
            with self._lock:
                entry = self._entries.get(token)
                if entry is not None:
                    caller, exp = entry
                    if exp is None or time.time() < exp:
                        self._entries.move_to_end(token)
                        return caller
                    del self._entries[token]
                    raise RpcError("UNAUTHORIZED", "Token expired")
        caller, exp = _verify(token, self._secret)
        assert token is not None  # _verify refuses an empty token
        with self._lock:
            self._entries[token] = (caller, exp)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return caller


def mint_token(
    secret: str,
    user_id: str,
    *,
    is_admin: bool = False,
    gastown_access: bool = True,
    org_memberships: list[OrgMembership] | tuple[OrgMembership, ...] = (),
    ttl_seconds: int = TOKEN_TTL_SECONDS,
) -> str:
    now = int(time.time())
    payload = {
        "version": 3,
        "kiloUserId": user_id,
        "isAdmin": is_admin,
        "gastownAccess": gastown_access,
        "orgMemberships": [msgspec.to_builtins(m) for m in org_memberships],
        "iat": now,
        "exp": now + ttl_seconds,
        # Unique per token: two tokens minted in the same second must still differ (a fork's
        # kilocode_token is its own, revocable apart from the source's).
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(payload, secret, algorithm="HS256")
