"""Claim names the provider owns: no workflow may set them (design §7), in one list per token.

Kinde forbids these only in TypeScript types (Infra ``lib/prohibitedClaims.ts``); we refuse them
when a workflow calls ``set_custom_claim`` and again when claims are merged, because a workflow
overwriting ``sub`` or ``aud`` would forge identity for every service that trusts the token.
Both checks read these sets, so they cannot drift apart.
"""

from __future__ import annotations

KINDE_PROHIBITED_COMMON = frozenset({"azp", "exp", "iat", "iss", "nbf", "sid", "sub", "act", "aud"})
KINDE_PROHIBITED_ACCESS_TOKEN = frozenset({"jti", "scp"})
KINDE_PROHIBITED_ID_TOKEN = frozenset({"auth_time", "jti", "updated_at", "rat"})

PROVIDER_OWNED = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "scp", "client_id"}
    | {"org_code", "permissions", "roles", "nonce", "at_hash", "auth_time"}
)
"""Issue 4's list: claims our token endpoint computes and resource servers trust."""

ACCESS_TOKEN_RESERVED = KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ACCESS_TOKEN | PROVIDER_OWNED
ID_TOKEN_RESERVED = (
    KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ID_TOKEN | PROVIDER_OWNED | {"org_codes"}
)
RESERVED_CLAIMS = ACCESS_TOKEN_RESERVED | ID_TOKEN_RESERVED
"""Every reserved name; a workflow declaring one of these claims is refused at start-up."""
