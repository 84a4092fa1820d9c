"""The ``user:tokens_generation`` event of a token request (design §4, Kinde's event).

Built here, where the request is known, for the grants that issue user tokens and for the
billing-details endpoint that re-runs a billing workflow for a token's sign-in; the
``claimflow workflows test`` command builds its dry-run event with it too.
"""

from __future__ import annotations

from claimflow.workflows.event import (
    AuthOrigin,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventRequest,
    EventRequestAuth,
    EventUser,
    TokensGenerationEvent,
)


def tokens_generation_event(
    *,
    issuer: str,
    user_id: str,
    client_id: str,
    org_code: str | None = None,
    origin: AuthOrigin = AuthOrigin.AUTHORIZATION_REQUEST,
    is_existing_session: bool = False,
    ip: str | None = None,
    user_agent: str | None = None,
    audience: tuple[str, ...] = (),
) -> TokensGenerationEvent:
    """Kinde's event for a sign-in of ``user_id`` (to ``org_code``, if any) through ``client_id``."""
    return TokensGenerationEvent(
        context=EventContext(
            user=EventUser(id=user_id),
            application=EventApplication(client_id=client_id),
            auth=EventAuth(origin=origin, is_existing_session=is_existing_session),
            domains=EventDomains(kinde_domain=issuer),
            organization=EventOrganization(org_code) if org_code else None,
        ),
        request=EventRequest(
            ip=ip, user_agent=user_agent, auth=EventRequestAuth(audience=audience)
        ),
    )
