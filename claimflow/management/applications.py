"""Kinde's application routes: ``/applications`` and their redirect and logout URLs.

A created application's client secret is returned once, in Kinde's
``create_application_response``; only its SHA-256 digest is stored (design §7). M2M
applications also take ``scopes``, our extension field: the Management API scopes their
client-credentials tokens may carry, never more than the creating token holds itself. Browser
applications take ``allowed_origins``, our extension too: origins allowed to call the token
endpoint cross-origin (``claimflow.oidc.cors``).

``PATCH`` takes ``scopes`` too (the same bounds as on creation: held by the caller, and none
for an organization's application), and ``DELETE`` is Kinde's. Both
bind tokens already issued: the Management API authorizes every request against the
application's current scopes (docs/decisions.md, "Scopes shrink").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from claimflow.domain import Application, ApplicationType
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES, WORKFLOWS_CLIENT_ID
from claimflow.domain.origins import origin_of
from claimflow.errors import Forbidden, InvalidRequest
from claimflow.management.auth import M2MCaller, require_held, require_scope, services_of
from claimflow.management.wire import (
    DEFAULT_PAGE_SIZE,
    OK,
    Code,
    CodePath,
    Cursor,
    Name,
    PageSize,
    StrictModel,
    next_token_page,
)
from claimflow.store import applications, organizations

router = APIRouter(tags=["Applications"])


def _absolute_url(value: str) -> str:
    """Redirect and logout URLs are compared exactly (RFC 6749 §3.1.2), so they must be whole."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError("must be an absolute http(s) URL without a fragment")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


Url = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_absolute_url)]


def _origin(value: str) -> str:
    """CORS compares origins exactly, so only the exact form a browser sends is stored."""
    if origin_of(value) != value:
        raise ValueError("must be an origin as a browser sends it: scheme://host[:port]")
    return value


Origin = Annotated[str, StringConstraints(max_length=300), AfterValidator(_origin)]


class CreateApplication(BaseModel):
    model_config = StrictModel

    name: Name
    type: Literal["reg", "spa", "m2m", "device"]
    org_code: Code | None = None
    scopes: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="claimflow extension: the Management API scopes of an M2M application.",
    )
    allowed_origins: list[Origin] = Field(
        default_factory=list,
        max_length=100,
        description="claimflow extension: browser origins allowed to call the token, "
        "userinfo, revocation, JWKS and discovery endpoints (CORS).",
    )


class UpdateApplication(BaseModel):
    """Kinde's ``updateApplication`` body (the fields we hold) and our ``allowed_origins``."""

    model_config = StrictModel

    name: Name | None = None
    redirect_uris: list[Url] | None = Field(default=None, max_length=100)
    logout_uris: list[Url] | None = Field(default=None, max_length=100)
    allowed_origins: list[Origin] | None = Field(
        default=None,
        max_length=100,
        description="claimflow extension: replaces the application's CORS origins.",
    )
    scopes: list[str] | None = Field(
        default=None,
        max_length=100,
        description="claimflow extension: replaces an M2M application's Management API scopes; "
        "tokens already issued lose the scopes removed at their next request.",
    )


class Urls(BaseModel):
    model_config = StrictModel

    urls: list[Url] = Field(max_length=100)


@router.get("/applications", summary="List applications")
async def list_applications(
    request: Request,
    page_size: PageSize = None,
    next_token: Cursor = None,
    sort: Annotated[str | None, Query(max_length=32)] = None,
    _: object = Depends(require_scope("read:applications")),
) -> dict[str, Any]:
    size = page_size or DEFAULT_PAGE_SIZE
    async with services_of(request).db.connect() as conn:
        rows = await applications.list_applications(conn, limit=size + 1, after_id=next_token)
    page, more = next_token_page(rows, size, lambda app: app.client_id)
    return {**OK, "applications": [_listed(app) for app in page], **more}


def _listed(app: Application) -> dict[str, Any]:
    """Kinde's ``applications`` item; ``org_code`` only for an organization's M2M application."""
    item = {"id": app.client_id, "name": app.name, "type": app.type.value}
    if app.org_code is not None:
        item["org_code"] = app.org_code
    return item


@router.get("/applications/{application_id}", summary="Get application")
async def get_application(
    request: Request,
    application_id: CodePath,
    _: object = Depends(require_scope("read:applications")),
) -> dict[str, Any]:
    """Kinde's ``get_application_response`` (never the secret: only its digest is stored)."""
    async with services_of(request).db.connect() as conn:
        app = await applications.get_application(conn, application_id)
    return {**OK, "application": {**_listed(app), "client_id": app.client_id}}


@router.post("/applications", status_code=201, summary="Create an application")
async def create_application(
    request: Request,
    body: CreateApplication,
    caller: Annotated[M2MCaller, Depends(require_scope("create:applications"))],
) -> dict[str, Any]:
    if body.type == "device":
        raise InvalidRequest("Device applications are not supported.", "APPLICATION_TYPE_INVALID")
    kind = ApplicationType(body.type)
    if body.scopes and kind is not ApplicationType.M2M:
        raise InvalidRequest("Only m2m applications take scopes.", "SCOPES_INVALID")
    if body.allowed_origins and kind is ApplicationType.M2M:
        raise InvalidRequest("M2M applications take no allowed_origins.", "ALLOWED_ORIGINS_INVALID")
    unknown = sorted(set(body.scopes) - set(ALL_MANAGEMENT_SCOPES))
    if unknown:
        raise InvalidRequest(f"Unknown scopes: {', '.join(unknown)[:200]}.", "SCOPES_INVALID")
    require_held(caller, body.scopes)
    if body.org_code is not None and kind is not ApplicationType.M2M:
        raise InvalidRequest("Only m2m applications belong to an organization.", "ORG_CODE_INVALID")
    if body.org_code is not None and body.scopes:
        raise InvalidRequest(
            "An organization's m2m application takes no Management API scopes.", "SCOPES_INVALID"
        )
    async with services_of(request).db.transaction() as conn:
        if body.org_code is not None:
            await organizations.lock_organization(conn, body.org_code, exclusive=False)
        app, secret = await applications.create_application(
            conn,
            name=body.name,
            type=kind,
            scopes=body.scopes,
            allowed_origins=list(dict.fromkeys(body.allowed_origins)),
            org_code=body.org_code,
        )
    created = {"id": app.client_id, "client_id": app.client_id}
    if app.org_code is not None:
        created["org_code"] = app.org_code
    if secret is not None:
        created["client_secret"] = secret
    return {"code": "OK", "message": "Application successfully created", "application": created}


@router.patch("/applications/{application_id}", summary="Update Application")
async def update_application(
    request: Request,
    application_id: CodePath,
    body: UpdateApplication,
    caller: Annotated[M2MCaller, Depends(require_scope("update:applications"))],
) -> dict[str, str]:
    refuse_reserved(application_id)
    changes: dict[str, Any] = {
        name: list(dict.fromkeys(value)) if isinstance(value, list) else value
        for name, value in body.model_dump(exclude_none=True).items()
    }
    if body.scopes is not None:
        changes["scopes"] = grantable_scopes(caller, body.scopes)
    async with services_of(request).db.transaction() as conn:
        app = await applications.get_application(conn, application_id)
        if changes.get("allowed_origins") and app.type is ApplicationType.M2M:
            raise InvalidRequest(
                "M2M applications take no allowed_origins.", "ALLOWED_ORIGINS_INVALID"
            )
        if changes.get("scopes") and app.type is not ApplicationType.M2M:
            raise InvalidRequest("Only m2m applications take scopes.", "SCOPES_INVALID")
        if changes.get("scopes") and app.org_code is not None:
            raise InvalidRequest(
                "An organization's m2m application takes no Management API scopes.",
                "SCOPES_INVALID",
            )
        await applications.update_application(conn, application_id, **changes)
    return OK


async def _add_urls(request: Request, app_id: str, urls: list[str], column: str) -> None:
    async with services_of(request).db.transaction() as conn:
        app = await applications.get_application(conn, app_id)
        current = list(app.redirect_uris if column == "redirect_uris" else app.logout_uris)
        merged = current + [url for url in dict.fromkeys(urls) if url not in current]
        if len(merged) > 100:
            raise InvalidRequest("An application has at most 100 URLs of a kind.", "URLS_INVALID")
        await applications.update_application(conn, app_id, **{column: merged})


@router.get("/applications/{app_id}/auth_redirect_urls", summary="List redirect URLs")
async def get_redirect_urls(
    request: Request,
    app_id: CodePath,
    _: object = Depends(require_scope("read:applications_redirect_uris")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        app = await applications.get_application(conn, app_id)
    return {"redirect_urls": list(app.redirect_uris)}


@router.post("/applications/{app_id}/auth_redirect_urls", summary="Add redirect URLs")
async def add_redirect_urls(
    request: Request,
    app_id: CodePath,
    body: Urls,
    _: object = Depends(require_scope("create:applications_redirect_uris")),
) -> dict[str, str]:
    await _add_urls(request, app_id, body.urls, "redirect_uris")
    return OK


@router.get("/applications/{app_id}/auth_logout_urls", summary="List logout URLs")
async def get_logout_urls(
    request: Request,
    app_id: CodePath,
    _: object = Depends(require_scope("read:application_logout_uris")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        app = await applications.get_application(conn, app_id)
    return {"logout_urls": list(app.logout_uris), **OK}


@router.post("/applications/{app_id}/auth_logout_urls", summary="Add logout URLs")
async def add_logout_urls(
    request: Request,
    app_id: CodePath,
    body: Urls,
    _: object = Depends(require_scope("create:application_logout_uris")),
) -> dict[str, str]:
    await _add_urls(request, app_id, body.urls, "logout_uris")
    return OK


# Changing who holds what: narrowing an application's scopes and deleting it. Both bind the
# tokens already issued, because the Management API authorizes each request against the
# application's current grants (``claimflow.management.auth``).


def refuse_reserved(application_id: str) -> None:
    """The workflows' in-process client is the server's own: no API call may change it."""
    if application_id == WORKFLOWS_CLIENT_ID:
        raise Forbidden(
            "This client id is reserved for the workflows' own token.", "APPLICATION_RESERVED"
        )


def grantable_scopes(caller: M2MCaller, scopes: list[str]) -> list[str]:
    """Known Management API scopes, all held by the caller (granting is bounded by holding)."""
    unknown = sorted(set(scopes) - set(ALL_MANAGEMENT_SCOPES))
    if unknown:
        raise InvalidRequest(f"Unknown scopes: {', '.join(unknown)[:200]}.", "SCOPES_INVALID")
    require_held(caller, scopes)
    return sorted(set(scopes))


@router.delete("/applications/{application_id}", summary="Delete application")
async def delete_application(
    request: Request,
    application_id: CodePath,
    _: object = Depends(require_scope("delete:applications")),
) -> dict[str, str]:
    """Kinde's ``deleteApplication``; the application's tokens are refused from now on."""
    refuse_reserved(application_id)
    async with services_of(request).db.transaction() as conn:
        await applications.delete_application(conn, application_id)
    return {"code": "OK", "message": "Application successfully deleted"}
