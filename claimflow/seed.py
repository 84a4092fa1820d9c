"""Load a business description (features, plans, organizations, users, billing, applications).

One format serves ``claimflow import FILE`` and ``claimflow demo`` (which seeds from
``claimflow/demo.yaml``, shipped in the wheel), so the demo's data is an example of the import format and the two cannot
drift apart. A file is validated as a whole before anything is written, then written in ONE
transaction: a bad file — a wrong type, an unknown plan, a duplicate email — leaves the database
exactly as it was.

The format (YAML or JSON; every list optional)::

    features:      [{code, name, kind: boolean|limit|metered}]
    plans:         [{code, name, prices: [{feature_code, price_name, fixed_charge,
                                           unit_amount, entitlement_limit_min,
                                           entitlement_limit_max}]}]
    permissions:   [{key, name?, description?}]
    roles:         [{key, name?, description?, is_default_role?, permissions?: [keys]}]
    organizations: [{code?, name, handle?, external_id?, is_auto_membership_enabled?,
                     billing?: {customer_id?, email?, plan_code?, expires_on?}}]
    users:         [{id?, email, given_name?, family_name?, password? | password_hash?,
                     memberships?: [{org_code, roles?, permissions?}],
                     billing?: {customer_id?, email?, plan_code?, expires_on?}}]
    applications:  [{name, type: reg|spa|m2m, client_id?, client_secret?, redirect_uris?,
                     logout_uris?, scopes?: [..] | all, require_organization?}]
    apis:          [{name, audience, id?, scopes?: [{key, description?}],
                     applications?: [{client_id, scopes?: [key]}]}]
    feature_flags: [{key, name, type: str|int|bool, default_value, allow_override_level?:
                     env|org|usr, description?, organizations?: {org_code: value},
                     users?: {email: value}}]
    properties:    [{key, name, context: usr|org|app, type?, is_private?, description?,
                     category_id?, organizations?: {org_code: value}, users?: {email: value}}]

``password`` is hashed with argon2id on import; ``password_hash`` takes an existing argon2 or
bcrypt hash (users migrating from another system keep their password). An application's
``client_secret`` is stored as a digest only; set it for demo data, omit it in real imports.
An API's ``applications`` are the applications authorized to get tokens for its ``audience``
(Kinde's "Authorize application"), each granted the API scopes it names.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import digest_secret, hash_password
from claimflow.domain import (
    ApplicationType,
    FeatureKind,
    FlagType,
    OverrideLevel,
    PropertyContext,
    PropertyType,
)
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES, WORKFLOWS_CLIENT_ID
from claimflow.errors import ClaimflowError, ManagementAPIError
from claimflow.store import (
    Database,
    apis,
    applications,
    billing,
    feature_flags,
    organizations,
    properties,
    roles,
    users,
)

MAX_FILE_BYTES = 64 * 1024 * 1024


class InvalidBusinessData(ClaimflowError):
    """The file cannot be imported; the message says where and why. Nothing was written."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    kind: FeatureKind = FeatureKind.BOOLEAN


class PriceSpec(_Strict):
    feature_code: str = Field(min_length=1, max_length=64)
    price_name: str = Field(min_length=1, max_length=255)
    fixed_charge: int | None = None
    unit_amount: int | None = None
    entitlement_limit_min: int | None = None
    entitlement_limit_max: int | None = None


class PlanSpec(_Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    prices: list[PriceSpec] = []


class BillingSpec(_Strict):
    """The owner's billing customer and, with ``plan_code``, its agreement on that plan."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    plan_code: str | None = Field(default=None, min_length=1, max_length=64)
    expires_on: datetime | None = None


class OrganizationSpec(_Strict):
    code: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    handle: str | None = Field(default=None, max_length=255)
    external_id: str | None = Field(default=None, max_length=255)
    is_auto_membership_enabled: bool = False
    billing: BillingSpec | None = None


class PermissionSpec(_Strict):
    """A permission of Kinde's catalogue (``/api/v1/permissions``)."""

    key: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1000)


class RoleSpec(_Strict):
    """A role of Kinde's catalogue and the permission keys it grants (``/api/v1/roles``)."""

    key: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1000)
    is_default_role: bool = False
    permissions: list[str] = []


class MembershipSpec(_Strict):
    """Role keys and directly granted permission keys; keys not in the catalogue are created."""

    org_code: str = Field(min_length=1, max_length=64)
    roles: list[str] = []
    permissions: list[str] = []


class UserSpec(_Strict):
    id: str | None = Field(default=None, min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    given_name: str | None = Field(default=None, max_length=255)
    family_name: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    password_hash: str | None = Field(default=None, min_length=1, max_length=1024)
    memberships: list[MembershipSpec] = []
    billing: BillingSpec | None = None

    @model_validator(mode="after")
    def _one_password_form(self) -> UserSpec:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give either password or password_hash, not both")
        return self


class ApplicationSpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["reg", "spa", "m2m"]
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    client_secret: str | None = Field(default=None, min_length=16, max_length=256)
    redirect_uris: list[str] = []
    logout_uris: list[str] = []
    scopes: list[str] | Literal["all"] = []
    """Granted scopes; ``all`` grants every Management API scope (for an M2M admin app)."""
    require_organization: bool = False

    def granted_scopes(self) -> tuple[str, ...]:
        return ALL_MANAGEMENT_SCOPES if self.scopes == "all" else tuple(self.scopes)


class ApiApplicationSpec(_Strict):
    client_id: str = Field(min_length=1, max_length=64)
    scopes: list[str] = []
    """Keys of the API's scopes granted to the application (its M2M tokens carry them)."""


class ApiScopeSpec(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    description: str | None = Field(default=None, max_length=255)


class ApiSpec(_Strict):
    """A registered API (Kinde's "Your APIs"): an audience tokens may be issued for."""

    name: str = Field(min_length=1, max_length=64)
    audience: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    id: str | None = Field(default=None, min_length=1, max_length=64)
    scopes: list[ApiScopeSpec] = []
    applications: list[ApiApplicationSpec] = []


class FeatureFlagSpec(_Strict):
    """A Kinde feature flag (``/api/v1/feature_flags``) and its organization and user overrides
    (Kinde's string values, parsed by ``type``), keyed by organization code and user email."""

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=255)
    type: Literal["str", "int", "bool"]
    default_value: str = Field(max_length=255)
    allow_override_level: Literal["env", "org", "usr"] = "env"
    description: str | None = Field(default=None, max_length=255)
    organizations: dict[str, str] = {}
    users: dict[str, str] = {}


class PropertySpec(_Strict):
    """A Kinde property (``/api/v1/properties``) and the values organizations and users hold."""

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=255)
    context: Literal["usr", "org", "app"]
    type: Literal["single_line_text", "multi_line_text"] = "single_line_text"
    is_private: bool = False
    description: str | None = Field(default=None, max_length=255)
    category_id: str | None = Field(default=None, max_length=64)
    organizations: dict[str, str] = {}
    users: dict[str, str] = {}


class BusinessData(_Strict):
    """A whole import file."""

    features: list[FeatureSpec] = []
    plans: list[PlanSpec] = []
    permissions: list[PermissionSpec] = []
    roles: list[RoleSpec] = []
    organizations: list[OrganizationSpec] = []
    users: list[UserSpec] = []
    applications: list[ApplicationSpec] = []
    apis: list[ApiSpec] = []
    feature_flags: list[FeatureFlagSpec] = []
    properties: list[PropertySpec] = []

    @property
    def item_count(self) -> int:
        return (
            len(self.features)
            + len(self.plans)
            + len(self.permissions)
            + len(self.roles)
            + len(self.organizations)
            + len(self.users)
            + len(self.applications)
            + len(self.apis)
            + len(self.feature_flags)
            + len(self.properties)
        )


def parse_business_data(text: str, *, source: str = "<input>") -> BusinessData:
    """Parse YAML (a superset of JSON) or JSON text into a validated ``BusinessData``."""
    try:
        raw: Any = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidBusinessData(f"{source}: not valid YAML/JSON: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidBusinessData(f"{source}: the top level must be a mapping of lists.")
    try:
        return BusinessData.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise InvalidBusinessData(f"{source}: {problems}") from exc


def load_business_file(path: Path) -> BusinessData:
    if not path.is_file():
        raise InvalidBusinessData(f"{path}: no such file.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidBusinessData(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBusinessData(f"{path}: not UTF-8 text.") from exc
    return parse_business_data(text, source=str(path))


@dataclass
class ImportSummary:
    """What an import created, by kind."""

    features: int = 0
    plans: int = 0
    permissions: int = 0
    roles: int = 0
    organizations: int = 0
    users: int = 0
    memberships: int = 0
    customers: int = 0
    agreements: int = 0
    applications: int = 0
    apis: int = 0
    feature_flags: int = 0
    properties: int = 0
    org_codes: dict[str, str] = field(default_factory=dict)
    """Organization name → code (useful when the file let codes be generated)."""

    def describe(self) -> str:
        parts = [
            f"{self.features} features",
            f"{self.plans} plans",
            f"{self.organizations} organizations",
            f"{self.users} users",
            f"{self.memberships} memberships",
            f"{self.customers} billing customers",
            f"{self.agreements} agreements",
            f"{self.applications} applications",
            f"{self.apis} APIs",
        ]
        if self.roles or self.permissions:
            parts.insert(2, f"{self.permissions} permissions, {self.roles} roles")
        if self.feature_flags or self.properties:
            parts.append(f"{self.feature_flags} feature flags, {self.properties} properties")
        return ", ".join(parts)


Progress = Callable[[int], None]
"""Called with the number of items just written (drives the CLI's progress bar)."""


async def _billing(
    conn: AsyncConnection,
    spec: BillingSpec,
    summary: ImportSummary,
    *,
    org_code: str | None = None,
    user_id: str | None = None,
) -> None:
    customer = await billing.create_customer(
        conn, org_code=org_code, user_id=user_id, email=spec.email, customer_id=spec.customer_id
    )
    summary.customers += 1
    if spec.plan_code is not None:
        await billing.create_agreement(
            conn, customer_id=customer.id, plan_code=spec.plan_code, expires_on=spec.expires_on
        )
        summary.agreements += 1


async def write_business_data(
    conn: AsyncConnection, data: BusinessData, progress: Progress | None = None
) -> ImportSummary:
    """Write ``data`` on ``conn`` (the caller owns the transaction). Raises ``InvalidBusinessData``."""
    summary = ImportSummary()
    tick = progress or (lambda _n: None)

    async def step(where: str, action: Callable[[], Any]) -> None:
        try:
            await action()
        except ManagementAPIError as exc:
            raise InvalidBusinessData(f"{where}: {exc.message}") from exc
        except InvalidBusinessData as exc:
            raise InvalidBusinessData(f"{where}: {exc}") from exc
        tick(1)

    for i, feature in enumerate(data.features):

        async def add_feature(f: FeatureSpec = feature) -> None:
            await billing.create_feature(conn, code=f.code, name=f.name, kind=f.kind)
            summary.features += 1

        await step(f"features[{i}] ({feature.code})", add_feature)

    for i, plan in enumerate(data.plans):

        async def add_plan(p: PlanSpec = plan) -> None:
            prices = [billing.PriceInput(**price.model_dump()) for price in p.prices]
            await billing.create_plan(conn, code=p.code, name=p.name, prices=prices)
            summary.plans += 1

        await step(f"plans[{i}] ({plan.code})", add_plan)

    for i, permission in enumerate(data.permissions):

        async def add_permission(p: PermissionSpec = permission) -> None:
            await roles.create_permission(
                conn, key=p.key, name=p.name or p.key, description=p.description
            )
            summary.permissions += 1

        await step(f"permissions[{i}] ({permission.key})", add_permission)

    for i, role in enumerate(data.roles):

        async def add_role(r: RoleSpec = role) -> None:
            created = await roles.create_role(
                conn,
                key=r.key,
                name=r.name or r.key,
                description=r.description,
                is_default_role=r.is_default_role,
            )
            for permission_id in await roles.permission_ids(
                conn, r.permissions, create_missing=True
            ):
                await roles.grant_to_role(conn, created.id, permission_id)
            summary.roles += 1

        await step(f"roles[{i}] ({role.key})", add_role)

    for i, org in enumerate(data.organizations):

        async def add_org(o: OrganizationSpec = org) -> None:
            created = await organizations.create_organization(
                conn,
                name=o.name,
                code=o.code,
                handle=o.handle,
                external_id=o.external_id,
                is_auto_membership_enabled=o.is_auto_membership_enabled,
            )
            summary.organizations += 1
            summary.org_codes[o.name] = created.code
            if o.billing is not None:
                await _billing(conn, o.billing, summary, org_code=created.code)

        await step(f"organizations[{i}] ({org.code or org.name})", add_org)

    for i, user in enumerate(data.users):

        async def add_user(u: UserSpec = user) -> None:
            password_hash = u.password_hash or (
                hash_password(u.password) if u.password is not None else None
            )
            created = await users.create_user(
                conn,
                email=u.email,
                given_name=u.given_name,
                family_name=u.family_name,
                password_hash=password_hash,
                user_id=u.id,
            )
            summary.users += 1
            for membership in u.memberships:
                await organizations.get_organization(conn, membership.org_code)
                await organizations.add_member(
                    conn,
                    membership.org_code,
                    created.id,
                    roles=membership.roles,
                    permissions=membership.permissions,
                )
                summary.memberships += 1
            if u.billing is not None:
                await _billing(conn, u.billing, summary, user_id=created.id)

        await step(f"users[{i}] ({user.email})", add_user)

    await _flags_and_properties(conn, data, step, summary)

    for i, application in enumerate(data.applications):

        async def add_application(a: ApplicationSpec = application) -> None:
            kind = ApplicationType(a.type)
            if a.client_id == WORKFLOWS_CLIENT_ID:
                raise InvalidBusinessData(
                    f"client_id {a.client_id!r} is reserved for the workflows' own token."
                )
            if a.client_id is not None and await applications.find_application(conn, a.client_id):
                raise InvalidBusinessData(f"an application with client_id {a.client_id!r} exists.")
            if kind is ApplicationType.SPA and a.client_secret is not None:
                raise InvalidBusinessData(
                    "a single-page application is a public client: no secret."
                )
            app, _generated = await applications.create_application(
                conn,
                name=a.name,
                type=kind,
                redirect_uris=a.redirect_uris,
                logout_uris=a.logout_uris,
                scopes=a.granted_scopes(),
                require_organization=a.require_organization,
                client_id=a.client_id,
            )
            if a.client_secret is not None:
                await applications.update_application(
                    conn, app.client_id, client_secret_hash=digest_secret(a.client_secret)
                )
            summary.applications += 1

        await step(f"applications[{i}] ({application.name})", add_application)

    for i, registered in enumerate(data.apis):

        async def add_api(a: ApiSpec = registered) -> None:
            created = await apis.create_api(conn, name=a.name, audience=a.audience, api_id=a.id)
            scope_ids = {}
            for scope in a.scopes:
                made = await apis.create_scope(
                    conn, created.id, key=scope.key, description=scope.description
                )
                scope_ids[scope.key] = made.id
            for authorized in a.applications:
                await applications.get_application(conn, authorized.client_id)
                await apis.authorize(conn, created.id, authorized.client_id)
                for key in authorized.scopes:
                    if key not in scope_ids:
                        raise InvalidBusinessData(f"the API has no scope {key!r}.")
                    await apis.grant_scope(conn, created.id, authorized.client_id, scope_ids[key])
            summary.apis += 1

        await step(f"apis[{i}] ({registered.audience})", add_api)

    return summary


async def _user_id(conn: AsyncConnection, email: str) -> str:
    found = await users.find_user_by_email(conn, email)
    if found is None:
        raise InvalidBusinessData(f"no user with the email {email!r}.")
    return found.id


async def _flags_and_properties(
    conn: AsyncConnection,
    data: BusinessData,
    step: Callable[[str, Callable[[], Any]], Awaitable[None]],
    summary: ImportSummary,
) -> None:
    """Feature flags and properties, after the organizations and users whose values they set."""
    for i, flag in enumerate(data.feature_flags):

        async def add_flag(f: FeatureFlagSpec = flag) -> None:
            await feature_flags.create_flag(
                conn,
                key=f.key,
                name=f.name,
                description=f.description,
                flag_type=FlagType(f.type),
                allow_override_level=OverrideLevel(f.allow_override_level),
                default_value=f.default_value,
            )
            for org_code, value in f.organizations.items():
                await organizations.get_organization(conn, org_code)
                await feature_flags.set_organization_override(conn, org_code, f.key, value)
            for email, value in f.users.items():
                await feature_flags.set_user_override(
                    conn, await _user_id(conn, email), f.key, value
                )
            summary.feature_flags += 1

        await step(f"feature_flags[{i}] ({flag.key})", add_flag)

    for i, prop in enumerate(data.properties):

        async def add_property(p: PropertySpec = prop) -> None:
            await properties.create_property(
                conn,
                key=p.key,
                name=p.name,
                description=p.description,
                property_type=PropertyType(p.type),
                context=PropertyContext(p.context),
                is_private=p.is_private,
                category_id=p.category_id,
            )
            for org_code, value in p.organizations.items():
                await organizations.get_organization(conn, org_code)
                await properties.set_values(
                    conn, PropertyContext.ORGANIZATION, org_code, {p.key: value}
                )
            for email, value in p.users.items():
                user_id = await _user_id(conn, email)
                await properties.set_values(conn, PropertyContext.USER, user_id, {p.key: value})
            summary.properties += 1

        await step(f"properties[{i}] ({prop.key})", add_property)


async def import_business_data(
    db: Database, data: BusinessData, progress: Progress | None = None
) -> ImportSummary:
    """Write a whole file in one transaction: all of it, or (on any error) none of it."""
    async with db.transaction() as conn:
        return await write_business_data(conn, data, progress)


def demo_data_path() -> Path:
    """``claimflow/demo.yaml``, package data: the demo's one source of truth, in any install."""
    return Path(__file__).resolve().parent / "demo.yaml"
