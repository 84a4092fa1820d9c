"""Helpers of the OIDC tests: a seeded business and a browser-like walk through /oauth2/auth."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qs, urlsplit

import httpx

from claimflow.crypto import hash_password
from claimflow.domain import ApplicationType
from claimflow.services import Services
from claimflow.store import applications, organizations, users

PASSWORD = "correct horse battery staple"
CALLBACK = "http://127.0.0.1:9/callback"
LOGOUT_URL = "http://127.0.0.1:9/bye"


@cache
def password_hash() -> str:
    """One argon2id hash of PASSWORD per test process: hashing costs ~0.3 s on purpose."""
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class Business:
    user_id: str
    email: str
    web_client_id: str
    web_secret: str
    spa_client_id: str
    org_code: str
    other_org_code: str
    stranger_org_code: str


async def seed_business(services: Services, *, require_organization: bool = False) -> Business:
    async with services.db.transaction() as conn:
        user = await users.create_user(
            conn,
            email="alice@example.com",
            given_name="Alice",
            family_name="Liddell",
            password_hash=password_hash(),
        )
        acme = await organizations.create_organization(conn, name="Acme", code="org_acme")
        other = await organizations.create_organization(conn, name="Globex", code="org_globex")
        stranger = await organizations.create_organization(conn, name="Initech", code="org_init")
        await organizations.add_member(
            conn, acme.code, user.id, roles=["admin"], permissions=["read:reports"]
        )
        await organizations.add_member(conn, other.code, user.id)
        web, secret = await applications.create_application(
            conn,
            name="Acme Web",
            type=ApplicationType.REGULAR,
            redirect_uris=[CALLBACK],
            logout_uris=[LOGOUT_URL],
            require_organization=require_organization,
        )
        spa, _ = await applications.create_application(
            conn, name="Acme SPA", type=ApplicationType.SPA, redirect_uris=[CALLBACK]
        )
    assert secret is not None
    return Business(
        user.id,
        "alice@example.com",
        web.client_id,
        secret,
        spa.client_id,
        acme.code,
        other.code,
        stranger.code,
    )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def hidden_fields(page: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in fields}


async def submit_login(
    client: httpx.AsyncClient, page: httpx.Response, email: str, password: str
) -> httpx.Response:
    data = hidden_fields(page.text) | {"email": email, "password": password}
    return await client.post(page.url.join("/oauth2/auth/login"), data=data)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in_for_code(
    client: httpx.AsyncClient,
    biz: Business,
    *,
    client_id: str | None = None,
    challenge: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Run /oauth2/auth with the login form; the callback's query parameters."""
    params = {
        "response_type": "code",
        "client_id": client_id or biz.web_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    params |= extra
    page = await client.get("/oauth2/auth", params=params)
    if page.status_code == 200 and "/oauth2/auth/login" in page.text:
        page = await submit_login(client, page, biz.email, PASSWORD)
    result = redirect_params(page)
    if "code" in result:
        assert result["state"] == params["state"]
    return result | {"nonce": params["nonce"]}


async def exchange(
    client: httpx.AsyncClient, biz: Business, code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": biz.web_client_id,
        "client_secret": biz.web_secret,
    } | extra
    return await client.post("/oauth2/token", data=data)


async def refresh(
    client: httpx.AsyncClient, biz: Business, refresh_token: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": biz.web_client_id,
        "client_secret": biz.web_secret,
    } | extra
    return await client.post("/oauth2/token", data=data)
