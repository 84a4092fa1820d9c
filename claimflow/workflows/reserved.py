"""Claim names the provider owns; a workflow setting one is refused at run time (design §7).

Kinde forbids these only in TypeScript types (Infra ``lib/prohibitedClaims.ts``); we enforce them
when ``set_custom_claim`` is called, because a workflow overwriting ``sub`` or ``aud`` would forge
identity for every service that trusts the token.
"""

from __future__ import annotations

KINDE_PROHIBITED_COMMON = frozenset({"azp", "exp", "iat", "iss", "nbf", "sid", "sub", "act", "aud"})
KINDE_PROHIBITED_ACCESS_TOKEN = frozenset({"jti", "scp"})
KINDE_PROHIBITED_ID_TOKEN = frozenset({"auth_time", "jti", "updated_at", "rat"})
CLAIMFLOW_OWNED = frozenset(
    {"client_id", "org_code", "permissions", "roles", "nonce", "at_hash", "auth_time", "scp"}
)
"""Issue 4's list beyond Kinde's: claims our token endpoint computes and services trust."""

RESERVED_ACCESS_TOKEN_CLAIMS = (
    KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ACCESS_TOKEN | CLAIMFLOW_OWNED | {"jti"}
)
RESERVED_ID_TOKEN_CLAIMS = KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ID_TOKEN | CLAIMFLOW_OWNED
RESERVED_CLAIMS = RESERVED_ACCESS_TOKEN_CLAIMS | RESERVED_ID_TOKEN_CLAIMS
"""Every reserved name; a declared claim in this set is refused at start-up."""
