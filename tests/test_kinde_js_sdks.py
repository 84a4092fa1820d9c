"""Kinde's JS SDKs, unchanged, against ``claimflow demo --https``.

``tests/kinde_js/kinde_js_sdks.mjs`` drives ``@kinde/management-api-js`` (M2M credentials from
the environment, as its ``init()`` reads them) through roles, permissions, an organization
user's roles and permissions, billing entitlements and agreements, webhooks, feature flags with
their overrides and properties with their values; then ``@kinde/js-utils``' Account API helpers
(``getEntitlements``, ``getEntitlement``, ``getPermissions``/``getRoles``/``getPermission`` with
``forceApi``, ``getFlag`` from the token's ``feature_flags`` claim, ``hasFeatureFlags`` with
``forceApi``) with Alice's tokens. Node trusts the demo's
self-signed certificate through ``NODE_EXTRA_CA_CERTS``, as the demo's banner says. The
packages come from the npm registry at the versions ``package-lock.json`` pins (``npm ci``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.oidc.flow import hidden_fields
from tests.servers import M2M, WEB, HttpsDemo, running_https_demo

NODE_PROJECT = Path(__file__).parent / "kinde_js"
CALLBACK = "http://127.0.0.1:8765/callback"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js (node and npm) is not installed: Kinde's JS SDKs cannot run",
)


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Node project with its locked packages installed from the npm registry."""
    target = tmp_path_factory.mktemp("kinde-js")
    for name in ("package.json", "package-lock.json", "kinde_js_sdks.mjs"):
        shutil.copy(NODE_PROJECT / name, target / name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=target,
        check=True,
        timeout=300,
    )
    return target


@pytest.fixture(scope="module")
def https_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsDemo]:
    with running_https_demo(tmp_path_factory.mktemp("kinde-js-demo")) as demo:
        yield demo


def alice_tokens(demo: HttpsDemo) -> dict[str, Any]:
    """Alice signs in to Acme with the demo web app: the token endpoint's answer."""
    with httpx.Client(base_url=demo.issuer, verify=demo.trusting()) as http:
        page = http.get(
            "/oauth2/auth",
            params={
                "response_type": "code",
                "client_id": WEB[0],
                "redirect_uri": CALLBACK,
                "scope": "openid profile email",
                "state": "s",
                "nonce": "n",
                "org_code": "org_acme",
            },
        )
        form = hidden_fields(page.text) | {"email": "alice@acme.test", "password": "claimflow-demo"}
        login = http.post("/oauth2/auth/login", data=form)
        assert login.status_code == 302, login.text
        code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
        tokens = http.post(
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
            auth=WEB,
        )
    assert tokens.status_code == 200, tokens.text
    answer: dict[str, Any] = tokens.json()
    return answer


def run_sdks(node_project: Path, demo: HttpsDemo) -> dict[str, dict[str, Any]]:
    tokens = alice_tokens(demo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDE_")}
    env |= {
        "NODE_EXTRA_CA_CERTS": str(demo.certfile),
        "KINDE_DOMAIN": demo.issuer,
        "KINDE_MANAGEMENT_CLIENT_ID": M2M[0],
        "KINDE_MANAGEMENT_CLIENT_SECRET": M2M[1],
        "USER_ACCESS_TOKEN": tokens["access_token"],
        "USER_ID_TOKEN": tokens["id_token"],
        "USER_EMAIL": "alice@acme.test",
        "ORG_CODE": "org_acme",
        "CUSTOMER_ID": "customer_acme",
        "WEBHOOK_ENDPOINT": "http://127.0.0.1:9/kinde-js-hook",
    }
    done = subprocess.run(
        ["node", "kinde_js_sdks.mjs"],
        cwd=node_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {call["name"]: call for call in json.loads(done.stdout)["calls"]}


def test_kindes_js_sdks_work_against_claimflow_unchanged(
    node_project: Path, https_demo: HttpsDemo
) -> None:
    calls = run_sdks(node_project, https_demo)
    failed = {name: call for name, call in calls.items() if not call["ok"]}
    assert not failed, failed
    value = {name: call["value"] for name, call in calls.items()}

    # Management API (@kinde/management-api-js)
    assert value["getOrganization"]["billing"]["billing_customer_id"] == "customer_acme"
    assert {"admin", "member", "viewer", "guest"} <= {r["key"] for r in value["getRoles"]["roles"]}
    assert "read:reports" in {p["key"] for p in value["getPermissions"]["permissions"]}
    assert [p["key"] for p in value["getRolePermissions"]["permissions"]] == ["export:reports"]
    assert "auditor" in {r["key"] for r in value["getOrganizationUserRoles"]["roles"]}
    assert "export:reports" in {
        p["key"] for p in value["getOrganizationUserPermissions"]["permissions"]
    }
    assert {e["feature_code"] for e in value["getBillingEntitlements"]["entitlements"]} == {
        "seats",
        "projects",
        "audit_log",
        "api_calls",
    }
    assert [a["plan_code"] for a in value["getBillingAgreements"]["agreements"]] == ["pro"]
    assert "organization.updated" in {t["code"] for t in value["getEventTypes"]["event_types"]}
    assert "JS SDK check" in {w["name"] for w in value["getWebHooks"]["webhooks"]}

    # Account API (@kinde/js-utils), with Alice's access token
    entitlements = value["getEntitlements"]
    assert entitlements["orgCode"] == "org_acme"
    assert [p["key"] for p in entitlements["plans"]] == ["pro"]
    assert {e["featureKey"] for e in entitlements["entitlements"]} == {
        "seats",
        "projects",
        "audit_log",
        "api_calls",
    }
    seats = value["getEntitlement"]["entitlement"]
    assert (seats["featureKey"], seats["entitlementLimitMax"]) == ("seats", 25)
    assert sorted(value["getPermissions(forceApi)"]["permissions"]) == [
        "manage:members",
        "read:reports",
        "write:reports",
    ]
    assert [r["key"] for r in value["getRoles(forceApi)"]] == ["admin"]
    assert value["getPermission"]["isGranted"] is True
    assert value["getPermission(forceApi)"]["isGranted"] is True
    assert value["getPermission(forceApi)"]["orgCode"] == "org_acme"
    assert value["getPermission(forceApi, not held)"]["isGranted"] is False
    assert value["getFlag(theme)"] == "acme-red"
    assert value["getFlag(new_reports)"] is True
    assert value["getFlag(missing)"] is None
    assert value["hasFeatureFlags(forceApi)"] is True
    assert value["hasFeatureFlags(forceApi, wrong value)"] is False

    # Feature flags and properties (@kinde/management-api-js)
    assert value["createFeatureFlag"]["code"] == "FEATURE_FLAG_CREATED"
    assert value["getOrganizationFeatureFlags"]["feature_flags"]["js_sdk_limit"] == {
        "type": "int",
        "value": "12",
    }
    assert "favourite_colour" in {p["key"] for p in value["getProperties"]["properties"]}
    assert {p["key"]: p["value"] for p in value["getUserPropertyValues"]["properties"]} == {
        "town": "Shelbyville",
        "favourite_colour": "teal",
    }
    assert {p["key"]: p["value"] for p in value["getOrganizationPropertyValues"]["properties"]} == {
        "industry": "Rockets"
    }
    assert value["getCurrentOrganization"] == "org_acme"
    assert value["getUserProfile"]["email"] == "alice@acme.test"
