"""Responses of every Kinde path we implement validate against Kinde's own OpenAPI document.

The spec file (``shared/reference/kinde-management-api.yml``) is OpenAPI 3.0: its schemas are
turned into JSON Schema (``nullable`` becomes a ``null`` type, ``$ref`` is inlined) and every
response body of a scenario touching each implemented operation is validated against the schema
the spec declares for that operation and status.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import bcrypt
import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from fastapi import FastAPI

from tests.helpers import shared_file
from tests.management.catalogue import make_plan
from tests.management.test_auth import ROUTES

SPEC_FILE = shared_file("reference/kinde-management-api.yml")


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return loaded


def _resolve(ref: str) -> Any:
    node: Any = spec()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def to_json_schema(node: Any, seen: frozenset[str] = frozenset()) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: inline ``$ref``, ``nullable`` → ``null`` allowed."""
    if isinstance(node, list):
        return [to_json_schema(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        assert ref not in seen, f"recursive schema {ref}"
        return to_json_schema(_resolve(ref), seen | {ref})
    out = {
        key: to_json_schema(value, seen)
        for key, value in node.items()
        if key not in ("nullable", "example", "deprecated", "x-scope")
    }
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    declared = responses.get(str(status))
    if declared is None:
        assert status >= 400, f"{method} {path} does not declare {status}"
        declared = responses.get("400") or {"$ref": "#/components/responses/bad_request"}
    if "$ref" in declared:
        declared = _resolve(declared["$ref"])
    content = declared.get("content") or {}
    if not content:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/error_response"}}}
    schema: dict[str, Any] = to_json_schema(content["application/json"]["schema"])
    return schema


def spec_scope(method: str, path: str) -> str:
    operation = spec()["paths"][path][method.lower()]
    if "x-scope" in operation:
        return str(operation["x-scope"])
    found = re.search(r"<code>([a-z_]+:[a-z_]+)</code>", operation.get("description", ""))
    assert found, f"no scope named for {method} {path}"
    return found.group(1)


KINDE_PATHS = {
    "/api/v1/organization",
    "/api/v1/organizations",
    "/api/v1/organization/{org_code}",
    "/api/v1/user",
    "/api/v1/users",
    "/api/v1/users/{user_id}/password",
    "/api/v1/organizations/{org_code}/users",
    "/api/v1/organizations/{org_code}/users/{user_id}",
    "/api/v1/applications",
    "/api/v1/applications/{app_id}/auth_redirect_urls",
    "/api/v1/applications/{app_id}/auth_logout_urls",
    "/api/v1/billing/entitlements",
    "/api/v1/billing/agreements",
    "/api/v1/billing/meter_usage",
    "/api/v1/apis",
    "/api/v1/apis/{api_id}",
    "/api/v1/apis/{api_id}/scopes",
    "/api/v1/apis/{api_id}/scopes/{scope_id}",
    "/api/v1/apis/{api_id}/applications",
    "/api/v1/apis/{api_id}/applications/{application_id}/scopes/{scope_id}",
}


class Recorder:
    """Calls the API and validates each response against the spec operation it belongs to."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.checked: set[tuple[str, str, int]] = set()

    async def call(self, method: str, spec_path: str, url: str, **kwargs: Any) -> Any:
        response = await self.api.request(method, url, **kwargs)
        assert response.headers["content-type"] == "application/json", url
        body = response.json()
        schema = response_schema(method, spec_path, response.status_code)
        jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
        self.checked.add((method, spec_path, response.status_code))
        return body


async def _registered_api_operations(r: Recorder, app_id: str) -> None:
    """Kinde's APIs: register one, give it scopes, authorize an application, then undo it all."""
    created = await r.call(
        "POST",
        "/api/v1/apis",
        "/api/v1/apis",
        json={"name": "Orders", "audience": "https://orders.example.com"},
    )
    api_id = created["api"]["id"]
    base = f"/api/v1/apis/{api_id}"
    scope = await r.call(
        "POST",
        "/api/v1/apis/{api_id}/scopes",
        f"{base}/scopes",
        json={"key": "read:orders", "description": "Read orders"},
    )
    scope_id = scope["scope"]["id"]
    scope_path = "/api/v1/apis/{api_id}/scopes/{scope_id}"
    await r.call("GET", "/api/v1/apis/{api_id}/scopes", f"{base}/scopes")
    await r.call("GET", scope_path, f"{base}/scopes/{scope_id}")
    await r.call("PATCH", scope_path, f"{base}/scopes/{scope_id}", json={"description": "Read"})
    await r.call(
        "PATCH",
        "/api/v1/apis/{api_id}/applications",
        f"{base}/applications",
        json={"applications": [{"id": app_id}]},
    )
    grant_path = "/api/v1/apis/{api_id}/applications/{application_id}/scopes/{scope_id}"
    grant = f"{base}/applications/{app_id}/scopes/{scope_id}"
    await r.call("POST", grant_path, grant)
    await r.call("GET", "/api/v1/apis", "/api/v1/apis", params={"expand": "scopes"})
    await r.call("GET", "/api/v1/apis/{api_id}", base)
    await r.call("DELETE", grant_path, grant)
    await r.call("DELETE", scope_path, f"{base}/scopes/{scope_id}")
    await r.call("GET", "/api/v1/apis/{api_id}", "/api/v1/apis/unknown")
    await r.call("DELETE", "/api/v1/apis/{api_id}", base)


async def test_every_implemented_kinde_operation_matches_the_spec(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    r = Recorder(api)
    await make_plan(api, "pro", {"seats": 10, "sso": None})
    created = await r.call(
        "POST",
        "/api/v1/organization",
        "/api/v1/organization",
        json={"name": "Acme", "is_create_billing_customer": True, "billing_plan_code": "pro"},
    )
    org = created["organization"]["code"]
    customer = created["organization"]["billing_customer_id"]
    for params in ({"code": org}, {"code": org, "expand": "billing"}, {"code": "org_none"}):
        await r.call("GET", "/api/v1/organization", "/api/v1/organization", params=params)
    await r.call("GET", "/api/v1/organizations", "/api/v1/organizations", params={"page_size": 1})
    await r.call(
        "PATCH",
        "/api/v1/organization/{org_code}",
        f"/api/v1/organization/{org}",
        json={"name": "B"},
    )

    user = await r.call(
        "POST",
        "/api/v1/user",
        "/api/v1/user",
        json={
            "profile": {"given_name": "Ada"},
            "organization_code": org,
            "identities": [{"type": "email", "details": {"email": "ada@example.com"}}],
        },
    )
    uid = user["id"]
    await r.call(
        "GET",
        "/api/v1/user",
        "/api/v1/user",
        params={"id": uid, "expand": "organizations,identities,billing"},
    )
    await r.call(
        "PATCH", "/api/v1/user", "/api/v1/user", params={"id": uid}, json={"family_name": "L"}
    )
    await r.call(
        "GET",
        "/api/v1/users",
        "/api/v1/users",
        params={"expand": "organizations,identities,billing"},
    )
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    await r.call(
        "PUT",
        "/api/v1/users/{user_id}/password",
        f"/api/v1/users/{uid}/password",
        json={"hashed_password": hashed},
    )
    await r.call(
        "PUT",
        "/api/v1/users/{user_id}/password",
        f"/api/v1/users/{uid}/password",
        json={"hashed_password": "x"},
    )

    members = f"/api/v1/organizations/{org}/users"
    await api.post("/api/v1/roles", json={"name": "Admin", "key": "admin"})
    await r.call(
        "POST",
        "/api/v1/organizations/{org_code}/users",
        members,
        json={"users": [{"id": uid, "roles": ["admin"]}]},
    )
    await r.call("GET", "/api/v1/organizations/{org_code}/users", members)
    await r.call("DELETE", "/api/v1/organizations/{org_code}/users/{user_id}", f"{members}/{uid}")

    application = await r.call(
        "POST", "/api/v1/applications", "/api/v1/applications", json={"name": "Web", "type": "reg"}
    )
    app_id = application["application"]["id"]
    await r.call("GET", "/api/v1/applications", "/api/v1/applications")
    for kind in ("auth_redirect_urls", "auth_logout_urls"):
        path = f"/api/v1/applications/{{app_id}}/{kind}"
        await r.call(
            "POST",
            path,
            f"/api/v1/applications/{app_id}/{kind}",
            json={"urls": ["https://a.test/cb"]},
        )
        await r.call("GET", path, f"/api/v1/applications/{app_id}/{kind}")

    await r.call(
        "POST",
        "/api/v1/billing/agreements",
        "/api/v1/billing/agreements",
        json={"customer_id": customer, "plan_code": "pro"},
    )
    entitlements = await r.call(
        "GET",
        "/api/v1/billing/entitlements",
        "/api/v1/billing/entitlements",
        params={"customer_id": customer, "expand": "plans", "page_size": 1},
    )
    await r.call(
        "GET",
        "/api/v1/billing/entitlements",
        "/api/v1/billing/entitlements",
        params={"customer_id": customer, "max_value": "100"},
    )
    await r.call(
        "GET",
        "/api/v1/billing/entitlements",
        "/api/v1/billing/entitlements",
        params={"customer_id": customer, "starting_after": entitlements["entitlements"][0]["id"]},
    )
    agreements = await r.call(
        "GET",
        "/api/v1/billing/agreements",
        "/api/v1/billing/agreements",
        params={"customer_id": customer},
    )
    await r.call(
        "POST",
        "/api/v1/billing/meter_usage",
        "/api/v1/billing/meter_usage",
        json={
            "customer_agreement_id": agreements["agreements"][0]["id"],
            "billing_feature_code": "seats",
            "meter_value": "3",
        },
    )
    await _registered_api_operations(r, app_id)
    await r.call("DELETE", "/api/v1/user", "/api/v1/user", params={"id": uid})
    await r.call("DELETE", "/api/v1/organization/{org_code}", f"/api/v1/organization/{org}")

    operations = {(m, p) for m, p, status in r.checked if status < 300}
    implemented = {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        if path in KINDE_PATHS
        for method in methods
    }
    assert operations == implemented
    assert len(implemented) == 36


ACCESS_PATHS = {
    "/api/v1/roles",
    "/api/v1/roles/{role_id}",
    "/api/v1/roles/{role_id}/permissions",
    "/api/v1/roles/{role_id}/permissions/{permission_id}",
    "/api/v1/permissions",
    "/api/v1/permissions/{permission_id}",
    "/api/v1/organizations/{org_code}/users/{user_id}/roles",
    "/api/v1/organizations/{org_code}/users/{user_id}/roles/{role_id}",
    "/api/v1/organizations/{org_code}/users/{user_id}/permissions",
    "/api/v1/organizations/{org_code}/users/{user_id}/permissions/{permission_id}",
}
"""Kinde's roles and permissions, and what an organization member holds."""


def implemented_operations(app: FastAPI, paths: set[str]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        if path in paths
        for method in methods
    }


async def test_every_roles_and_permissions_operation_matches_the_spec(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    r = Recorder(api)
    await r.call(
        "POST", "/api/v1/permissions", "/api/v1/permissions", json={"key": "a:b", "name": "AB"}
    )
    await r.call("POST", "/api/v1/permissions", "/api/v1/permissions", json={"key": "a:b"})
    listed = await r.call("GET", "/api/v1/permissions", "/api/v1/permissions")
    perm = listed["permissions"][0]["id"]
    await r.call(
        "PATCH",
        "/api/v1/permissions/{permission_id}",
        f"/api/v1/permissions/{perm}",
        json={"description": "d"},
    )
    role = (
        await r.call(
            "POST", "/api/v1/roles", "/api/v1/roles", json={"key": "admin", "name": "Admin"}
        )
    )["role"]["id"]
    await r.call("GET", "/api/v1/roles", "/api/v1/roles", params={"sort": "name_desc"})
    await r.call("GET", "/api/v1/roles/{role_id}", f"/api/v1/roles/{role}")
    await r.call(
        "PATCH",
        "/api/v1/roles/{role_id}",
        f"/api/v1/roles/{role}",
        json={"key": "admin", "name": "Administrator"},
    )
    role_perms = f"/api/v1/roles/{role}/permissions"
    await r.call(
        "PATCH",
        "/api/v1/roles/{role_id}/permissions",
        role_perms,
        json={"permissions": [{"id": perm}]},
    )
    await r.call("GET", "/api/v1/roles/{role_id}/permissions", role_perms)

    org = (await r.api.post("/api/v1/organization", json={"name": "Acme"})).json()
    org_code = org["organization"]["code"]
    user = await r.api.post(
        "/api/v1/user",
        json={"profile": {"given_name": "Ada"}, "organization_code": org_code},
    )
    member = f"/api/v1/organizations/{org_code}/users/{user.json()['id']}"
    template = "/api/v1/organizations/{org_code}/users/{user_id}"
    await r.call("POST", template + "/roles", member + "/roles", json={"role_id": role})
    await r.call("GET", template + "/roles", member + "/roles")
    await r.call(
        "POST", template + "/permissions", member + "/permissions", json={"permission_id": perm}
    )
    held = await r.call(
        "GET", template + "/permissions", member + "/permissions", params={"expand": "roles"}
    )
    assert held["permissions"][0]["roles"][0]["key"] == "admin"
    await r.call(
        "DELETE", template + "/permissions/{permission_id}", f"{member}/permissions/{perm}"
    )
    await r.call("DELETE", template + "/roles/{role_id}", f"{member}/roles/{role}")
    await r.call(
        "DELETE",
        "/api/v1/roles/{role_id}/permissions/{permission_id}",
        f"{role_perms}/{perm}",
    )
    await r.call("DELETE", "/api/v1/roles/{role_id}", f"/api/v1/roles/{role}")
    await r.call("DELETE", "/api/v1/permissions/{permission_id}", f"/api/v1/permissions/{perm}")

    operations = {(m, p) for m, p, status in r.checked if status < 300}
    assert operations == implemented_operations(app, ACCESS_PATHS)
    assert len(operations) == 18


WEBHOOK_PATHS = {
    "/api/v1/webhooks",
    "/api/v1/webhooks/{webhook_id}",
    "/api/v1/event_types",
    "/api/v1/events/{event_id}",
}


async def test_every_webhook_operation_matches_the_spec(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    r = Recorder(api)
    created = await r.call(
        "POST",
        "/api/v1/webhooks",
        "/api/v1/webhooks",
        json={"endpoint": "https://a.test/hook", "name": "A", "event_types": ["user.created"]},
    )
    await r.call(
        "POST",
        "/api/v1/webhooks",
        "/api/v1/webhooks",
        json={"endpoint": "https://a.test/hook", "name": "A", "event_types": ["user.nope"]},
    )
    webhook = f"/api/v1/webhooks/{created['webhook']['id']}"
    await r.call("GET", "/api/v1/webhooks", "/api/v1/webhooks")
    await r.call(
        "PATCH",
        "/api/v1/webhooks/{webhook_id}",
        webhook,
        json={"event_types": ["user.created", "organization.created"], "description": "d"},
    )
    types = await r.call("GET", "/api/v1/event_types", "/api/v1/event_types")
    assert {"organization.created", "customer.agreement_cancelled"} <= {
        t["code"] for t in types["event_types"]
    }
    user = await api.post("/api/v1/user", json={"profile": {"given_name": "Ada"}})
    assert user.status_code == 200
    async with app.state.services.db.connect() as conn:
        event_id = (
            await conn.exec_driver_sql("SELECT id FROM events WHERE type = 'user.created'")
        ).scalar_one()
    event = await r.call("GET", "/api/v1/events/{event_id}", f"/api/v1/events/{event_id}")
    assert event["event"]["data"]["user"]["id"] == user.json()["id"]
    await r.call("GET", "/api/v1/events/{event_id}", "/api/v1/events/event_none")
    await r.call("DELETE", "/api/v1/webhooks/{webhook_id}", webhook)

    operations = {(m, p) for m, p, status in r.checked if status < 300}
    assert operations == implemented_operations(app, WEBHOOK_PATHS)
    assert len(operations) == 6


FLAG_AND_PROPERTY_PATHS = {
    "/api/v1/feature_flags",
    "/api/v1/feature_flags/{feature_flag_key}",
    "/api/v1/organizations/{org_code}/feature_flags",
    "/api/v1/organizations/{org_code}/feature_flags/{feature_flag_key}",
    "/api/v1/users/{user_id}/feature_flags/{feature_flag_key}",
    "/api/v1/properties",
    "/api/v1/properties/{property_id}",
    "/api/v1/users/{user_id}/properties",
    "/api/v1/users/{user_id}/properties/{property_key}",
    "/api/v1/organizations/{org_code}/properties",
    "/api/v1/organizations/{org_code}/properties/{property_key}",
}
"""Kinde's feature flags with their overrides, and properties with the values held."""


async def test_every_feature_flag_and_property_operation_matches_the_spec(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    r = Recorder(api)
    org = (await api.post("/api/v1/organization", json={"name": "Acme"})).json()
    org_code = org["organization"]["code"]
    user = (await api.post("/api/v1/user", json={"profile": {"given_name": "Ada"}})).json()["id"]
    flag_body = {
        "name": "Beta",
        "key": "beta",
        "type": "bool",
        "default_value": "false",
        "allow_override_level": "usr",
    }
    await r.call("POST", "/api/v1/feature_flags", "/api/v1/feature_flags", json=flag_body)
    await r.call("POST", "/api/v1/feature_flags", "/api/v1/feature_flags", json=flag_body)
    flag = "/api/v1/feature_flags/{feature_flag_key}"
    replace = {"name": "Beta", "description": "d", "type": "bool", "allow_override_level": "org"}
    await r.call("PUT", flag, "/api/v1/feature_flags/beta", params=replace | {"default_value": "1"})
    await r.call(
        "PUT", flag, "/api/v1/feature_flags/beta", params=replace | {"default_value": "true"}
    )
    org_flags = f"/api/v1/organizations/{org_code}/feature_flags"
    org_flag = "/api/v1/organizations/{org_code}/feature_flags/{feature_flag_key}"
    await r.call("PATCH", org_flag, f"{org_flags}/beta", params={"value": "false"})
    listed = await r.call("GET", "/api/v1/organizations/{org_code}/feature_flags", org_flags)
    assert listed["feature_flags"] == {"beta": {"type": "bool", "value": "false"}}
    await r.call("DELETE", org_flag, f"{org_flags}/beta")
    await r.call("DELETE", "/api/v1/organizations/{org_code}/feature_flags", org_flags)
    await r.call(
        "PUT",
        flag,
        "/api/v1/feature_flags/beta",
        params=replace | {"default_value": "true", "allow_override_level": "usr"},
    )
    await r.call(
        "PATCH",
        "/api/v1/users/{user_id}/feature_flags/{feature_flag_key}",
        f"/api/v1/users/{user}/feature_flags/beta",
        params={"value": "true"},
    )
    await r.call("DELETE", flag, "/api/v1/feature_flags/beta")

    created = await r.call(
        "POST",
        "/api/v1/properties",
        "/api/v1/properties",
        json={
            "name": "Town",
            "key": "town",
            "type": "single_line_text",
            "context": "usr",
            "is_private": False,
            "category_id": "cat_1",
        },
    )
    await r.call(
        "POST",
        "/api/v1/properties",
        "/api/v1/properties",
        json={
            "name": "Industry",
            "key": "industry",
            "type": "single_line_text",
            "context": "org",
            "is_private": False,
            "category_id": "cat_1",
        },
    )
    prop = created["property"]["id"]
    await r.call("GET", "/api/v1/properties", "/api/v1/properties", params={"context": "usr"})
    await r.call(
        "PUT",
        "/api/v1/properties/{property_id}",
        f"/api/v1/properties/{prop}",
        json={"name": "City", "is_private": True, "category_id": "cat_1"},
    )
    user_props = f"/api/v1/users/{user}/properties"
    await r.call(
        "PATCH",
        "/api/v1/users/{user_id}/properties",
        user_props,
        json={"properties": {"town": "Staines"}},
    )
    await r.call(
        "PUT",
        "/api/v1/users/{user_id}/properties/{property_key}",
        f"{user_props}/town",
        params={"value": "Slough"},
    )
    held = await r.call("GET", "/api/v1/users/{user_id}/properties", user_props)
    assert held["properties"][0]["value"] == "Slough"
    org_props = f"/api/v1/organizations/{org_code}/properties"
    await r.call(
        "PATCH",
        "/api/v1/organizations/{org_code}/properties",
        org_props,
        json={"properties": {"industry": "Retail"}},
    )
    await r.call(
        "PUT",
        "/api/v1/organizations/{org_code}/properties/{property_key}",
        f"{org_props}/industry",
        params={"value": "Media"},
    )
    await r.call("GET", "/api/v1/organizations/{org_code}/properties", org_props)
    await r.call("DELETE", "/api/v1/properties/{property_id}", f"/api/v1/properties/{prop}")

    operations = {(m, p) for m, p, status in r.checked if status < 300}
    assert operations == implemented_operations(app, FLAG_AND_PROPERTY_PATHS)
    assert len(operations) == 18


def test_the_conversion_really_validates() -> None:
    """A guard against a vacuous check: wrong types and nulls where none are allowed fail."""
    entitlements = response_schema("GET", "/api/v1/billing/entitlements", 200)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"entitlements": [{"fixed_charge": "35"}]}, entitlements)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"entitlements": [{"unit_amount": None}]}, entitlements)
    organization = response_schema("GET", "/api/v1/organization", 200)
    jsonschema.validate({"handle": None, "billing": {"agreements": []}}, organization)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"billing": {"agreements": [{"plan_code": 1}]}}, organization)


async def test_our_kinde_routes_exist_in_the_spec_with_its_scopes(app: FastAPI) -> None:
    """Every non-extension ``/api/v1`` route is a Kinde operation, guarded by Kinde's scope."""
    ours = app.openapi()["paths"]
    for path, operations in ours.items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if "claimflow extension" in operation.get("tags", []):
                continue
            assert operation.get("x-scope"), f"{method} {path} names no scope"
            if path not in KINDE_PATHS | ACCESS_PATHS | WEBHOOK_PATHS | FLAG_AND_PROPERTY_PATHS:
                continue
            assert method in spec()["paths"][path], f"{method} {path} is not in Kinde's spec"
            assert operation["x-scope"] == spec_scope(method, path), (method, path)
    compared = 0
    for method, url, scope in ROUTES:
        path = url.split("?")[0]
        for template in KINDE_PATHS:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path):
                assert spec_scope(method, template) == scope, (method, template)
                compared += 1
    assert compared == 36
