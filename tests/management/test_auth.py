"""Every Management API route needs an M2M bearer token carrying the scope Kinde names."""

from __future__ import annotations

import httpx
import pytest

from claimflow.services import Services
from tests.helpers import create_m2m_app, m2m_token, management_client

ROUTES = [
    ("GET", "/api/v1/organization?code=org_x", "read:organizations"),
    ("POST", "/api/v1/organization", "create:organizations"),
    ("GET", "/api/v1/organizations", "read:organizations"),
    ("PATCH", "/api/v1/organization/org_x", "update:organizations"),
    ("DELETE", "/api/v1/organization/org_x", "delete:organizations"),
    ("GET", "/api/v1/user?id=kp_x", "read:users"),
    ("POST", "/api/v1/user", "create:users"),
    ("PATCH", "/api/v1/user?id=kp_x", "update:users"),
    ("DELETE", "/api/v1/user?id=kp_x", "delete:users"),
    ("GET", "/api/v1/users", "read:users"),
    ("PUT", "/api/v1/users/kp_x/password", "update:user_passwords"),
    ("GET", "/api/v1/organizations/org_x/users", "read:organization_users"),
    ("POST", "/api/v1/organizations/org_x/users", "create:organization_users"),
    ("DELETE", "/api/v1/organizations/org_x/users/kp_x", "delete:organization_users"),
    ("GET", "/api/v1/applications", "read:applications"),
    ("POST", "/api/v1/applications", "create:applications"),
    ("PATCH", "/api/v1/applications/a", "update:applications"),
    ("DELETE", "/api/v1/applications/a", "delete:applications"),
    ("GET", "/api/v1/applications/a/auth_redirect_urls", "read:applications_redirect_uris"),
    ("POST", "/api/v1/applications/a/auth_redirect_urls", "create:applications_redirect_uris"),
    ("GET", "/api/v1/applications/a/auth_logout_urls", "read:application_logout_uris"),
    ("POST", "/api/v1/applications/a/auth_logout_urls", "create:application_logout_uris"),
    ("GET", "/api/v1/apis", "read:apis"),
    ("POST", "/api/v1/apis", "create:apis"),
    ("GET", "/api/v1/apis/a", "read:apis"),
    ("DELETE", "/api/v1/apis/a", "delete:apis"),
    ("GET", "/api/v1/apis/a/scopes", "read:api_scopes"),
    ("POST", "/api/v1/apis/a/scopes", "create:api_scopes"),
    ("GET", "/api/v1/apis/a/scopes/s", "read:api_scopes"),
    ("PATCH", "/api/v1/apis/a/scopes/s", "update:api_scopes"),
    ("DELETE", "/api/v1/apis/a/scopes/s", "delete:apis_scopes"),
    ("PATCH", "/api/v1/apis/a/applications", "update:apis"),
    ("POST", "/api/v1/apis/a/applications/c/scopes/s", "create:api_application_scopes"),
    ("DELETE", "/api/v1/apis/a/applications/c/scopes/s", "delete:apis_application_scopes"),
    ("GET", "/api/v1/billing/entitlements?customer_id=c", "read:billing_entitlements"),
    ("GET", "/api/v1/billing/agreements?customer_id=c", "read:billing_agreements"),
    ("POST", "/api/v1/billing/agreements", "create:billing_agreements"),
    ("POST", "/api/v1/billing/meter_usage", "create:meter_usage"),
    ("GET", "/api/v1/billing/features", "read:billing"),
    ("POST", "/api/v1/billing/features", "write:billing"),
    ("GET", "/api/v1/billing/plans/p", "read:billing"),
    ("PATCH", "/api/v1/billing/plans/p", "write:billing"),
    ("POST", "/api/v1/billing/customers", "write:billing"),
    ("GET", "/api/v1/billing/customers/c", "read:billing"),
    ("POST", "/api/v1/feature_flags", "create:feature_flags"),
    ("DELETE", "/api/v1/feature_flags/f", "delete:feature_flags"),
    ("GET", "/api/v1/organizations/org_x/feature_flags", "read:organization_feature_flags"),
    ("PATCH", "/api/v1/users/kp_x/feature_flags/f?value=1", "update:user_feature_flags"),
    ("POST", "/api/v1/properties", "create:properties"),
    ("GET", "/api/v1/users/kp_x/properties", "read:user_properties"),
    ("PATCH", "/api/v1/organizations/org_x/properties", "update:organization_properties"),
]


@pytest.mark.parametrize(("method", "url", "scope"), ROUTES)
async def test_route_refuses_missing_bad_and_underscoped_tokens(
    client: httpx.AsyncClient, services: Services, method: str, url: str, scope: str
) -> None:
    missing = await client.request(method, url, json={})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["errors"][0]["code"] == "TOKEN_REQUIRED"
    forged = await client.request(
        method, url, json={}, headers={"Authorization": "Bearer abc.def.ghi"}
    )
    assert forged.status_code == 401
    other = "read:users" if scope != "read:users" else "read:organizations"
    headers = await management_client(client, services, [other])
    underscoped = await client.request(method, url, json={}, headers=headers)
    assert underscoped.status_code == 403
    assert scope in underscoped.json()["errors"][0]["message"]
    headers = await management_client(client, services, [scope])
    allowed = await client.request(method, url, json={}, headers=headers)
    assert allowed.status_code not in (401, 403)


async def test_unknown_api_route_gets_the_error_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing/here")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "ROUTE_NOT_FOUND"
    response = await client.put("/api/v1/organizations")
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"


async def test_revoked_m2m_token_is_refused(client: httpx.AsyncClient, services: Services) -> None:
    client_id, secret = await create_m2m_app(services)
    token = await m2m_token(client, client_id, secret)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/organizations", headers=headers)).status_code == 200

    revoked = await client.post(
        "/oauth2/revoke",
        data={"token": token, "client_id": client_id, "client_secret": secret},
    )
    assert revoked.status_code == 200

    response = await client.get("/api/v1/organizations", headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "TOKEN_INVALID"
