"""Which endpoints a browser app may call cross-origin, and from which origins.

The endpoints are those a single-page app needs (token, userinfo and Kinde's user profile,
revocation, JWKS, discovery), with the methods each answers; the origins are read from the
applications (``store.applications.browser_origins``) on each cross-origin request, so a change
made through the Management API holds at once on every worker.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from claimflow.middleware.cors import AllowedOrigins
from claimflow.services import Services
from claimflow.store import applications

log = logging.getLogger("claimflow.oidc")

GET, POST = frozenset({"GET"}), frozenset({"POST"})

CORS_PATHS: dict[str, frozenset[str]] = {
    "/oauth2/token": POST,
    "/oauth2/revoke": POST,
    "/oauth2/userinfo": GET | POST,
    "/oauth2/v2/user_profile": GET,
    "/.well-known/jwks.json": GET,
    "/.well-known/jwks": GET,
    "/.well-known/openid-configuration": GET,
}


def allowed_origins(services: Services) -> AllowedOrigins:
    """The origins the applications allow; none while the store cannot be read."""

    async def read() -> frozenset[str]:
        try:
            async with services.db.connect() as conn:
                return await applications.browser_origins(conn)
        except SQLAlchemyError:
            log.warning("CORS: the applications could not be read; no origin allowed")
            return frozenset()

    return read
