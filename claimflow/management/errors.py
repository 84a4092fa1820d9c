"""Translate every error under ``/api/`` into Kinde's ``{"errors": [{"code", "message"}]}``.

The one place the Management API turns exceptions into responses: domain errors keep their
status and code, request validation failures become 400 ``INVALID_REQUEST`` naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from claimflow.errors import ManagementAPIError
from claimflow.middleware import speaks_kinde_envelope


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid request."


async def management_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ManagementAPIError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if exc.errors:
        body = {"errors": [{"code": code, "message": message} for code, message in exc.errors]}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)
    return error_response(exc.status_code, exc.code, exc.message, headers)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, "INVALID_REQUEST", _describe(list(exc.errors())))


_HTTP_CODES = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def api_http_error_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods under Kinde's APIs get the envelope too; elsewhere, FastAPI's."""
    assert isinstance(exc, HTTPException)
    if not speaks_kinde_envelope(request.url.path):
        return await http_exception_handler(request, exc)
    code = _HTTP_CODES.get(exc.status_code, "INVALID_REQUEST")
    message = exc.detail if isinstance(exc.detail, str) else "Invalid request."
    return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ManagementAPIError, management_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, api_http_error_handler)
