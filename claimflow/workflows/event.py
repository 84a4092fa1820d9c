"""The workflow events, mirroring Kinde's in snake_case (design §4).

``user:tokens_generation`` (``TokensGenerationEvent``), ``user:post_authentication``
(``PostAuthenticationEvent``), ``user:existing_password_provided``
(``ExistingPasswordProvidedEvent``), ``m2m:token_generation`` (``M2MTokenGenerationEvent``),
``user:plan_selection`` and ``user:plan_cancellation_request`` (``PlanChangeEvent``). Each event says who its run is about (``subject``) and which
of its values are secrets (``secrets``): the engine redacts those from the run's log lines and
error, as Kinde redacts the password "when logged to the console" in password workflows
(https://docs.kinde.com/workflows/example-workflows/existing-password-provided-workflow/).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Trigger(enum.StrEnum):
    """Kinde's workflow triggers (``WorkflowTrigger`` of kinde-oss/infrastructure ``lib/types.ts``);
    ``registry.FIRED_TRIGGERS`` says which claimflow fires."""

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

    @property
    def subject(self) -> tuple[str | None, str | None]:
        """The user and organization the run log files the run under."""
        org = self.context.organization
        return self.context.user.id, org.code if org else None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class AuthUrlParams:
    """The authorization request's parameters, as Kinde's ``request.authUrlParams``.

    Kinde's sample (https://docs.kinde.com/workflows/example-workflows/workflow-user-post-auth/)
    carries ``state``, ``orgCode``, ``clientId`` and ``redirectUri``; its type adds the login
    parameters (``LoginMethodParams``: ``audience``, ``scope``, ``prompt``, ``loginHint``...,
    kinde-oss/infrastructure ``lib/types.ts``). We give the ones an authorization request here
    can carry.
    """

    client_id: str
    redirect_uri: str
    state: str | None = None
    org_code: str | None = None
    scope: str | None = None
    audience: tuple[str, ...] = ()
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """The browser's request: its address and user agent (not a token caller's)."""

    ip: str | None = None
    user_agent: str | None = None
    auth_url_params: AuthUrlParams | None = None


@dataclass(frozen=True, slots=True)
class PostAuthenticationAuth:
    """Kinde's ``context.auth`` of ``user:post_authentication``."""

    is_new_user_record_created: bool = False
    """True when this very sign-in created the user (here: a lazy password migration)."""
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class PostAuthenticationContext:
    user: EventUser
    application: EventApplication
    auth: PostAuthenticationAuth
    domains: EventDomains
    organization: EventOrganization | None = None
    """The organization the request asks for (``org_code``), before membership is checked;
    Kinde gives it only as ``request.auth_url_params.org_code``; we give both."""
    workflow: EventWorkflow = field(
        default_factory=lambda: EventWorkflow(Trigger.USER_POST_AUTHENTICATION)
    )


@dataclass(frozen=True, slots=True)
class PostAuthenticationEvent:
    """``user:post_authentication``: the password was right; no session or code exists yet.

    Kinde: "This trigger fires after the user has completed single factor authentication ...
    At this stage the user is not authorized - we have not checked organization access"
    (https://docs.kinde.com/workflows/example-workflows/workflow-user-post-auth/); event type
    ``onPostAuthenticationEvent`` in kinde-oss/infrastructure ``lib/types.ts``.
    """

    context: PostAuthenticationContext
    request: SignInRequest = field(default_factory=SignInRequest)

    @property
    def subject(self) -> tuple[str | None, str | None]:
        org = self.context.organization
        return self.context.user.id, org.code if org else None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class ExistingPasswordAuth:
    """Kinde's ``context.auth`` of ``user:existing_password_provided``.

    ``password`` is what the user typed and ``hashed_password`` its argon2id hash, made by the
    server (the cost of the check an unknown email gets anyway); a workflow sets it with
    ``PUT /api/v1/users/{user_id}/password`` as Kinde's drip-feed example does with its
    ``hashedPassword``. Neither appears in a repr, a log line or the run log.
    """

    provided_email: str
    password: str = field(repr=False)
    hashed_password: str = field(repr=False)
    has_user_record_in_kinde: bool = False
    """Kinde's name: whether claimflow already has a user with this email (without a password)."""


@dataclass(frozen=True, slots=True)
class ExistingPasswordContext:
    auth: ExistingPasswordAuth
    application: EventApplication
    domains: EventDomains
    user: EventUser | None = None
    """The user with this email, when one exists without a password; else None."""
    workflow: EventWorkflow = field(
        default_factory=lambda: EventWorkflow(Trigger.USER_EXISTING_PASSWORD_PROVIDED)
    )


@dataclass(frozen=True, slots=True)
class ExistingPasswordProvidedEvent:
    """``user:existing_password_provided``: a password typed for an email claimflow cannot check.

    Kinde: "This trigger fires after an existing password is entered in the sign-in flow", for
    drip-feed migration ("check the password against an external database before creating the
    user in Kinde and migrating their password";
    https://docs.kinde.com/workflows/example-workflows/existing-password-provided-workflow/ ,
    https://docs.kinde.com/workflows/workflow-tutorials/drip-feed-migration/). Here it fires for
    an email no user has, or a user without a password.
    """

    context: ExistingPasswordContext
    request: SignInRequest = field(default_factory=SignInRequest)

    @property
    def subject(self) -> tuple[str | None, str | None]:
        user = self.context.user
        return (user.id if user else None), None

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = self.context.auth
        return (auth.password, auth.hashed_password)


@dataclass(frozen=True, slots=True)
class M2MApplication:
    """The M2M application asking for the token (Kinde's ``context.application.clientId``)."""

    client_id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class M2MRequestAuth:
    """Kinde's ``request.auth``: the audience and the scopes the token is issued for."""

    audience: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class M2MRequest:
    ip: str | None = None
    user_agent: str | None = None
    auth: M2MRequestAuth = field(default_factory=M2MRequestAuth)


@dataclass(frozen=True, slots=True)
class M2MTokenContext:
    application: M2MApplication
    domains: EventDomains
    organization: EventOrganization | None = None
    """The organization the application belongs to (an organization-scoped M2M application);
    its ``org_code`` is in the token already and no workflow can change it."""
    workflow: EventWorkflow = field(
        default_factory=lambda: EventWorkflow(Trigger.M2M_TOKEN_GENERATION)
    )


@dataclass(frozen=True, slots=True)
class M2MTokenGenerationEvent:
    """``m2m:token_generation``: a client-credentials token is being issued.

    Kinde: "This trigger fires when an M2M token is generated"; its sample event carries
    ``request.auth.audience``, ``request.auth.scope``, ``request.ip``,
    ``context.application.clientId`` and ``context.domains.kindeDomain``
    (https://docs.kinde.com/workflows/example-workflows/m2m-token-generation-workflow/). We add
    the application's name and its organization. Claims are set with ``m2m_token``
    (Kinde's ``kinde.m2mToken``, https://docs.kinde.com/workflows/bindings/m2m-token-binding/).
    """

    context: M2MTokenContext
    request: M2MRequest = field(default_factory=M2MRequest)

    @property
    def subject(self) -> tuple[str | None, str | None]:
        org = self.context.organization
        return None, org.code if org else None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class EventBilling:
    """Kinde's ``context.billing`` of the plan triggers, with the billing customer we add.

    ``current_plan_code`` is the plan of the customer's active agreement (None without one);
    ``requested_plan_code`` the plan asked for (plan selection); ``agreement_id`` the agreement
    to cancel (cancellation request).
    """

    customer_id: str
    current_plan_code: str | None = None
    requested_plan_code: str | None = None
    agreement_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlanChangeContext:
    billing: EventBilling
    domains: EventDomains
    workflow: EventWorkflow
    user: EventUser | None = None
    """The customer's user, for a personal (B2C) customer."""
    organization: EventOrganization | None = None
    """The customer's organization, for a B2B customer."""


@dataclass(frozen=True, slots=True)
class PlanChangeEvent:
    """``user:plan_selection`` and ``user:plan_cancellation_request``: before a plan change.

    Kinde fires them "before plan selection or any payments are processed" and "before a
    cancellation request is processed", from the self-serve portal or the Management API
    (https://docs.kinde.com/workflows/example-workflows/plan-selection-workflow/ ,
    https://docs.kinde.com/workflows/example-workflows/plan-cancellation-request-workflow/); the
    sample events carry ``context.billing`` (``currentPlanCode`` and ``requestedPlanCode``, or
    ``agreementId``), ``context.user``, ``context.organization`` and the caller's ``request``.
    A workflow refuses with the ``plan`` binding (Kinde's ``kinde.plan``).
    """

    context: PlanChangeContext
    request: SignInRequest = field(default_factory=SignInRequest)
    """The Management API caller's address and user agent."""

    @property
    def subject(self) -> tuple[str | None, str | None]:
        user, org = self.context.user, self.context.organization
        return (user.id if user else None), (org.code if org else None)

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()


PLAN_TRIGGERS = frozenset({Trigger.USER_PLAN_SELECTION, Trigger.USER_PLAN_CANCELLATION_REQUEST})

WorkflowEvent = (
    TokensGenerationEvent
    | PostAuthenticationEvent
    | ExistingPasswordProvidedEvent
    | M2MTokenGenerationEvent
    | PlanChangeEvent
)
"""The event a workflow receives: the one of its trigger."""


def event_to_wire(event: WorkflowEvent) -> dict[str, Any]:
    """The event as JSON for a runner process (enums as their values, tuples as lists)."""
    wire: dict[str, Any] = dataclasses.asdict(event)
    return wire


def _sign_in_request(request: dict[str, Any]) -> SignInRequest:
    params = request.get("auth_url_params")
    return SignInRequest(
        ip=request.get("ip"),
        user_agent=request.get("user_agent"),
        auth_url_params=None
        if not params
        else AuthUrlParams(**{**params, "audience": tuple(params.get("audience") or ())}),
    )


def _post_authentication_from_wire(wire: dict[str, Any]) -> PostAuthenticationEvent:
    context = wire["context"]
    organization = context.get("organization")
    return PostAuthenticationEvent(
        context=PostAuthenticationContext(
            user=EventUser(**context["user"]),
            application=EventApplication(**context["application"]),
            auth=PostAuthenticationAuth(**context["auth"]),
            domains=EventDomains(**context["domains"]),
            organization=EventOrganization(**organization) if organization else None,
        ),
        request=_sign_in_request(wire.get("request") or {}),
    )


def _existing_password_from_wire(wire: dict[str, Any]) -> ExistingPasswordProvidedEvent:
    context = wire["context"]
    user = context.get("user")
    return ExistingPasswordProvidedEvent(
        context=ExistingPasswordContext(
            auth=ExistingPasswordAuth(**context["auth"]),
            application=EventApplication(**context["application"]),
            domains=EventDomains(**context["domains"]),
            user=EventUser(**user) if user else None,
        ),
        request=_sign_in_request(wire.get("request") or {}),
    )


def event_from_wire(wire: dict[str, Any]) -> WorkflowEvent:
    """The inverse of ``event_to_wire``; the runner rebuilds the event its workflow receives."""
    trigger = Trigger(wire["context"]["workflow"]["trigger"])
    if trigger is Trigger.USER_POST_AUTHENTICATION:
        return _post_authentication_from_wire(wire)
    if trigger is Trigger.USER_EXISTING_PASSWORD_PROVIDED:
        return _existing_password_from_wire(wire)
    if trigger is Trigger.M2M_TOKEN_GENERATION:
        return _m2m_from_wire(wire)
    if trigger in PLAN_TRIGGERS:
        return _plan_change_from_wire(wire, trigger)
    return _tokens_generation_from_wire(wire)


def _m2m_from_wire(wire: dict[str, Any]) -> M2MTokenGenerationEvent:
    context, request = wire["context"], wire.get("request") or {}
    organization = context.get("organization")
    auth = request.get("auth") or {}
    return M2MTokenGenerationEvent(
        context=M2MTokenContext(
            application=M2MApplication(**context["application"]),
            domains=EventDomains(**context["domains"]),
            organization=EventOrganization(**organization) if organization else None,
        ),
        request=M2MRequest(
            ip=request.get("ip"),
            user_agent=request.get("user_agent"),
            auth=M2MRequestAuth(
                audience=tuple(auth.get("audience") or ()), scope=tuple(auth.get("scope") or ())
            ),
        ),
    )


def _plan_change_from_wire(wire: dict[str, Any], trigger: Trigger) -> PlanChangeEvent:
    context = wire["context"]
    user, organization = context.get("user"), context.get("organization")
    return PlanChangeEvent(
        context=PlanChangeContext(
            billing=EventBilling(**context["billing"]),
            domains=EventDomains(**context["domains"]),
            workflow=EventWorkflow(trigger),
            user=EventUser(**user) if user else None,
            organization=EventOrganization(**organization) if organization else None,
        ),
        request=_sign_in_request(wire.get("request") or {}),
    )


def _tokens_generation_from_wire(wire: dict[str, Any]) -> TokensGenerationEvent:
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
