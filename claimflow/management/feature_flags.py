"""Kinde's feature flags: ``/feature_flags`` and the organization and user overrides.

Paths, scopes and bodies are Kinde's Management API's (``kinde-management-api.yml``, tags Feature
Flags, Organizations and Users): a flag is created from a JSON body but replaced from query
parameters (``UpdateFeatureFlag``), and override values come as ``?value=`` strings, parsed by
the flag's type. A user's flags reach their next access token as Kinde's ``feature_flags`` claim
(``oidc/grants/feature_flags_claim.py``) and Kinde's Account API (``account/flags.py``).
Environment-level overrides (``/environment/feature_flags``) are not implemented: claimflow has
one environment, whose values are the flags' defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from claimflow.domain import FlagType, OverrideLevel
from claimflow.domain.feature_flags import MAX_STRING_VALUE, value_text
from claimflow.errors import InvalidRequest
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import OK, Code, CodePath, Name, OptionalText, StrictModel
from claimflow.store import feature_flags, organizations, users

router = APIRouter()

FlagValueText = Annotated[str, Query(max_length=MAX_STRING_VALUE)]
"""An override or default value in Kinde's string form (``true``, ``42``, ``blue``)."""


class NewFeatureFlag(BaseModel):
    """Kinde's ``CreateFeatureFlag`` body."""

    model_config = StrictModel

    name: Name
    description: OptionalText | None = None
    key: Code
    type: Literal["str", "int", "bool"]
    allow_override_level: Literal["env", "org", "usr"] = "env"
    default_value: str


@router.post(
    "/feature_flags", status_code=201, summary="Create Feature Flag", tags=["Feature Flags"]
)
async def create_feature_flag(
    request: Request,
    body: NewFeatureFlag,
    _: object = Depends(require_scope("create:feature_flags")),
) -> dict[str, str]:
    """400 when ``default_value`` is not a value of ``type``; 409 when the key exists."""
    async with services_of(request).db.transaction() as conn:
        await feature_flags.create_flag(
            conn,
            key=body.key,
            name=body.name,
            description=body.description,
            flag_type=FlagType(body.type),
            allow_override_level=OverrideLevel(body.allow_override_level),
            default_value=body.default_value,
        )
    return {"code": "FEATURE_FLAG_CREATED", "message": "Feature flag successfully created"}


@router.put(
    "/feature_flags/{feature_flag_key}", summary="Replace Feature Flag", tags=["Feature Flags"]
)
async def update_feature_flag(
    request: Request,
    feature_flag_key: CodePath,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    type: FlagType,
    allow_override_level: OverrideLevel,
    default_value: FlagValueText,
    description: Annotated[str | None, Query(max_length=255)] = None,
    _: object = Depends(require_scope("update:feature_flags")),
) -> dict[str, str]:
    """Every field but the key is replaced; overrides the new type or level rules out go."""
    if not name.strip() or not name.isprintable() or not (description or "").isprintable():
        raise InvalidRequest("name and description must be printable text.", "FLAG_INVALID")
    async with services_of(request).db.transaction() as conn:
        await feature_flags.replace_flag(
            conn,
            feature_flag_key,
            name=name.strip(),
            description=description,
            flag_type=type,
            allow_override_level=allow_override_level,
            default_value=default_value,
        )
    return {"code": "FEATURE_FLAG_UPDATED", "message": "Feature flag successfully updated"}


@router.delete(
    "/feature_flags/{feature_flag_key}", summary="Delete Feature Flag", tags=["Feature Flags"]
)
async def delete_feature_flag(
    request: Request,
    feature_flag_key: CodePath,
    _: object = Depends(require_scope("delete:feature_flags")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await feature_flags.delete_flag(conn, feature_flag_key)
    return {"code": "FEATURE_FLAG_DELETED", "message": "Feature flag successfully deleted"}


@router.get(
    "/organizations/{org_code}/feature_flags",
    summary="List Organization Feature Flags",
    tags=["Organizations"],
)
async def get_organization_feature_flags(
    request: Request,
    org_code: CodePath,
    _: object = Depends(require_scope("read:organization_feature_flags")),
) -> dict[str, Any]:
    """Every flag with the value the organization's members get (unless a user override wins):
    the organization's override where one is set and allowed, else the default."""
    async with services_of(request).db.connect() as conn:
        await organizations.get_organization(conn, org_code)
        resolved = await feature_flags.resolved_flags(conn, user_id=None, org_code=org_code)
    flags = {
        r.flag.key: {"type": r.flag.type.value, "value": value_text(r.value)} for r in resolved
    }
    return {**OK, "feature_flags": flags}


@router.delete(
    "/organizations/{org_code}/feature_flags",
    summary="Delete Organization Feature Flag Overrides",
    tags=["Organizations"],
)
async def delete_organization_feature_flag_overrides(
    request: Request,
    org_code: CodePath,
    _: object = Depends(require_scope("delete:organization_feature_flags")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await organizations.get_organization(conn, org_code)
        await feature_flags.delete_organization_overrides(conn, org_code)
    return OK


@router.patch(
    "/organizations/{org_code}/feature_flags/{feature_flag_key}",
    summary="Update Organization Feature Flag Override",
    tags=["Organizations"],
)
async def update_organization_feature_flag_override(
    request: Request,
    org_code: CodePath,
    feature_flag_key: CodePath,
    value: FlagValueText,
    _: object = Depends(require_scope("update:organization_feature_flags")),
) -> dict[str, str]:
    """400 when the flag's ``allow_override_level`` is ``env`` or the value is not its type."""
    async with services_of(request).db.transaction() as conn:
        await organizations.get_organization(conn, org_code)
        await feature_flags.set_organization_override(conn, org_code, feature_flag_key, value)
    return OK


@router.delete(
    "/organizations/{org_code}/feature_flags/{feature_flag_key}",
    summary="Delete Organization Feature Flag Override",
    tags=["Organizations"],
)
async def delete_organization_feature_flag_override(
    request: Request,
    org_code: CodePath,
    feature_flag_key: CodePath,
    _: object = Depends(require_scope("delete:organization_feature_flags")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await organizations.get_organization(conn, org_code)
        await feature_flags.delete_organization_override(conn, org_code, feature_flag_key)
    return OK


@router.patch(
    "/users/{user_id}/feature_flags/{feature_flag_key}",
    summary="Update User Feature Flag Override",
    tags=["Users"],
)
async def update_user_feature_flag_override(
    request: Request,
    user_id: CodePath,
    feature_flag_key: CodePath,
    value: FlagValueText,
    _: object = Depends(require_scope("update:user_feature_flags")),
) -> dict[str, str]:
    """400 unless the flag's ``allow_override_level`` is ``usr``; the user's value wins over
    their organization's in every organization they sign in to."""
    async with services_of(request).db.transaction() as conn:
        await users.get_user(conn, user_id)
        await feature_flags.set_user_override(conn, user_id, feature_flag_key, value)
    return OK
