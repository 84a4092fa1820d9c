"""Claim names the provider owns: no workflow may set them (design §7), in one list per token.

Kinde forbids these only in TypeScript types (Infra ``lib/prohibitedClaims.ts``); we refuse them
when a workflow calls ``set_custom_claim`` and again when claims are merged, because a workflow
overwriting ``sub`` or ``aud`` would forge identity for every service that trusts the token.
Both checks read these sets, so they cannot drift apart.
"""

from __future__ import annotations

import functools

KINDE_PROHIBITED_COMMON = frozenset({"azp", "exp", "iat", "iss", "nbf", "sid", "sub", "act", "aud"})
KINDE_PROHIBITED_ACCESS_TOKEN = frozenset({"jti", "scp"})
KINDE_PROHIBITED_ID_TOKEN = frozenset({"auth_time", "jti", "updated_at", "rat"})

PROVIDER_OWNED = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "scp", "scope", "client_id"}
    | {"org_code", "org_codes", "permissions", "roles", "nonce", "at_hash", "c_hash"}
    | {"auth_time", "acr", "amr", "sid", "cnf", "gty", "v", "typ", "ext", "feature_flags"}
)
"""Claims our token endpoint computes (``claimflow.tokens.claims``, the client-credentials
grant) or Kinde's token format carries, and that services trust: ``gty`` marks a machine token,
``cnf`` binds a token to a key (RFC 7800), ``typ``/``v`` are Kinde's format markers."""

ID_TOKEN_PROFILE = frozenset(
    {"email", "email_verified", "name", "given_name", "family_name", "picture", "updated_at"}
)
"""What the ID token says about the user from the store (OIDC Core §5.1): a workflow must not
make a user's ``email`` say something else."""

ACCESS_TOKEN_RESERVED = KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ACCESS_TOKEN | PROVIDER_OWNED
ID_TOKEN_RESERVED = (
    KINDE_PROHIBITED_COMMON | KINDE_PROHIBITED_ID_TOKEN | PROVIDER_OWNED | ID_TOKEN_PROFILE
)
RESERVED_CLAIMS = ACCESS_TOKEN_RESERVED | ID_TOKEN_RESERVED
"""Every reserved name; a workflow declaring one of these claims is refused at start-up."""

BUILTIN_CLAIMS = {"org_billing": "org_billing", "billingDetails": "user_billing"}
"""The billing claims and the built-in workflow that sets each. Services trust them as the
provider's statement of what was paid for, so only the one enabled workflow that declares such a
claim may set it (the built-in, or a deployment's own enabled instead of it); a workflow that
does not declare it (or a case variant of the name) cannot."""


def _folded(name: str) -> str:
    return name.strip().casefold()


_FOLDED_BUILTIN = {_folded(name): owner for name, owner in BUILTIN_CLAIMS.items()}


@functools.cache
def _folded_set(reserved: frozenset[str]) -> frozenset[str]:
    return frozenset(_folded(name) for name in reserved)


def is_reserved(name: str, reserved: frozenset[str] = RESERVED_CLAIMS) -> bool:
    """``name`` is reserved, or differs from a reserved name only by case or outer whitespace
    (``" Sub"``, ``"GTY"``): a verifier that folds names must not be fooled either."""
    return name in reserved or _folded(name) in _folded_set(reserved)


def builtin_claim_owner(name: str) -> str | None:
    """The built-in workflow that owns ``name`` (or a case/whitespace variant of it)."""
    return _FOLDED_BUILTIN.get(_folded(name))
