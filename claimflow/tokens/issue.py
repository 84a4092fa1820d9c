"""Issuing a user's access token and ID token (design §3): merge, budget, sign.

The order matters. The grant runs the workflows first, because a failing or denying workflow
must leave nothing issued, and hands their claims here; they are merged with base claims
winning, fitted to the size budget with the exact header ``KeyManager.sign`` writes, and signed.
Signing has no side effect, so the grant can still throw the tokens away if its final atomic
write (spending the code or the refresh token) loses a race. Everything arrives as an argument:
this module knows neither the service container nor the workflow engine (design §2).

The budget hands back the JSON payload it measured, and that is what gets signed (RFC 7515 §5.1
signs the payload's octets): a claim's encoding made once by the workflow is not redone here,
and the size checked is the size issued.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import jwt

from claimflow.tokens.budget import FitMemo, fit_payload
from claimflow.tokens.claims import (
    TokenContext,
    access_token_claims,
    id_token_claims,
    mergeable,
    token_hash,
)
from claimflow.tokens.keys import KeyManager, SigningKey
from claimflow.tokens.reserved import ACCESS_TOKEN_RESERVED, ID_TOKEN_RESERVED

ACCESS_TOKEN_TYP = "at+jwt"
"""RFC 9068 §2.1: access tokens carry ``typ: at+jwt`` so they cannot pass for ID tokens."""
ID_TOKEN_TYP = "JWT"


class CustomClaims(Protocol):
    """The custom claims the workflows set, per token, each with its forms (preferred first).

    ``*_encoded`` may carry the forms' compact JSON as the workflow made it once (the budget and
    the signer reuse it); a claim missing there is encoded here.
    """

    @property
    def access_token(self) -> Mapping[str, tuple[Any, ...]]: ...
    @property
    def id_token(self) -> Mapping[str, tuple[Any, ...]]: ...
    @property
    def access_token_encoded(self) -> Mapping[str, tuple[bytes, ...]]: ...
    @property
    def id_token_encoded(self) -> Mapping[str, tuple[bytes, ...]]: ...


@dataclass(frozen=True, slots=True)
class TokenSizeBudget:
    """The largest encoded JWT of each kind, in bytes (``claimflow.tokens.budget``)."""

    access_token_max_bytes: int
    id_token_max_bytes: int


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    access_token_jti: str
    access_token_expires_on: datetime
    expires_in: int
    id_token: str | None


async def issue_user_tokens(
    keys: KeyManager,
    ctx: TokenContext,
    custom: CustomClaims,
    *,
    budget: TokenSizeBudget,
    access_ttl: int,
    id_ttl: int,
    with_id_token: bool,
) -> IssuedTokens:
    """Sign both tokens with ``custom`` merged in; raises ``TokenTooLarge`` over ``budget``."""
    # The key is read once: the header the budget measures is the header that gets signed.
    key = await keys.ensure_active_key()
    now = int(time.time())

    jti = secrets.token_hex(16)
    base = access_token_claims(ctx, jti=jti, now=now, ttl=access_ttl)
    header = {"alg": key.algorithm, "kid": key.kid, "typ": ACCESS_TOKEN_TYP}
    fitted = fit_payload(
        "access_token",
        header,
        base,
        mergeable(custom.access_token, base, ACCESS_TOKEN_RESERVED),
        budget.access_token_max_bytes,
        key.algorithm,
        custom.access_token_encoded,
    )
    access_token = _sign(key, fitted.payload, ACCESS_TOKEN_TYP)

    id_token = None
    if with_id_token:
        id_base = id_token_claims(
            ctx,
            jti=secrets.token_hex(16),
            now=now,
            ttl=id_ttl,
            at_hash=token_hash(access_token, key.algorithm),
        )
        id_fitted = fit_payload(
            "id_token",
            {"alg": key.algorithm, "kid": key.kid, "typ": ID_TOKEN_TYP},
            id_base,
            mergeable(custom.id_token, id_base, ID_TOKEN_RESERVED),
            budget.id_token_max_bytes,
            key.algorithm,
            custom.id_token_encoded,
        )
        id_token = _sign(key, id_fitted.payload, ID_TOKEN_TYP)

    return IssuedTokens(
        access_token=access_token,
        access_token_jti=jti,
        access_token_expires_on=datetime.fromtimestamp(now + access_ttl, UTC),
        expires_in=access_ttl,
        id_token=id_token,
    )


def _sign(key: SigningKey, payload: bytes, typ: str) -> str:
    """The JWS of ``payload`` with the header ``KeyManager.sign`` writes (``alg``, ``kid``, ``typ``)."""
    headers: dict[str, Any] = {"kid": key.kid, "typ": typ}
    return jwt.api_jws.encode(payload, key.private_key, algorithm=key.algorithm, headers=headers)


async def issue_m2m_access_token(
    keys: KeyManager,
    claims: dict[str, Any],
    custom: Mapping[str, tuple[Any, ...]],
    encoded: Mapping[str, tuple[bytes, ...]],
    *,
    max_bytes: int,
    fits: FitMemo | None = None,
) -> str:
    """Sign a client-credentials token with the ``m2m:token_generation`` claims merged in.

    Base claims win and reserved names are dropped, as for user tokens; the largest custom claim
    steps down to its next form until the token fits ``max_bytes`` (``TokenTooLarge`` if even
    the last forms do not). ``fits`` is the memo of ``custom``'s fit decisions, when its owner
    keeps one (``FitMemo``: claims answered from one billing cache entry).
    """
    key = await keys.ensure_active_key()
    fitted = fit_payload(
        "M2M token",
        {"alg": key.algorithm, "kid": key.kid, "typ": ACCESS_TOKEN_TYP},
        claims,
        mergeable(custom, claims, ACCESS_TOKEN_RESERVED),
        max_bytes,
        key.algorithm,
        encoded,
        fits,
    )
    return _sign(key, fitted.payload, ACCESS_TOKEN_TYP)
