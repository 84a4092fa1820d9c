"""Attacks on ``m2m:token_generation``: a workflow writing the claims services trust.

An organization's API key carries ``org_code`` and ``org_billing`` that APIs read as the
provider's statement; a token-generation workflow that could write them (or ``aud``, ``scope``,
``feature_flags``, ``client_id``), under any spelling, would let one tenant's key speak for
another. Under ``continue`` the token is issued without the failed workflow's claims; under
``stop`` nothing is issued. The caller's own parameters cannot choose ``org_code`` either.
"""

from __future__ import annotations

import httpx
import jwt
import pytest

from claimflow.services import Services
from tests.management.catalogue import make_plan
from tests.oidc.test_m2m_organizations import (
    api_key,
    client_credentials,
    isolated,
    organization_on,
    token_claims,
)

__all__ = ["isolated"]

FORGED = [
    "aud",
    "scope",
    "Scope",
    "feature_flags",
    "client_id",
    "sub",
    "azp",
    " org_code",
    "ORG_CODE",
    "org_billing",
    "Org_Billing",
    "billingDetails",
    "v",
]


@pytest.mark.parametrize("isolated", [("CONTINUE", name) for name in FORGED], indirect=True)
async def test_m2m_workflow_forges_a_trusted_claim(
    isolated: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = isolated
    await make_plan(api, "starter", {"seats": 5})
    org_code, customer_id = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)
    claims = await token_claims(api, client_id, secret)
    assert "forged" not in [str(v) for v in claims.values()], claims
    assert claims["org_code"] == org_code and claims["sub"] == client_id
    assert claims["aud"] == ["http://claimflow.test/api"] and claims["scope"] == ""
    assert claims["org_billing"]["customer_id"] == customer_id


@pytest.mark.parametrize("isolated", [("STOP", "tenant_note")], indirect=True)
async def test_m2m_caller_chooses_org_code_by_parameters(
    isolated: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = isolated
    await make_plan(api, "starter", {"seats": 5})
    mine, _ = await organization_on(api, "starter")
    theirs, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, mine)
    for extra in ({"org_code": theirs}, {"organization": theirs}, {"scope": f"org:{theirs}"}):
        response = await client_credentials(api, client_id, secret, **extra)
        if response.status_code == 200:
            token = response.json()["access_token"]
            assert jwt.decode(token, options={"verify_signature": False})["org_code"] == mine
        else:
            assert response.status_code == 400, response.text
            assert "error" in response.json()
