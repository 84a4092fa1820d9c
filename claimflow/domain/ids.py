"""Identifier formats, following Kinde's (``org_1ccfb819462``, ``kp_…``, ``customer_…``)."""

from __future__ import annotations

import secrets


def new_org_code() -> str:
    return "org_" + secrets.token_hex(6)[:11]


def new_user_id() -> str:
    return "kp_" + secrets.token_hex(16)


def new_customer_id() -> str:
    return "customer_" + secrets.token_hex(16)


def new_agreement_id() -> str:
    return "agreement_" + secrets.token_hex(16)


def new_client_id() -> str:
    return secrets.token_hex(16)


def new_api_id() -> str:
    """Kinde's API ids are 32 hex digits (``7ccd126599aa422a771abcb341596881``)."""
    return secrets.token_hex(16)


def new_api_scope_id() -> str:
    return "api_scope_" + secrets.token_hex(16)


def new_client_secret() -> str:
    return secrets.token_urlsafe(40)


def new_prefixed_id(prefix: str) -> str:
    """A random id ``<prefix>_<32 hex>`` for rows that have no Kinde-defined format."""
    return f"{prefix}_{secrets.token_hex(16)}"
