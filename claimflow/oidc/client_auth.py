"""Client authentication at the token endpoint (RFC 6749 §2.3.1).

``client_secret_basic`` and ``client_secret_post`` for confidential clients; a public client
(single-page app) identifies itself by ``client_id`` alone and is held to PKCE by its grant.
Using two methods at once is refused (§2.3: "MUST NOT use more than one authentication method").
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import Request

from claimflow.domain import Application
from claimflow.errors import OAuthError
from claimflow.store import Database, applications
from claimflow.store.loop_reads import LoopReadUnavailable


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "Unsupported authorization scheme.", 401)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", 401)
    # RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
    return unquote(client_id), unquote(secret)


async def authenticate_client(
    request: Request, params: dict[str, str], db: Database
) -> Application:
    """The calling application, authenticated; raises ``invalid_client`` (401) otherwise."""
    basic = _basic_credentials(request)
    if basic is not None and "client_secret" in params:
        raise OAuthError("invalid_request", "Use one client authentication method.")
    if basic is not None:
        client_id, secret = basic
        if params.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_client", "client_id does not match the credentials.", 401)
    else:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id:
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    if secret and db.loop_reader is not None:
        try:
            app = applications.authenticate_client_on_loop(db.loop_reader, client_id, secret)
        except LoopReadUnavailable:
            pass
        else:
            if app is None:
                raise OAuthError("invalid_client", "Client authentication failed.", 401)
            return app
    if db.direct is not None:
        # PostgreSQL: on the driver (``store.pg_direct``), a read per request as before, so a
        # deleted application or a rotated secret is refused at once on every worker.
        if secret:
            app = await applications.authenticate_client_direct(db.direct, client_id, secret)
        else:
            found = await applications.find_application_direct(db.direct, client_id)
            app = found if found is not None and found.is_public else None
        if app is None:
            raise OAuthError("invalid_client", "Client authentication failed.", 401)
        return app
    async with db.connect() as conn:
        if secret:
            app = await applications.authenticate_client(conn, client_id, secret)
        else:
            found = await applications.find_application(conn, client_id)
            app = found if found is not None and found.is_public else None
    if app is None:
        raise OAuthError("invalid_client", "Client authentication failed.", 401)
    return app
