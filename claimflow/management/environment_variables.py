"""Kinde's ``/api/v1/environment_variables`` routes: the variables and secrets of workflows.

Paths, bodies and response shapes follow Kinde's spec (``getEnvironmentVariables``,
``createEnvironmentVariable``, ``getEnvironmentVariable``, ``updateEnvironmentVariable``,
``deleteEnvironmentVariable``). A secret's value is never returned after creation (Kinde:
"Secrets are not-readable by you or your team after creation"); workflows read it through their
``env`` binding, and the run log redacts it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StringConstraints

from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import OK, StrictModel, iso
from claimflow.services import Services
from claimflow.workflows import environment
from claimflow.workflows.environment import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, StoredVariable

router = APIRouter(tags=["Environment variables"])

Key = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_KEY_LENGTH)
]
Value = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]
VariableId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$")]


class CreateVariable(BaseModel):
    model_config = StrictModel

    key: Key
    value: Value
    is_secret: bool = False


class UpdateVariable(BaseModel):
    model_config = StrictModel

    key: Key | None = None
    value: Value | None = None
    is_secret: bool | None = None


def variable_json(variable: StoredVariable) -> dict[str, Any]:
    return {
        "id": variable.id,
        "key": variable.key,
        "value": None if variable.is_secret else variable.value,
        "is_secret": variable.is_secret,
        "created_on": iso(variable.created_on),
    }


def _changed(services: Services) -> None:
    if services.workflows.environment is not None:
        services.workflows.environment.invalidate()


@router.get(
    "/environment_variables",
    summary="Get environment variables",
    dependencies=[Depends(require_scope("read:environment_variables"))],
)
async def get_environment_variables(request: Request) -> dict[str, Any]:
    services = services_of(request)
    async with services.db.connect() as conn:
        variables = await environment.list_variables(conn, services.box)
    return {
        **OK,
        "has_more": False,
        "environment_variables": [variable_json(v) for v in variables],
    }


@router.post(
    "/environment_variables",
    summary="Create an environment variable",
    status_code=201,
    dependencies=[Depends(require_scope("create:environment_variables"))],
)
async def create_environment_variable(request: Request, body: CreateVariable) -> JSONResponse:
    services = services_of(request)
    async with services.db.transaction() as conn:
        variable = await environment.create_variable(
            conn, services.box, key=body.key, value=body.value, is_secret=body.is_secret
        )
    _changed(services)
    return JSONResponse(
        {
            "message": "Environment variable created",
            "code": "VARIABLE_CREATED",
            "environment_variable": {"id": variable.id},
        },
        status_code=201,
    )


@router.get(
    "/environment_variables/{variable_id}",
    summary="Get an environment variable",
    dependencies=[Depends(require_scope("read:environment_variables"))],
)
async def get_environment_variable(request: Request, variable_id: VariableId) -> dict[str, Any]:
    services = services_of(request)
    async with services.db.connect() as conn:
        variable = await environment.get_variable(conn, services.box, variable_id)
    return {**OK, "environment_variable": variable_json(variable)}


@router.patch(
    "/environment_variables/{variable_id}",
    summary="Update an environment variable",
    dependencies=[Depends(require_scope("update:environment_variables"))],
)
async def update_environment_variable(
    request: Request, variable_id: VariableId, body: UpdateVariable
) -> dict[str, Any]:
    services = services_of(request)
    async with services.db.transaction() as conn:
        await environment.update_variable(
            conn,
            services.box,
            variable_id,
            key=body.key,
            value=body.value,
            is_secret=body.is_secret,
        )
    _changed(services)
    return {"message": "Environment variable updated", "code": "ENVIRONMENT_VARIABLE_UPDATED"}


@router.delete(
    "/environment_variables/{variable_id}",
    summary="Delete an environment variable",
    dependencies=[Depends(require_scope("delete:environment_variables"))],
)
async def delete_environment_variable(request: Request, variable_id: VariableId) -> dict[str, Any]:
    services = services_of(request)
    async with services.db.transaction() as conn:
        await environment.delete_variable(conn, variable_id)
    _changed(services)
    return {"message": "Environment variable deleted", "code": "ENVIRONMENT_VARIABLE_DELETED"}
