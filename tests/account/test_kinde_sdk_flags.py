"""Kinde's Python SDK (kinde-python-sdk 2.4) manages and reads feature flags and properties.

claimflow runs in uvicorn on loopback. The SDK's ``ManagementClient`` (its M2M token manager
included) creates a flag, overrides it for an organization and a user, replaces it, and sets
properties, every answer parsed into the SDK's strict models; then the SDK's Account API clients
(``FeatureFlagsApi``, ``PropertiesApi``) read them back with the user's access token.

The ``ManagementClient`` builds ``https://{domain}`` and asks for the audience
``https://{domain}/api``; the server's issuer is therefore the ``https://`` form of its address
while it serves plain HTTP on loopback, and the client's host and token URL are pointed at that
(as ``shared/reference/kinde-notes.md`` §3.7 observed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import jwt
import pytest
from kinde_sdk.frontend.api.feature_flags_api import FeatureFlagsApi
from kinde_sdk.frontend.api.properties_api import PropertiesApi
from kinde_sdk.frontend.api_client import ApiClient
from kinde_sdk.frontend.configuration import Configuration
from kinde_sdk.management import ManagementClient
from kinde_sdk.management.models.create_feature_flag_request import CreateFeatureFlagRequest
from kinde_sdk.management.models.create_property_request import CreatePropertyRequest
from kinde_sdk.management.models.update_organization_properties_request import (
    UpdateOrganizationPropertiesRequest,
)

from claimflow.app import create_app
from claimflow.services import build_services
from tests.account.conftest import LiveServer, user_access_token
from tests.conftest import make_settings
from tests.helpers import create_m2m_app, free_port, serving
from tests.oidc.flow import Business, seed_business


@pytest.fixture
def https_named_server(db_url: str) -> Iterator[tuple[LiveServer, str]]:
    """The server on ``http://127.0.0.1:port`` with the issuer ``https://127.0.0.1:port``."""
    port = free_port()
    settings = make_settings(
        db_url, issuer=f"https://127.0.0.1:{port}", workflow_time_limit_seconds=30.0
    )
    with serving(create_app(settings=settings), port):
        yield LiveServer(f"http://127.0.0.1:{port}", settings), f"127.0.0.1:{port}"


async def _seed(server: LiveServer) -> tuple[Business, str, str]:
    services = build_services(server.settings)
    try:
        biz = await seed_business(services)
        client_id, secret = await create_m2m_app(services)
    finally:
        await services.close()
    return biz, client_id, secret


def _management_client(
    server: LiveServer, domain: str, client_id: str, secret: str
) -> ManagementClient:
    client = ManagementClient(domain=domain, client_id=client_id, client_secret=secret)
    client.configuration.host = server.issuer
    client.token_manager.token_url = f"{server.issuer}/oauth2/token"
    return client


def _manage(client: ManagementClient, biz: Business) -> dict[str, object]:
    """Every management call of this test, as a Kinde app makes them (blocking, in a thread)."""
    seen: dict[str, object] = {}
    created = client.feature_flags_api.create_feature_flag(
        CreateFeatureFlagRequest(
            name="Max projects",
            key="max_projects",
            type="int",
            allow_override_level="usr",
            default_value="3",
            description="How many projects",
        )
    )
    seen["created"] = created.code
    client.feature_flags_api.create_feature_flag(
        CreateFeatureFlagRequest(name="Beta", key="beta", type="bool", default_value="false")
    )
    client.organizations_api.update_organization_feature_flag_override(
        org_code=biz.org_code, feature_flag_key="max_projects", value="25"
    )
    client.users_api.update_user_feature_flag_override(
        user_id=biz.user_id, feature_flag_key="max_projects", value="40"
    )
    flags = client.organizations_api.get_organization_feature_flags(org_code=biz.org_code)
    seen["org_flags"] = {
        key: (flag.type, flag.value) for key, flag in (flags.feature_flags or {}).items()
    }
    client.feature_flags_api.update_feature_flag(
        feature_flag_key="beta",
        name="Beta",
        description="Early access",
        type="bool",
        allow_override_level="env",
        default_value="true",
    )
    prop = client.properties_api.create_property(
        CreatePropertyRequest(
            name="Town",
            key="town",
            type="single_line_text",
            context="usr",
            is_private=False,
            category_id="cat_profile",
        )
    )
    assert prop.var_property is not None
    seen["property_id"] = prop.var_property.id
    client.properties_api.create_property(
        CreatePropertyRequest(
            name="Industry",
            key="industry",
            type="single_line_text",
            context="org",
            is_private=False,
            category_id="cat_profile",
        )
    )
    client.users_api.update_user_property(user_id=biz.user_id, property_key="town", value="Staines")
    client.organizations_api.update_organization_properties(
        org_code=biz.org_code,
        update_organization_properties_request=UpdateOrganizationPropertiesRequest(
            properties={"industry": "Retail"}
        ),
    )
    user_values = client.users_api.get_user_property_values(user_id=biz.user_id)
    seen["user_properties"] = {p.key: p.value for p in user_values.properties or []}
    org_values = client.organizations_api.get_organization_property_values(org_code=biz.org_code)
    seen["org_properties"] = {p.key: p.value for p in org_values.properties or []}
    listed = client.properties_api.get_properties(context="usr")
    seen["catalogue"] = [p.key for p in listed.properties or []]
    return seen


async def test_the_sdk_manages_flags_and_properties_and_reads_them_back(
    https_named_server: tuple[LiveServer, str],
) -> None:
    server, domain = https_named_server
    biz, client_id, secret = await _seed(server)
    client = _management_client(server, domain, client_id, secret)
    seen = await asyncio.to_thread(_manage, client, biz)
    assert seen["created"] == "FEATURE_FLAG_CREATED"
    assert seen["org_flags"] == {"beta": ("bool", "false"), "max_projects": ("int", "25")}
    assert seen["user_properties"] == {"town": "Staines"}
    assert seen["org_properties"] == {"industry": "Retail"}
    assert seen["catalogue"] == ["town"]

    # Signing in sets ``Secure`` cookies (the issuer is https), so the browser part runs
    # in-process against the same database with the issuer as its base URL.
    transport = httpx.ASGITransport(app=create_app(settings=server.settings))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{domain}") as http:
        token = await user_access_token(http, biz, biz.org_code)
    claim = jwt.decode(token, options={"verify_signature": False})["feature_flags"]
    assert claim == {"beta": {"t": "b", "v": True}, "max_projects": {"t": "i", "v": 40}}

    account = ApiClient(Configuration(host=server.issuer, access_token=token))
    flags = await asyncio.to_thread(FeatureFlagsApi(account).get_feature_flags)
    assert flags.data is not None
    values = {
        f.key: (f.type, f.value.actual_instance if f.value else None)
        for f in flags.data.feature_flags or []
    }
    assert values == {"beta": ("boolean", True), "max_projects": ("integer", 40)}
    properties = await asyncio.to_thread(PropertiesApi(account).get_user_properties)
    assert properties.data is not None and properties.metadata is not None
    assert properties.metadata.has_more is False
    assert [
        (p.key, p.value.actual_instance if p.value else None)
        for p in properties.data.properties or []
    ] == [("town", "Staines")]
