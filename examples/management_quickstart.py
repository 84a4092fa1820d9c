"""Management API quickstart: only httpx, against any running claimflow (or Kinde-style) server.

Gets an M2M token, creates a plan with features, an organization that is a billing customer on
that plan, a user in it, and prints the organization's entitlements and agreements in Kinde's
shapes.

    claimflow init --json               # prints {"client_id": .., "client_secret": ..}
    python examples/management_quickstart.py --base-url http://127.0.0.1:8000 \\
        --client-id=<id> --client-secret=<secret>

The flags default to ``CLAIMFLOW_URL``, ``CLAIMFLOW_CLIENT_ID`` and ``CLAIMFLOW_CLIENT_SECRET``.
Running it twice is fine: existing features and the plan are reused (409 means "already there").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from typing import Any

import httpx

FEATURES = [
    {"code": "seats", "name": "Seats", "kind": "limit"},
    {"code": "sso", "name": "Single sign-on", "kind": "boolean"},
    {"code": "api_calls", "name": "API calls", "kind": "metered"},
]
PLAN = {
    "code": "quickstart_pro",
    "name": "Quickstart Pro",
    "prices": [
        {
            "feature_code": "seats",
            "price_name": "Seats",
            "fixed_charge": 4900,
            "entitlement_limit_max": 25,
        },
        {"feature_code": "sso", "price_name": "SSO", "fixed_charge": 0},
        {"feature_code": "api_calls", "price_name": "API calls", "unit_amount": 1},
    ],
}


def _checked(response: httpx.Response, *also_fine: int) -> Any:
    if response.status_code >= 400 and response.status_code not in also_fine:
        sys.exit(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}"
        )
    return response.json()


async def m2m_token(http: httpx.AsyncClient, base_url: str, client_id: str, secret: str) -> str:
    response = await http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": base_url.rstrip("/") + "/api",
        },
    )
    token: str = _checked(response)["access_token"]
    return token


async def all_entitlements(http: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    """Every page of ``GET /billing/entitlements`` (default page size 10, ``has_more``)."""
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {"customer_id": customer_id}
    while True:
        page = _checked(await http.get("/api/v1/billing/entitlements", params=params))
        items += page["entitlements"]
        if not page["has_more"] or not page["entitlements"]:
            return items
        params["starting_after"] = page["entitlements"][-1]["id"]


async def run(
    base_url: str,
    client_id: str,
    client_secret: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Do the whole tour; returns what it printed, so a test can check it."""
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10) as http:
        token = await m2m_token(http, base_url, client_id, client_secret)
        http.headers["Authorization"] = f"Bearer {token}"

        for feature in FEATURES:
            _checked(await http.post("/api/v1/billing/features", json=feature), 409)
        _checked(await http.post("/api/v1/billing/plans", json=PLAN), 409)

        suffix = secrets.token_hex(3)
        created = _checked(
            await http.post(
                "/api/v1/organization",
                json={
                    "name": f"Quickstart {suffix}",
                    "is_create_billing_customer": True,
                    "billing_email": f"billing+{suffix}@example.com",
                    "billing_plan_code": PLAN["code"],
                },
            )
        )
        org_code = created["organization"]["code"]
        user = _checked(
            await http.post(
                "/api/v1/user",
                json={
                    "profile": {"given_name": "Quinn", "family_name": "Start"},
                    "organization_code": org_code,
                    "identities": [
                        {
                            "type": "email",
                            "is_verified": True,
                            "details": {"email": f"quinn+{suffix}@example.com"},
                        }
                    ],
                },
            )
        )

        organization = _checked(
            await http.get("/api/v1/organization", params={"code": org_code, "expand": "billing"})
        )
        customer_id = organization["billing"]["billing_customer_id"]
        agreements = _checked(
            await http.get("/api/v1/billing/agreements", params={"customer_id": customer_id})
        )
        result = {
            "organization": organization,
            "user_id": user["id"],
            "entitlements": await all_entitlements(http, customer_id),
            "agreements": agreements["agreements"],
        }
    print(json.dumps(result, indent=2))
    return result


VALUED_FLAGS = ("--base-url", "--client-id", "--client-secret")


def _glued(argv: list[str]) -> list[str]:
    """``--flag value`` as ``--flag=value``: a generated secret may start with ``-``, which
    argparse would otherwise read as the next flag and report the secret as missing."""
    glued: list[str] = []
    args = iter(argv)
    for arg in args:
        value = next(args, None) if arg in VALUED_FLAGS else None
        glued.append(arg if value is None else f"{arg}={value}")
    return glued


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("CLAIMFLOW_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--client-id", default=os.environ.get("CLAIMFLOW_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("CLAIMFLOW_CLIENT_SECRET"))
    args = parser.parse_args(_glued(argv))
    if not args.client_id or not args.client_secret:
        parser.error("give --client-id and --client-secret (or CLAIMFLOW_CLIENT_ID/_SECRET)")
    return args


def main() -> None:
    args = parse_arguments(sys.argv[1:])
    asyncio.run(run(args.base_url, args.client_id, args.client_secret))


if __name__ == "__main__":
    main()
