"""Bearer tokens: HS256 JWTs signed with NEXTAUTH_SECRET, as the upstream worker accepts them."""

from __future__ import annotations

import time
import uuid
from typing import Literal

import jwt
import msgspec

from rpc.errors import RpcError

OrgRole = Literal["owner", "member", "billing_manager"]
TOKEN_TTL_SECONDS = 30 * 24 * 3600


class OrgMembership(msgspec.Struct, frozen=True):
    orgId: str
    role: OrgRole


class _Claims(msgspec.Struct):
    kiloUserId: str
    isAdmin: bool = False
    gastownAccess: bool = False
    orgMemberships: list[OrgMembership] = []


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


def authenticate(token: str | None, secret: str) -> Caller:
    """Verify the token and the gastown access claim; never echoes the token."""
    if not token:
        raise RpcError("UNAUTHORIZED", "Missing bearer token")
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["kiloUserId"]}
        )
    except jwt.ExpiredSignatureError:
        raise RpcError("UNAUTHORIZED", "Token expired") from None
    except jwt.PyJWTError:
        raise RpcError("UNAUTHORIZED", "Invalid token") from None
    try:
        claims = msgspec.convert(payload, _Claims)
    except msgspec.ValidationError as exc:
        raise RpcError("UNAUTHORIZED", f"Invalid token claims: {exc}") from None
    if not claims.kiloUserId:
        raise RpcError("UNAUTHORIZED", "Invalid token claims: empty kiloUserId")
    if not (claims.gastownAccess or claims.isAdmin):
        raise RpcError("FORBIDDEN", "Gastown access required")
    return Caller(
        user_id=claims.kiloUserId,
        is_admin=claims.isAdmin,
        gastown_access=claims.gastownAccess,
        org_memberships=tuple(claims.orgMemberships),
    )


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
