"""Claim assembly: RFC 9068 and OIDC Core shapes, organization claims only for an org sign-in,
``at_hash`` per OIDC Core §3.1.3.6, and custom claims that can never displace a base claim."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.domain import Membership, User
from claimflow.errors import ReservedClaim
from claimflow.tokens.claims import (
    TokenContext,
    access_token_claims,
    id_token_claims,
    m2m_access_token_claims,
    mergeable,
    token_hash,
)
from claimflow.tokens.reserved import ACCESS_TOKEN_RESERVED, ID_TOKEN_RESERVED
from claimflow.workflows.bindings import TokenClaims

NOW = 1_800_000_000
USER = User(
    id="kp_1",
    email="a@example.com",
    given_name="Ada",
    family_name="Lovelace",
    created_on=datetime(2026, 1, 1, tzinfo=UTC),
)

codes = st.from_regex(r"org_[a-z0-9]{3,11}", fullmatch=True)
words = st.from_regex(r"[a-z]{1,8}(:[a-z]{1,8})?", fullmatch=True)


def context(
    membership: Membership | None, scopes: tuple[str, ...], nonce: str | None
) -> TokenContext:
    return TokenContext(
        issuer="https://id.example.com",
        user=USER,
        client_id="client_1",
        scopes=scopes,
        audience=("https://api.example.com",),
        auth_time=datetime.fromtimestamp(NOW - 30, UTC),
        membership=membership,
        org_codes=(membership.org_code,) if membership else (),
        nonce=nonce,
    )


memberships = st.none() | st.builds(
    Membership,
    org_code=codes,
    user_id=st.just("kp_1"),
    roles=st.lists(words, max_size=3).map(tuple),
    permissions=st.lists(words, max_size=5).map(tuple),
)
scope_sets = st.lists(st.sampled_from(["openid", "profile", "email", "offline"]), unique=True).map(
    tuple
)


@given(memberships, scope_sets, st.integers(min_value=60, max_value=86400))
def test_access_token_has_rfc9068_claims_and_org_claims_only_for_a_member(
    membership: Membership | None, scopes: tuple[str, ...], ttl: int
) -> None:
    claims = access_token_claims(context(membership, scopes, None), jti="j", now=NOW, ttl=ttl)
    assert {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scp", "azp"} <= set(claims)
    assert claims["exp"] - claims["iat"] == ttl
    assert claims["scp"] == list(scopes)
    assert claims["azp"] == claims["client_id"] == "client_1"
    if membership is None:
        assert not {"org_code", "permissions", "roles"} & set(claims)
    else:
        assert claims["org_code"] == membership.org_code
        assert claims["permissions"] == list(membership.permissions)
        assert [r["key"] for r in claims["roles"]] == list(membership.roles)


@given(memberships, scope_sets, st.none() | st.text(min_size=1, max_size=40))
def test_id_token_follows_oidc_core_and_scopes(
    membership: Membership | None, scopes: tuple[str, ...], nonce: str | None
) -> None:
    claims = id_token_claims(
        context(membership, scopes, nonce), jti="j", now=NOW, ttl=60, at_hash="h"
    )
    assert claims["aud"] == ["client_1"]
    assert claims["auth_time"] == NOW - 30
    assert claims.get("nonce") == nonce
    assert ("email" in claims) == ("email" in scopes)
    assert ("given_name" in claims) == ("profile" in scopes)
    if "profile" in scopes:
        assert claims["name"] == "Ada Lovelace" and claims["family_name"] == "Lovelace"
    assert ("org_codes" in claims) == (membership is not None)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=300))
def test_at_hash_is_the_left_half_of_the_access_token_hash(token: str) -> None:
    digest = hashlib.sha256(token.encode()).digest()[:16]
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert token_hash(token, "RS256") == token_hash(token, "ES256") == expected
    assert len(token_hash(token, "EdDSA")) == 43  # 32 bytes of SHA-512, base64url


claim_names = st.sampled_from(sorted(ACCESS_TOKEN_RESERVED | ID_TOKEN_RESERVED)) | st.from_regex(
    r"[a-z_]{1,12}", fullmatch=True
)


@given(
    st.dictionaries(claim_names, st.lists(st.integers(), min_size=0, max_size=3).map(tuple)),
    memberships,
)
def test_custom_claims_never_displace_base_or_reserved_claims(
    custom: dict[str, tuple[Any, ...]], membership: Membership | None
) -> None:
    base = access_token_claims(context(membership, ("openid",), None), jti="j", now=NOW, ttl=60)
    merged = mergeable(custom, base, ACCESS_TOKEN_RESERVED)
    assert not set(merged) & set(base)
    assert not set(merged) & ACCESS_TOKEN_RESERVED
    assert all(merged[name] for name in merged)
    assert {
        n
        for n, forms in custom.items()
        if forms and n not in base and n not in ACCESS_TOKEN_RESERVED
    } == set(merged)


def test_a_workflow_cannot_set_a_claim_the_merge_would_drop() -> None:
    """One list serves both checks: what a workflow may set is exactly what the merge keeps."""
    for token, reserved in (
        ("access token", ACCESS_TOKEN_RESERVED),
        ("ID token", ID_TOKEN_RESERVED),
    ):
        claims = TokenClaims(token, reserved, {})
        for name in sorted(reserved):
            with pytest.raises(ReservedClaim):
                claims.set_custom_claim(name, "x")
    assert "org_codes" in ID_TOKEN_RESERVED


@settings(deadline=None)
@given(
    client_id=st.from_regex(r"[a-z0-9]{1,16}", fullmatch=True),
    scopes=st.lists(words, unique=True, max_size=6),
    ttl=st.integers(min_value=1, max_value=86_400),
)
def test_m2m_claims_name_the_client_as_subject_and_state_scopes_twice(
    client_id: str, scopes: list[str], ttl: int
) -> None:
    claims = m2m_access_token_claims(
        issuer="https://id.test",
        client_id=client_id,
        audience="https://id.test/api",
        scopes=scopes,
        jti="j",
        now=NOW,
        ttl=ttl,
    )
    assert claims["sub"] == claims["azp"] == claims["client_id"] == client_id
    assert claims["aud"] == ["https://id.test/api"] and claims["exp"] - claims["iat"] == ttl
    assert claims["scp"] == scopes and claims["scope"].split() == scopes
    assert claims["gty"] == ["client_credentials"] and claims["v"] == "2"
    assert not {"org_code", "permissions", "roles", "auth_time"} & set(claims)


flag_claims = st.dictionaries(
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    st.one_of(
        st.booleans().map(lambda v: {"t": "b", "v": v}),
        st.integers(-100, 100).map(lambda v: {"t": "i", "v": v}),
        st.text(max_size=8).map(lambda v: {"t": "s", "v": v}),
    ),
    max_size=4,
)


@given(memberships, flag_claims)
def test_feature_flags_are_in_the_access_token_only_and_only_when_defined(
    membership: Membership | None, flags: dict[str, Any]
) -> None:
    """Kinde's ``feature_flags`` claim is an access-token claim, for personal and organization
    sign-ins alike; a deployment without flags issues no empty claim."""
    ctx = dataclasses.replace(context(membership, ("openid",), None), feature_flags=flags)
    access = access_token_claims(ctx, jti="j", now=NOW, ttl=60)
    assert access.get("feature_flags") == (flags or None)
    assert "feature_flags" not in id_token_claims(ctx, jti="j", now=NOW, ttl=60, at_hash=None)
