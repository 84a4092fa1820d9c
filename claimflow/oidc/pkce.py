"""Proof Key for Code Exchange (RFC 7636), S256 only.

``plain`` is refused: §4.2 allows it only when S256 is impossible, which never holds for a
client of this server, and accepting it would let an intercepted challenge redeem the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from claimflow.errors import OAuthError

S256 = "S256"

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""§4.1: ``code-verifier = 43*128unreserved``; a S256 challenge (§4.2) has the same alphabet."""
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_challenge(challenge: str | None, method: str | None, *, required: bool) -> None:
    """Check an authorization request's PKCE parameters (§4.3); raises ``invalid_request``."""
    if not challenge:
        if method:
            raise OAuthError("invalid_request", "code_challenge_method without code_challenge.")
        if required:
            raise OAuthError("invalid_request", "Public clients must use PKCE (code_challenge).")
        return
    if (method or "plain") != S256:
        raise OAuthError("invalid_request", "Only code_challenge_method=S256 is supported.")
    if not _CHALLENGE.fullmatch(challenge):
        raise OAuthError("invalid_request", "Malformed code_challenge.")


def verify(verifier: str | None, challenge: str | None) -> None:
    """Check the token request's ``code_verifier`` (§4.6); raises ``invalid_grant``."""
    if challenge is None:
        if verifier:
            raise OAuthError("invalid_grant", "No code_challenge was sent for this code.")
        return
    if not verifier:
        raise OAuthError("invalid_request", "Missing parameter 'code_verifier'.")
    if not _VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "Malformed code_verifier.")
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise OAuthError("invalid_grant", "PKCE verification failed.")
