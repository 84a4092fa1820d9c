"""Grant handlers of the token endpoint, one module per grant type (RFC 6749 §4)."""

from claimflow.oidc.grants.base import GrantHandler, TokenRequest
from claimflow.oidc.grants.client_credentials import client_credentials_grant

GRANT_HANDLERS: dict[str, GrantHandler] = {
    "client_credentials": client_credentials_grant,
}

__all__ = ["GRANT_HANDLERS", "GrantHandler", "TokenRequest"]
