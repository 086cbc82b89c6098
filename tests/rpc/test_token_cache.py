"""Verified-token caching (rpc/auth.py TokenCache): a remembered token is still refused once
it expires, refusals are never remembered, and the cache never shows its keys."""

from __future__ import annotations

import time

import pytest

from rpc.auth import OrgMembership, TokenCache, mint_token
from rpc.errors import RpcError
from tests.rpc.conftest import AppServer

SECRET = "token-cache-test-secret-0123456789abcdef"


def refusal(cache: TokenCache, token: str | None) -> tuple[str, str]:
    with pytest.raises(RpcError) as caught:
        cache.authenticate(token)
    return caught.value.code, caught.value.message


def wait_past(exp: int) -> None:
    while time.time() < exp:
        time.sleep(0.05)


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    cache = TokenCache(SECRET)
    token = mint_token(SECRET, "alice", ttl_seconds=2)
    exp = int(time.time()) + 2
    assert cache.authenticate(token).user_id == "alice"
    assert repr(cache) == "TokenCache(1 of 4096)"  # remembered
    assert cache.authenticate(token).user_id == "alice"  # answered from the cache
    wait_past(exp)
    assert refusal(cache, token) == ("UNAUTHORIZED", "Token expired")
    assert refusal(cache, token) == ("UNAUTHORIZED", "Token expired")  # and stays refused


def test_a_remembered_token_carries_its_claims() -> None:
    cache = TokenCache(SECRET)
    memberships = [OrgMembership(orgId="org-1", role="member")]
    token = mint_token(SECRET, "bob", is_admin=True, org_memberships=memberships)
    first, again = cache.authenticate(token), cache.authenticate(token)
    assert repr(cache) == "TokenCache(1 of 4096)"  # remembered once
    assert first == again
    assert (again.user_id, again.is_admin, again.org_role("org-1")) == ("bob", True, "member")


def test_refusals_are_never_remembered() -> None:
    cache = TokenCache(SECRET)
    no_access = mint_token(SECRET, "carol", gastown_access=False)
    other_secret = mint_token("another-secret-0123456789abcdef0123", "carol")
    for _ in range(2):
        assert refusal(cache, no_access) == ("FORBIDDEN", "Gastown access required")
        assert refusal(cache, other_secret) == ("UNAUTHORIZED", "Invalid token")
        assert refusal(cache, None) == ("UNAUTHORIZED", "Missing bearer token")
        assert refusal(cache, "") == ("UNAUTHORIZED", "Missing bearer token")
    assert repr(cache) == "TokenCache(0 of 4096)"


def test_only_the_exact_token_string_hits() -> None:
    cache = TokenCache(SECRET)
    token = mint_token(SECRET, "dave")
    cache.authenticate(token)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}AA"
    assert refusal(cache, forged) == ("UNAUTHORIZED", "Invalid token")
    assert refusal(cache, token + "x") == ("UNAUTHORIZED", "Invalid token")


def test_the_cache_is_bounded_and_never_shows_a_token() -> None:
    cache = TokenCache(SECRET, max_entries=2)
    tokens = [mint_token(SECRET, f"user-{i}") for i in range(3)]
    for token in tokens:
        cache.authenticate(token)
    assert repr(cache) == "TokenCache(2 of 2)"
    assert [cache.authenticate(t).user_id for t in tokens] == ["user-0", "user-1", "user-2"]
    assert not any(t in repr(cache) or t in str(cache) for t in tokens)


def test_the_server_refuses_an_expired_token_it_accepted_before(app_server: AppServer) -> None:
    token = app_server.token("erin", ttl_seconds=2)
    exp = int(time.time()) + 2
    with app_server.client(token) as client:
        first = client.get("/test.whoami")
        assert first.status_code == 200 and first.json()["result"]["data"] == "erin"
        wait_past(exp)
        late = client.get("/test.whoami")
    assert late.status_code == 401
    assert late.json()["error"]["message"] == "Token expired"
