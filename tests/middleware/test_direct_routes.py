"""The token endpoint served past FastAPI's router answers as the routed endpoint did."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from claimflow.middleware import DirectRoutes


async def test_token_errors_keep_their_oauth_shape_and_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", data={"client_id": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Missing parameter 'grant_type'.",
    }
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]
    assert "Origin" in response.headers["vary"]


async def test_other_methods_still_reach_the_routed_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth2/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_the_token_endpoint_stays_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    document = await client.get("/openapi.json")
    assert "post" in document.json()["paths"]["/oauth2/token"]


class _Refused(Exception):
    pass


class _Unhandled(Exception):
    pass


async def _raising(request: Request) -> Response:
    kind = request.query_params["raise"]
    if kind == "refused":
        raise _Refused
    if kind == "http":
        raise HTTPException(418)
    raise _Unhandled


async def _refused(_request: Request, _exc: Exception) -> Response:
    return PlainTextResponse("refused", status_code=409)


async def _teapot(_request: Request, _exc: Exception) -> Response:
    return PlainTextResponse("teapot", status_code=418)


def _app() -> Starlette:
    app = Starlette(exception_handlers={_Refused: _refused, 418: _teapot})
    app.add_middleware(DirectRoutes, routes={("POST", "/direct"): _raising})
    return app


@pytest.mark.parametrize(
    ("kind", "status", "text"), [("refused", 409, "refused"), ("http", 418, "teapot")]
)
async def test_errors_go_to_the_apps_exception_handlers(kind: str, status: int, text: str) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(f"/direct?raise={kind}")
    assert (response.status_code, response.text) == (status, text)


async def test_an_unhandled_error_reaches_the_server_error_layer() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/direct?raise=other")
    assert response.status_code == 500
