"""Kinde's ``/api/v1/apis`` routes: register APIs, their scopes, and who may get tokens for them.

Paths, scopes and shapes follow Kinde's spec (``getAPIs``, ``addAPIs``, ``getAPI``,
``deleteAPI``, ``getAPIScopes``, ``addAPIScope``, ``getAPIScope``, ``updateAPIScope``,
``deleteAPIScope``, ``updateAPIApplications``, ``addAPIApplicationScope``,
``deleteAPIApplicationScope``). A registered API's ``audience`` is the only audience other than
the client itself that a user or M2M token may carry, and only for an application authorized
for it (RFC 8707 §2, ``claimflow/oidc/resource_indicators.py``).

The Management API is not one of them: its audience ``<issuer>/api`` cannot be registered, so
no route here can authorize an application for it or grant its scopes; an M2M application's
Management API scopes are set when it is created, bounded by the creating token's own
(``management/applications.py``). Kinde's spec answers 200 (not 201) on these creations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from claimflow.domain import Api, ApiScope, Application, ApplicationType
from claimflow.errors import InvalidRequest
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import OK, CodePath, Name, OptionalText, StrictModel, without_none
from claimflow.services import Services
from claimflow.store import apis, applications

router = APIRouter(tags=["APIs"])

_APPLICATION_TYPE_LABELS = {
    ApplicationType.M2M: "Machine to machine (M2M)",
    ApplicationType.REGULAR: "Back-end web",
    ApplicationType.SPA: "Front-end and mobile",
}
"""The labels of ``get_api_response.api.applications[].type`` in Kinde's spec."""


def _token_word(value: str) -> str:
    """Audiences and scope keys travel space-separated (RFC 6749 §3.3), so no whitespace."""
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


Audience = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_token_word)
]
"""Kinde: "A unique identifier for the API - commonly the URL ... (1-64 characters)"."""

ScopeKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_token_word)
]
"""Kinde: "The key reference for the scope (1-64 characters, no white space)"."""

ApiName = Annotated[Name, StringConstraints(max_length=64)]


class CreateApi(BaseModel):
    model_config = StrictModel

    name: ApiName
    audience: Audience


class CreateScope(BaseModel):
    model_config = StrictModel

    key: ScopeKey
    description: OptionalText | None = None


class UpdateScope(BaseModel):
    model_config = StrictModel

    description: OptionalText | None = None


class ApplicationChange(BaseModel):
    model_config = StrictModel

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
    operation: Literal["delete"] | None = None


class ApplicationChanges(BaseModel):
    model_config = StrictModel

    applications: list[ApplicationChange] = Field(max_length=100)


def _scope_json(scope: ApiScope, *, with_description: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": scope.id, "key": scope.key}
    if with_description:
        body["description"] = scope.description
    return without_none(body)


def _api_json(api: Api, *, with_scopes: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": api.id,
        "name": api.name,
        "audience": api.audience,
        "is_management_api": False,
    }
    if with_scopes:
        body["scopes"] = [_scope_json(s, with_description=False) for s in api.scopes]
    return body


def _application_json(app: Application) -> dict[str, Any]:
    return {
        "id": app.client_id,
        "name": app.name,
        "type": _APPLICATION_TYPE_LABELS[app.type],
        "is_active": True,
    }


def _refuse_reserved_audience(services: Services, audience: str) -> None:
    """The Management API's and the issuer's own identifiers are never a registered API's.

    Registering ``<issuer>/api`` would let any application authorized for it obtain user or
    M2M tokens the Management API accepts, outside the scope-bounded M2M grants.
    """
    reserved = {services.management_audience, services.issuer}
    if audience.rstrip("/") in {value.rstrip("/") for value in reserved}:
        raise InvalidRequest(
            "This audience belongs to the identity provider itself.", "AUDIENCE_RESERVED"
        )


@router.get("/apis", summary="Get APIs")
async def get_apis(
    request: Request,
    expand: Annotated[Literal["scopes"] | None, Query()] = None,
    _: object = Depends(require_scope("read:apis")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        registered = await apis.list_apis(conn)
    return {**OK, "apis": [_api_json(api, with_scopes=expand == "scopes") for api in registered]}


@router.post("/apis", summary="Create API")
async def add_api(
    request: Request,
    body: CreateApi,
    _: object = Depends(require_scope("create:apis")),
) -> dict[str, Any]:
    services = services_of(request)
    _refuse_reserved_audience(services, body.audience)
    async with services.db.transaction() as conn:
        api = await apis.create_api(conn, name=body.name, audience=body.audience)
    return {**OK, "api": {"id": api.id}}


@router.get("/apis/{api_id}", summary="Get API")
async def get_api(
    request: Request,
    api_id: CodePath,
    _: object = Depends(require_scope("read:apis")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        api = await apis.get_api(conn, api_id)
        authorized = await apis.authorized_applications(conn, api_id)
    return {
        **OK,
        "api": {
            **_api_json(api, with_scopes=True),
            "applications": [_application_json(app) for app in authorized],
        },
    }


@router.delete("/apis/{api_id}", summary="Delete API")
async def delete_api(
    request: Request,
    api_id: CodePath,
    _: object = Depends(require_scope("delete:apis")),
) -> dict[str, Any]:
    async with services_of(request).db.transaction() as conn:
        await apis.delete_api(conn, api_id)
    return {"message": "API successfully deleted", "code": "API_DELETED"}


@router.get("/apis/{api_id}/scopes", summary="Get API scopes")
async def get_api_scopes(
    request: Request,
    api_id: CodePath,
    _: object = Depends(require_scope("read:api_scopes")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        api = await apis.get_api(conn, api_id)
    return {**OK, "scopes": [_scope_json(s, with_description=True) for s in api.scopes]}


@router.post("/apis/{api_id}/scopes", summary="Create API scope")
async def add_api_scope(
    request: Request,
    api_id: CodePath,
    body: CreateScope,
    _: object = Depends(require_scope("create:api_scopes")),
) -> dict[str, Any]:
    async with services_of(request).db.transaction() as conn:
        scope = await apis.create_scope(conn, api_id, key=body.key, description=body.description)
    return {**OK, "scope": {"id": scope.id}}


@router.get("/apis/{api_id}/scopes/{scope_id}", summary="Get API scope")
async def get_api_scope(
    request: Request,
    api_id: CodePath,
    scope_id: CodePath,
    _: object = Depends(require_scope("read:api_scopes")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        scope = await apis.get_scope(conn, api_id, scope_id)
    return {**OK, "scope": _scope_json(scope, with_description=True)}


@router.patch("/apis/{api_id}/scopes/{scope_id}", summary="Update API scope")
async def update_api_scope(
    request: Request,
    api_id: CodePath,
    scope_id: CodePath,
    body: UpdateScope,
    _: object = Depends(require_scope("update:api_scopes")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await apis.update_scope(conn, api_id, scope_id, description=body.description)
    return OK


@router.delete("/apis/{api_id}/scopes/{scope_id}", summary="Delete API scope")
async def delete_api_scope(
    request: Request,
    api_id: CodePath,
    scope_id: CodePath,
    _: object = Depends(require_scope("delete:apis_scopes")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await apis.delete_scope(conn, api_id, scope_id)
    return OK


@router.patch("/apis/{api_id}/applications", summary="Authorize API applications")
async def update_api_applications(
    request: Request,
    api_id: CodePath,
    body: ApplicationChanges,
    _: object = Depends(require_scope("update:apis")),
) -> dict[str, Any]:
    """Authorize (or, with ``operation: delete``, deauthorize) applications, all or none."""
    connected: list[str] = []
    disconnected: list[str] = []
    async with services_of(request).db.transaction() as conn:
        await apis.get_api(conn, api_id)
        for change in body.applications:
            await applications.get_application(conn, change.id)
            if change.operation == "delete":
                if await apis.deauthorize(conn, api_id, change.id):
                    disconnected.append(change.id)
            elif await apis.authorize(conn, api_id, change.id):
                connected.append(change.id)
    return {
        "message": "API applications updated",
        "code": "API_APPLICATIONS_UPDATED",
        "applications_disconnected": disconnected,
        "applications_connected": connected,
    }


@router.post(
    "/apis/{api_id}/applications/{application_id}/scopes/{scope_id}",
    summary="Add scope to API application",
)
async def add_api_application_scope(
    request: Request,
    api_id: CodePath,
    application_id: CodePath,
    scope_id: CodePath,
    _: object = Depends(require_scope("create:api_application_scopes")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await applications.get_application(conn, application_id)
        await apis.grant_scope(conn, api_id, application_id, scope_id)
    return OK


@router.delete(
    "/apis/{api_id}/applications/{application_id}/scopes/{scope_id}",
    summary="Delete API application scope",
)
async def delete_api_application_scope(
    request: Request,
    api_id: CodePath,
    application_id: CodePath,
    scope_id: CodePath,
    _: object = Depends(require_scope("delete:apis_application_scopes")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await applications.get_application(conn, application_id)
        await apis.revoke_scope(conn, api_id, application_id, scope_id)
    return OK
