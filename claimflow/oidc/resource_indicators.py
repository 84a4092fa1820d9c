"""Which audiences a token may carry (RFC 8707 Resource Indicators, with Kinde's ``audience``).

RFC 8707 §2: the server must refuse a target it does not know or the client may not use, with
``invalid_target``. Here a target is a registered API (``/api/v1/apis``) and "may use" means the
application is authorized for it (``PATCH /api/v1/apis/{api_id}/applications``). The Management
API's own audience ``<issuer>/api`` is no registered API: client-credentials tokens of M2M
applications reach it with their Management API scopes, and user tokens never do
(``docs/decisions.md``, "Audiences and APIs"). With no audience asked, a user token's audience
is the client itself and an M2M token's the Management API, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import ApiAuthorization, Application
from claimflow.errors import OAuthError
from claimflow.store import apis

MAX_AUDIENCES = 10
"""A bound on the audiences of one request, so one request cannot fan out into many lookups."""


def requested_audiences(value: str | None) -> tuple[str, ...]:
    """The space-separated ``audience`` parameter (Kinde's SDKs join several with spaces)."""
    audiences = tuple(dict.fromkeys((value or "").split()))
    if len(audiences) > MAX_AUDIENCES:
        raise OAuthError("invalid_target", f"At most {MAX_AUDIENCES} audiences per request.")
    return audiences


async def authorize_user_audiences(
    conn: AsyncConnection, client: Application, audiences: Sequence[str], management_audience: str
) -> None:
    """Refuse (``invalid_target``) any audience a user token of ``client`` may not carry.

    The client itself is always allowed: it is the default audience, and a refresh token
    remembers it as the audience of the grant it continues.
    """
    for audience in audiences:
        if audience == client.client_id:
            continue
        if audience == management_audience:
            raise OAuthError("invalid_target", "User tokens cannot target the Management API.")
        if await apis.authorization_for(conn, audience, client.client_id) is None:
            raise OAuthError(
                "invalid_target",
                "The audience is not an API this application is authorized for.",
            )


async def authorize_m2m_audience(
    conn: AsyncConnection, client: Application, audience: str
) -> ApiAuthorization:
    """The M2M client's authorization for the registered API ``audience`` (else ``invalid_target``)."""
    authorization = await apis.authorization_for(conn, audience, client.client_id)
    if authorization is None:
        raise OAuthError(
            "invalid_target", "The audience is not an API this application is authorized for."
        )
    return authorization
