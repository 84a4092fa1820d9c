"""The workflow events of a sign-in and a token request (design §4, Kinde's events).

Built here, where the request is known: ``user:tokens_generation`` for the grants that issue
user tokens and for the billing-details endpoint; ``user:post_authentication`` and
``user:existing_password_provided`` for the login form; ``m2m:token_generation`` for the
client-credentials grant. The ``claimflow workflows test``
command builds its dry-run events with them too.
"""

from __future__ import annotations

import functools

from claimflow.workflows.event import (
    AuthOrigin,
    AuthUrlParams,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventRequest,
    EventRequestAuth,
    EventUser,
    ExistingPasswordAuth,
    ExistingPasswordContext,
    ExistingPasswordProvidedEvent,
    M2MApplication,
    M2MRequest,
    M2MRequestAuth,
    M2MTokenContext,
    M2MTokenGenerationEvent,
    PostAuthenticationAuth,
    PostAuthenticationContext,
    PostAuthenticationEvent,
    SignInRequest,
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


def post_authentication_event(
    *,
    issuer: str,
    user_id: str,
    client_id: str,
    redirect_uri: str,
    is_new_user_record_created: bool = False,
    org_code: str | None = None,
    state: str | None = None,
    scope: str | None = None,
    audience: tuple[str, ...] = (),
    prompt: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> PostAuthenticationEvent:
    """Kinde's ``user:post_authentication`` event for a password just proven right."""
    return PostAuthenticationEvent(
        context=PostAuthenticationContext(
            user=EventUser(id=user_id),
            application=EventApplication(client_id=client_id),
            auth=PostAuthenticationAuth(is_new_user_record_created=is_new_user_record_created),
            domains=EventDomains(kinde_domain=issuer),
            organization=EventOrganization(org_code) if org_code else None,
        ),
        request=SignInRequest(
            ip=ip,
            user_agent=user_agent,
            auth_url_params=AuthUrlParams(
                client_id=client_id,
                redirect_uri=redirect_uri,
                state=state,
                org_code=org_code,
                scope=scope,
                audience=audience,
                prompt=prompt,
            ),
        ),
    )


def existing_password_provided_event(
    *,
    issuer: str,
    client_id: str,
    email: str,
    password: str,
    hashed_password: str,
    user_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ExistingPasswordProvidedEvent:
    """Kinde's ``user:existing_password_provided`` event for an email we cannot check here."""
    return ExistingPasswordProvidedEvent(
        context=ExistingPasswordContext(
            auth=ExistingPasswordAuth(
                provided_email=email,
                password=password,
                hashed_password=hashed_password,
                has_user_record_in_kinde=user_id is not None,
            ),
            application=EventApplication(client_id=client_id),
            domains=EventDomains(kinde_domain=issuer),
            user=EventUser(id=user_id) if user_id else None,
        ),
        request=SignInRequest(ip=ip, user_agent=user_agent),
    )


def m2m_token_generation_event(
    *,
    issuer: str,
    client_id: str,
    application_name: str | None = None,
    org_code: str | None = None,
    audience: tuple[str, ...] = (),
    scope: tuple[str, ...] = (),
    ip: str | None = None,
    user_agent: str | None = None,
) -> M2MTokenGenerationEvent:
    """Kinde's event for a client-credentials token of ``client_id`` (an organization's, if any).

    An API key asks for the same token again and again, from the same address, so the event of
    the last few hundred requests is kept (``_m2m_event``): it is frozen all the way down and
    equal arguments make an equal event, so handing one out twice changes nothing a workflow
    can see, and a warm token skips building its eight objects."""
    return _m2m_event(
        issuer, client_id, application_name, org_code, audience, scope, ip, user_agent
    )


@functools.lru_cache(maxsize=256)
def _m2m_event(
    issuer: str,
    client_id: str,
    application_name: str | None,
    org_code: str | None,
    audience: tuple[str, ...],
    scope: tuple[str, ...],
    ip: str | None,
    user_agent: str | None,
) -> M2MTokenGenerationEvent:
    return M2MTokenGenerationEvent(
        context=M2MTokenContext(
            application=M2MApplication(client_id=client_id, name=application_name),
            domains=EventDomains(kinde_domain=issuer),
            organization=EventOrganization(org_code) if org_code else None,
        ),
        request=M2MRequest(
            ip=ip, user_agent=user_agent, auth=M2MRequestAuth(audience=audience, scope=scope)
        ),
    )
