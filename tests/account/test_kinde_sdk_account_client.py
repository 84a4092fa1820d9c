"""Kinde's own Python SDK (kinde-python-sdk) reads the Account API of a live claimflow.

claimflow runs in uvicorn on loopback; Alice signs in through the login form; the SDK's Account
API clients (``kinde_sdk.auth.entitlements.Entitlements`` and the generated ``RolesApi``,
``PermissionsApi`` and ``OAuthApi``) call it with her access token over real HTTP, parse the
answers into their strict models, and page on their own.
"""

from __future__ import annotations

import asyncio

import httpx
from kinde_sdk.auth.entitlements import Entitlements
from kinde_sdk.frontend.api.o_auth_api import OAuthApi
from kinde_sdk.frontend.api.permissions_api import PermissionsApi
from kinde_sdk.frontend.api.roles_api import RolesApi
from kinde_sdk.frontend.api_client import ApiClient
from kinde_sdk.frontend.configuration import Configuration

from claimflow.services import build_services
from tests.account.conftest import (
    ORG_FEATURES,
    LiveServer,
    PayingBusiness,
    seed_paying_business,
    user_access_token,
)


async def _signed_in(live_server: LiveServer, org: bool) -> tuple[PayingBusiness, str]:
    services = build_services(live_server.settings)
    try:
        paying = await seed_paying_business(services)
    finally:
        await services.close()
    async with httpx.AsyncClient(base_url=live_server.issuer) as http:
        token = await user_access_token(http, paying.biz, paying.biz.org_code if org else None)
    return paying, token


async def test_the_sdk_pages_through_every_entitlement_of_the_organization(
    live_server: LiveServer,
) -> None:
    _, token = await _signed_in(live_server, org=True)
    client = Entitlements(live_server.issuer, token)
    entitlements = await asyncio.to_thread(client.get_all_entitlements)
    assert sorted(e.feature_key for e in entitlements) == ORG_FEATURES
    assert {e.entitlement_limit_max for e in entitlements} == set(range(1, 13))
    first_page = await asyncio.to_thread(client.billing_api.get_entitlements)
    assert first_page.metadata is not None and first_page.metadata.has_more is True
    assert first_page.data is not None and first_page.data.plans is not None
    assert first_page.data.plans[0].key == "team"


async def test_the_sdk_reads_roles_permissions_and_profile(live_server: LiveServer) -> None:
    paying, token = await _signed_in(live_server, org=True)
    api_client = ApiClient(Configuration(host=live_server.issuer, access_token=token))
    roles = await asyncio.to_thread(RolesApi(api_client).get_user_roles)
    assert roles.data is not None and roles.data.org_code == paying.biz.org_code
    assert [r.key for r in roles.data.roles or []] == ["admin"]
    permissions = await asyncio.to_thread(PermissionsApi(api_client).get_user_permissions)
    assert permissions.data is not None
    assert [p.key for p in permissions.data.permissions or []] == ["read:reports"]
    profile = await asyncio.to_thread(OAuthApi(api_client).get_user_profile_v2)
    assert profile.id == paying.biz.user_id and profile.email == paying.biz.email


async def test_the_sdk_reads_personal_billing_for_a_personal_sign_in(
    live_server: LiveServer,
) -> None:
    _, token = await _signed_in(live_server, org=False)
    entitlements = await asyncio.to_thread(
        Entitlements(live_server.issuer, token).get_all_entitlements
    )
    assert [(e.feature_key, e.unit_amount) for e in entitlements] == [("personal_storage", 300)]
