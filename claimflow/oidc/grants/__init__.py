"""Grant handlers of the token endpoint, one module per grant type (RFC 6749 §4)."""

from claimflow.oidc.grants.authorization_code import authorization_code_grant
from claimflow.oidc.grants.base import GrantHandler, TokenRequest
from claimflow.oidc.grants.client_credentials import client_credentials_grant
from claimflow.oidc.grants.refresh_token import refresh_token_grant

GRANT_HANDLERS: dict[str, GrantHandler] = {
    "authorization_code": authorization_code_grant,
    "client_credentials": client_credentials_grant,
    "refresh_token": refresh_token_grant,
}

__all__ = ["GRANT_HANDLERS", "GrantHandler", "TokenRequest"]
