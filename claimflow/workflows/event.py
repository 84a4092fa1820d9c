"""The ``user:tokens_generation`` event, mirroring Kinde's event in snake_case (design §4)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Trigger(enum.StrEnum):
    """Kinde's workflow triggers; claimflow runs ``user:tokens_generation`` today."""

    USER_TOKENS_GENERATION = "user:tokens_generation"
    USER_PRE_MFA = "user:pre_mfa"
    USER_POST_AUTHENTICATION = "user:post_authentication"
    M2M_TOKEN_GENERATION = "m2m:token_generation"
    USER_EXISTING_PASSWORD_PROVIDED = "user:existing_password_provided"
    USER_NEW_PASSWORD_PROVIDED = "user:new_password_provided"
    USER_PLAN_SELECTION = "user:plan_selection"
    USER_PLAN_CANCELLATION_REQUEST = "user:plan_cancellation_request"
    USER_PRE_REGISTRATION = "user:pre_registration"
    USER_NEW_USERNAME_PROVIDED = "user:new_username_provided"


class AuthOrigin(enum.StrEnum):
    AUTHORIZATION_REQUEST = "authorization_request"
    REFRESH_TOKEN_REQUEST = "refresh_token_request"


@dataclass(frozen=True, slots=True)
class EventUser:
    id: str
    identity_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventOrganization:
    code: str


@dataclass(frozen=True, slots=True)
class EventApplication:
    client_id: str


@dataclass(frozen=True, slots=True)
class EventAuth:
    origin: AuthOrigin
    is_existing_session: bool = False
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventDomains:
    kinde_domain: str


@dataclass(frozen=True, slots=True)
class EventWorkflow:
    trigger: Trigger = Trigger.USER_TOKENS_GENERATION


@dataclass(frozen=True, slots=True)
class EventContext:
    user: EventUser
    application: EventApplication
    auth: EventAuth
    domains: EventDomains
    organization: EventOrganization | None = None
    workflow: EventWorkflow = field(default_factory=EventWorkflow)


@dataclass(frozen=True, slots=True)
class EventRequestAuth:
    audience: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventRequest:
    ip: str | None = None
    user_agent: str | None = None
    auth: EventRequestAuth = field(default_factory=EventRequestAuth)


@dataclass(frozen=True, slots=True)
class TokensGenerationEvent:
    """What a token-generation workflow receives: who signs in, to what, from where."""

    context: EventContext
    request: EventRequest = field(default_factory=EventRequest)


def event_to_wire(event: TokensGenerationEvent) -> dict[str, Any]:
    """The event as JSON for a runner process (enums as their values, tuples as lists)."""
    wire: dict[str, Any] = dataclasses.asdict(event)
    return wire


def event_from_wire(wire: dict[str, Any]) -> TokensGenerationEvent:
    """The inverse of ``event_to_wire``; the runner rebuilds the event its workflow receives."""
    context, request = wire["context"], wire.get("request") or {}
    organization = context.get("organization")
    return TokensGenerationEvent(
        context=EventContext(
            user=EventUser(**context["user"]),
            application=EventApplication(**context["application"]),
            auth=EventAuth(
                origin=AuthOrigin(context["auth"]["origin"]),
                is_existing_session=bool(context["auth"].get("is_existing_session")),
                connection_id=context["auth"].get("connection_id"),
            ),
            domains=EventDomains(**context["domains"]),
            organization=EventOrganization(**organization) if organization else None,
            workflow=EventWorkflow(Trigger(context["workflow"]["trigger"])),
        ),
        request=EventRequest(
            ip=request.get("ip"),
            user_agent=request.get("user_agent"),
            auth=EventRequestAuth(audience=tuple((request.get("auth") or {}).get("audience", ()))),
        ),
    )
