"""The ``user:tokens_generation`` event, mirroring Kinde's event in snake_case (design §4)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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
