"""``/openapi.json`` lists each operation's error statuses, with the body each really has.

The statuses of Kinde's APIs are read from the code that serves each route
(``claimflow/openapi_errors.py``); the property test (``tests/management/test_properties.py``)
checks with schemathesis that no response carries a status the document does not list. These
tests check the document's shape: Kinde's envelope on every error of Kinde's APIs, RFC 6749
§5.2's error on the OAuth endpoints' JSON errors, no ``422`` (validation answers ``400``).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from claimflow.middleware import speaks_kinde_envelope
from claimflow.openapi_errors import PROTOCOL_RESPONSES, raised_statuses
from claimflow.store import applications, roles

ENVELOPE = {"$ref": "#/components/schemas/error_response"}
OAUTH_ERROR = {"$ref": "#/components/schemas/oauth_error"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_of_kindes_apis_has_the_envelope(app: FastAPI) -> None:
    document = app.openapi()
    kinde = [op for op in operations(document) if speaks_kinde_envelope(op[1])]
    assert len(kinde) >= 80
    for method, path, operation in kinde:
        errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {400, 503} <= set(errors), (method, path)
        for status, response in errors.items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            assert schema == ENVELOPE, (method, path, status)


def test_management_operations_list_auth_scope_missing_resources_and_body_limits(
    app: FastAPI,
) -> None:
    for method, path, operation in operations(app.openapi()):
        if not path.startswith("/api/v1/"):
            continue
        statuses = set(operation["responses"])
        assert {"400", "401", "403", "503"} <= statuses, (method, path)
        assert "422" not in statuses, (method, path)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        if "{" in path:
            assert "404" in statuses, (method, path)
        assert ("413" in statuses) == ("requestBody" in operation), (method, path)


def test_statuses_are_read_from_the_code_serving_the_route(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert "409" in paths["/api/v1/roles"]["post"]["responses"]  # a duplicate key
    assert "409" not in paths["/api/v1/roles"]["get"]["responses"]
    assert "404" not in paths["/api/v1/roles"]["get"]["responses"]
    assert "404" in paths["/api/v1/organization"]["get"]["responses"]  # ?code= unknown
    assert "404" in paths["/account_api/v1/entitlement/{key}"]["get"]["responses"]
    assert raised_statuses(applications.get_application) == {404}
    assert raised_statuses(roles.create_role) == {409}


def test_oauth_endpoints_list_their_protocol_errors(app: FastAPI) -> None:
    document = app.openapi()
    for method, path, operation in operations(document):
        assert "422" not in operation["responses"], (method, path)
        if speaks_kinde_envelope(path):
            continue
        assert (method, path) in PROTOCOL_RESPONSES, f"{method} {path} is not documented"
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if int(status) >= 400 and schema is not None:
                assert schema == OAUTH_ERROR, (method, path, status)
    token = document["paths"]["/oauth2/token"]["post"]["responses"]
    assert {"400", "401", "413", "503"} <= set(token)
    assert (
        "WWW-Authenticate"
        in document["paths"]["/oauth2/userinfo"]["get"]["responses"]["401"]["headers"]
    )
    assert "302" in document["paths"]["/oauth2/auth"]["get"]["responses"]


def test_protocol_table_names_only_real_operations(app: FastAPI) -> None:
    documented = {(method, path) for method, path, _ in operations(app.openapi())}
    assert set(PROTOCOL_RESPONSES) <= documented


async def test_served_document_is_the_completed_one(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served == app.openapi()
    assert "HTTPValidationError" not in served["components"]["schemas"]
    assert served["components"]["schemas"]["error_response"]["required"] == ["errors"]
