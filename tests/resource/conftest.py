"""Resource-kit fixtures: the demo business in a real claimflow app, and tokens it signs.

Tokens are signed by the app's own ``KeyManager`` (the keys its JWKS publishes) with billing
claims built from what its Management API returns, in each of the workflows' three forms.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from claimflow.claims import billing_claim_forms, org_billing_claim
from claimflow.crypto import hash_password
from claimflow.seed import (
    BusinessData,
    demo_data_path,
    import_business_data,
    load_business_file,
)
from claimflow.services import Services
from claimflow.store import organizations, users
from tests.conftest import ISSUER
from tests.helpers import management_client

API_AUDIENCE = "https://api.example.test"


@pytest.fixture(scope="session")
def demo_data() -> BusinessData:
    """The demo business with its passwords hashed once per session (argon2 is slow on purpose)."""
    data = load_business_file(demo_data_path())
    hashes: dict[str, str] = {}
    people = []
    for user in data.users:
        if user.password is not None:
            hashed = hashes.setdefault(user.password, hash_password(user.password))
            user = user.model_copy(update={"password": None, "password_hash": hashed})
        people.append(user)
    return data.model_copy(update={"users": people})


@pytest.fixture
async def demo_services(services: Services, demo_data: BusinessData) -> Services:
    """The app's services with the demo business imported, and the user ``kp_demo`` whose tokens
    the factory signs, a member of every demo organization (token checks at the issuer refuse
    a token of an unknown user, and an organization's billing to a non-member)."""
    await import_business_data(services.db, demo_data)
    async with services.db.transaction() as conn:
        await users.create_user(conn, email="token-subject@example.test", user_id="kp_demo")
        for code in (o.code for o in demo_data.organizations if o.code is not None):
            await organizations.add_member(conn, code, "kp_demo")
    return services


@pytest.fixture
async def issuer_http(demo_services: Services, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """An HTTP client to the claimflow app (JWKS, Management API), in-process over ASGI."""
    return client


class TokenFactory:
    """Signs access tokens the way claimflow's token endpoint shapes them."""

    def __init__(self, services: Services, http: httpx.AsyncClient, headers: dict[str, str]):
        self.services = services
        self.http = http
        self.headers = headers

    async def full_billing(self, customer_id: str) -> dict[str, Any]:
        """``{customer_id, entitlements, agreements}`` as the billing workflows read it."""
        entitlements = await self.http.get(
            "/api/v1/billing/entitlements",
            params={"customer_id": customer_id, "expand": "plans"},
            headers=self.headers,
        )
        agreements = await self.http.get(
            "/api/v1/billing/agreements", params={"customer_id": customer_id}, headers=self.headers
        )
        assert entitlements.status_code == agreements.status_code == 200
        return org_billing_claim(
            customer_id, entitlements.json()["entitlements"], agreements.json()["agreements"]
        )

    async def billing_claim(self, customer_id: str, form: str) -> dict[str, Any]:
        forms = billing_claim_forms(await self.full_billing(customer_id))
        return dict(forms._asdict()[form])

    async def token(
        self,
        *,
        sub: str = "kp_demo",
        org_code: str | None = None,
        permissions: list[str] | None = None,
        org_billing: dict[str, Any] | None = None,
        billing_details: dict[str, Any] | None = None,
        audience: str = API_AUDIENCE,
        issuer: str = ISSUER,
        typ: str = "at+jwt",
        expires_in: int = 3600,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": sub,
            "aud": [audience],
            "azp": "demo-web",
            "client_id": "demo-web",
            "iat": now,
            "exp": now + expires_in,
            "jti": f"jti-{now}-{sub}",
            "scp": ["openid"],
        }
        if org_code is not None:
            claims["org_code"] = org_code
            claims["permissions"] = permissions or []
            claims["roles"] = [{"key": "member"}]
        if org_billing is not None:
            claims["org_billing"] = org_billing
        if billing_details is not None:
            claims["billingDetails"] = billing_details
        return await self.services.keys.sign(claims, typ=typ)


@pytest.fixture
async def tokens(demo_services: Services, issuer_http: httpx.AsyncClient) -> TokenFactory:
    headers = await management_client(issuer_http, demo_services)
    return TokenFactory(demo_services, issuer_http, headers)
