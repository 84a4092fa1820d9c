"""Kinde's Python SDK signs in to ``claimflow demo --https`` and reads the Account API.

What a team moving from Kinde would try first: the demo, over HTTPS with its self-signed
certificate (trusted through ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``, as the demo's banner
says), and the SDK's own ``OAuth`` client with its domain. The SDK builds the authorization URL
(PKCE, state, nonce, ``supports_reauth``); the login form is driven over HTTP as a browser
would; the SDK exchanges the code, reads userinfo, refreshes, builds the logout URL; its Account
API clients then read entitlements, roles, permissions and the profile with the user's token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kinde_sdk.auth.entitlements import Entitlements
from kinde_sdk.auth.oauth import OAuth
from kinde_sdk.core.framework.null_framework import NullFramework
from kinde_sdk.frontend.api.o_auth_api import OAuthApi
from kinde_sdk.frontend.api.permissions_api import PermissionsApi
from kinde_sdk.frontend.api.roles_api import RolesApi
from kinde_sdk.frontend.api_client import ApiClient
from kinde_sdk.frontend.configuration import Configuration

from tests.oidc.flow import hidden_fields
from tests.servers import HttpsDemo, running_https_demo

CALLBACK = "http://127.0.0.1:8765/callback"
SIGNED_OUT = "http://127.0.0.1:8765/"
WEB = ("demo-web", "demo-web-secret-not-for-production")


@pytest.fixture(scope="module")
def https_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsDemo]:
    with running_https_demo(tmp_path_factory.mktemp("https-demo")) as demo:
        yield demo


@pytest.fixture
def trusted(https_demo: HttpsDemo, monkeypatch: pytest.MonkeyPatch) -> HttpsDemo:
    """The demo's certificate trusted the way its banner says (requests and urllib3 alike)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(https_demo.certfile))
    monkeypatch.setenv("SSL_CERT_FILE", str(https_demo.certfile))
    return https_demo


def sign_in_through_the_form(demo: HttpsDemo, url: str) -> dict[str, str]:
    """What a browser does with the SDK's login URL: Alice fills the form; the callback's query."""
    with httpx.Client(verify=demo.trusting()) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        form = hidden_fields(page.text) | {"email": "alice@acme.test", "password": "claimflow-demo"}
        done = browser.post(page.url.join("/oauth2/auth/login"), data=form)
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith(CALLBACK + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sdk_sign_in(demo: HttpsDemo, user_id: str) -> tuple[OAuth, dict[str, object]]:
    """The SDK's authorization code flow for Alice in Acme; its ``handle_redirect`` result."""
    oauth = OAuth(client_id=WEB[0], client_secret=WEB[1], redirect_uri=CALLBACK, host=demo.issuer)
    login_url = await oauth.login({"org_code": "org_acme", "scope": "openid profile email offline"})
    assert login_url.startswith(demo.issuer + "/oauth2/auth?")
    callback = await asyncio.to_thread(sign_in_through_the_form, demo, login_url)
    result = await oauth.handle_redirect(callback["code"], user_id, state=callback["state"])
    NullFramework().set_user_id(user_id)
    return oauth, result


async def test_the_sdk_oauth_client_signs_in_refreshes_and_signs_out(trusted: HttpsDemo) -> None:
    oauth, result = await sdk_sign_in(trusted, "sdk-oauth-alice")
    # Endpoints came from discovery over TLS, not from the SDK's guesses.
    assert oauth.token_url == trusted.issuer + "/oauth2/token"
    assert oauth.logout_url == trusted.issuer + "/logout"
    user = result["user"]
    assert isinstance(user, dict) and user["email"] == "alice@acme.test"
    assert oauth.is_authenticated()
    assert oauth.get_user_info()["email"] == "alice@acme.test"

    tokens = oauth.get_tokens("sdk-oauth-alice")
    access = tokens["claims"]
    assert access["org_code"] == "org_acme"
    assert access["org_billing"]["customer_id"] == "customer_acme"
    assert access["roles"] == [{"key": "admin"}]
    assert sorted(access["permissions"]) == ["manage:members", "read:reports", "write:reports"]
    # What the SDK's claim, role and permission helpers read (they need a web framework
    # integration to find the signed-in user; standalone, the token manager answers).
    manager = oauth._session_manager.get_token_manager("sdk-oauth-alice")
    assert manager is not None
    assert manager.get_claim("org_code") == {"name": "org_code", "value": "org_acme"}
    assert manager.get_claim("email", token_type="id_token")["value"] == "alice@acme.test"
    before = manager.get_access_token()
    refreshed = await asyncio.to_thread(manager.refresh_access_token)
    assert refreshed != before
    assert manager.get_claims()["org_billing"]["customer_id"] == "customer_acme"

    logout_url = await oauth.logout(
        "sdk-oauth-alice", {"post_logout_redirect_uri": SIGNED_OUT, "state": "bye"}
    )
    assert logout_url.startswith(trusted.issuer + "/logout?")
    async with httpx.AsyncClient(verify=trusted.trusting()) as browser:
        signed_out = await browser.get(logout_url)
    assert signed_out.status_code == 302, signed_out.text
    assert signed_out.headers["location"] == SIGNED_OUT + "?state=bye"
    assert not oauth.is_authenticated()


async def test_the_sdk_account_api_clients_read_what_the_sign_in_carries(
    trusted: HttpsDemo,
) -> None:
    oauth, _ = await sdk_sign_in(trusted, "sdk-account-alice")
    token = oauth.get_tokens("sdk-account-alice")["access_token"]

    entitlements = await asyncio.to_thread(Entitlements(trusted.issuer, token).get_all_entitlements)
    # Acme is on the demo's Pro plan.
    assert sorted(e.feature_key for e in entitlements) == [
        "api_calls",
        "audit_log",
        "projects",
        "seats",
    ]
    seats = next(e for e in entitlements if e.feature_key == "seats")
    assert (seats.entitlement_limit_min, seats.entitlement_limit_max) == (1, 25)

    api_client = ApiClient(Configuration(host=trusted.issuer, access_token=token))
    assigned = await asyncio.to_thread(RolesApi(api_client).get_user_roles)
    assert assigned.data is not None and assigned.data.org_code == "org_acme"
    assert [r.key for r in assigned.data.roles or []] == ["admin"]
    granted = await asyncio.to_thread(PermissionsApi(api_client).get_user_permissions)
    assert granted.data is not None
    assert sorted(p.key for p in granted.data.permissions or []) == [
        "manage:members",
        "read:reports",
        "write:reports",
    ]
    profile = await asyncio.to_thread(OAuthApi(api_client).get_user_profile_v2)
    assert profile.email == "alice@acme.test"
