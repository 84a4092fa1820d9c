"""The authorization endpoint: redirects, errors, organizations, sessions and the login form."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from claimflow.services import Services
from claimflow.store import organizations
from claimflow.store import tables as t
from tests.oidc.conftest import Deployment
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    exchange,
    hidden_fields,
    pkce_pair,
    redirect_params,
    seed_business,
    sign_in_for_code,
    submit_login,
)


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


def auth_params(biz: Business, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": biz.web_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline",
        "state": "xyz",
    } | extra


async def count_codes(services: Services) -> int:
    async with services.db.connect() as conn:
        query = select(func.count()).select_from(t.authorization_codes)
        return int((await conn.execute(query)).scalar_one())


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_login_page_is_accessible_and_carries_csrf(
    client: httpx.AsyncClient, biz: Business
) -> None:
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<label for="email">Email</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert "<script" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    fields = hidden_fields(page.text)
    assert len(fields["csrf_token"]) == 64
    assert "client_id=" + biz.web_client_id in fields["authorization_request"]


@pytest.mark.parametrize(
    "override",
    [
        {"client_id": "unknown"},
        {"client_id": ""},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": CALLBACK + "/../evil"},
        {"redirect_uri": CALLBACK + "?next=https://evil.example"},
        {"redirect_uri": "http://127.0.0.1:9/CALLBACK"},
        {"redirect_uri": ""},
    ],
)
async def test_errors_before_the_redirect_uri_is_trusted_are_shown_not_redirected(
    client: httpx.AsyncClient, biz: Business, override: dict[str, str]
) -> None:
    response = await client.get("/oauth2/auth", params=auth_params(biz, **override))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "evil.example" not in response.text or "redirect_uri" not in response.text
    assert "We could not sign you in" in response.text


async def test_m2m_applications_cannot_use_the_browser_flow(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    from tests.helpers import create_m2m_app

    m2m_id, _ = await create_m2m_app(services)
    response = await client.get("/oauth2/auth", params=auth_params(biz, client_id=m2m_id))
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "openid admin:everything"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"audience": "http://claimflow.test/api"}, "invalid_target"),
    ],
)
async def test_errors_after_the_redirect_uri_is_trusted_go_back_with_state(
    client: httpx.AsyncClient, biz: Business, override: dict[str, str], error: str
) -> None:
    response = await client.get("/oauth2/auth", params=auth_params(biz, **override))
    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == "xyz"
    assert params["iss"] == "http://claimflow.test"
    assert "code" not in params


async def test_public_client_without_pkce_is_refused(
    client: httpx.AsyncClient, biz: Business
) -> None:
    response = await client.get(
        "/oauth2/auth", params=auth_params(biz, client_id=biz.spa_client_id)
    )
    params = redirect_params(response)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


@pytest.mark.parametrize(
    "raw_query",
    [
        b"client_id=a&client_id=b",
        b"client_id=%ff%fe",
        b"client_id=\xff",
        b"state=%00",
        b"state=" + b"a" * 5000,
        b"x=" + b"a" * 70000,
    ],
)
async def test_malformed_parameters_get_an_error_page_never_a_500(
    app: object, biz: Business, raw_query: bytes
) -> None:
    status, headers, body = await raw_get(app, "/oauth2/auth", raw_query)
    assert status == 400
    assert b"invalid_request" in body
    assert b"location" not in {k.lower() for k, _ in headers}


async def raw_get(
    app: object, path: str, query: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Send a GET with a byte-exact query string (httpx would re-encode it)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"claimflow.test")],
        "client": ("127.0.0.1", 5555),
        "server": ("claimflow.test", 80),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    return int(start["status"]), list(start["headers"]), body  # type: ignore[call-overload,arg-type]


async def test_state_and_nonce_round_trip_and_personal_sign_in_has_no_org_claims(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz, state="s&t=1 é", nonce="n0nce")
    assert callback["state"] == "s&t=1 é"
    tokens = (await exchange(client, biz, callback["code"])).json()
    access, id_token = claims_of(tokens["access_token"]), claims_of(tokens["id_token"])
    assert id_token["nonce"] == "n0nce"
    for claim in ("org_code", "permissions", "roles"):
        assert claim not in access
    assert id_token["org_codes"] == [biz.org_code, biz.other_org_code]


async def test_org_code_of_a_member_signs_in_to_that_organization(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    access = claims_of((await exchange(client, biz, callback["code"])).json()["access_token"])
    assert access["org_code"] == biz.org_code
    assert access["permissions"] == ["read:reports"]
    assert access["roles"] == [{"key": "admin"}]


async def test_org_code_of_a_non_member_is_access_denied_and_nothing_issued(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz, org_code=biz.stranger_org_code)
    assert callback["error"] == "access_denied"
    assert "code" not in callback
    unknown = await sign_in_for_code(client, biz, org_code="org_doesnotexist")
    assert unknown["error"] == "access_denied"
    assert await count_codes(services) == 0
    async with services.db.connect() as conn:
        assert await organizations.find_membership(conn, biz.stranger_org_code, biz.user_id) is None
    # The refusal came after a successful sign-in: that session is kept and reused.
    personal = redirect_params(await client.get("/oauth2/auth", params=auth_params(biz)))
    assert "code" in personal


async def test_auto_membership_organization_admits_the_user(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    async with services.db.transaction() as conn:
        await organizations.update_organization(
            conn, biz.stranger_org_code, is_auto_membership_enabled=True
        )
    callback = await sign_in_for_code(client, biz, org_code=biz.stranger_org_code)
    access = claims_of((await exchange(client, biz, callback["code"])).json()["access_token"])
    assert access["org_code"] == biz.stranger_org_code
    async with services.db.connect() as conn:
        assert await organizations.find_membership(conn, biz.stranger_org_code, biz.user_id)


async def test_application_requiring_an_organization_shows_the_picker(
    client: httpx.AsyncClient, services: Services
) -> None:
    biz = await seed_business(services, require_organization=True)
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    picker = await submit_login(client, page, biz.email, PASSWORD)
    assert picker.status_code == 200
    assert "Choose an organization" in picker.text
    assert 'value="org_acme"' in picker.text and 'value="org_globex"' in picker.text
    data = hidden_fields(picker.text) | {"org_code": biz.other_org_code}
    chosen = await client.post("/oauth2/auth/organization", data=data)
    callback = redirect_params(chosen)
    access = claims_of((await exchange(client, biz, callback["code"])).json()["access_token"])
    assert access["org_code"] == biz.other_org_code

    forged = hidden_fields(picker.text) | {"org_code": biz.stranger_org_code}
    refused = redirect_params(await client.post("/oauth2/auth/organization", data=forged))
    assert refused["error"] == "access_denied"


async def test_picker_is_skipped_with_one_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    biz = await seed_business(services, require_organization=True)
    async with services.db.transaction() as conn:
        await organizations.remove_member(conn, biz.other_org_code, biz.user_id)
    callback = await sign_in_for_code(client, biz)
    access = claims_of((await exchange(client, biz, callback["code"])).json()["access_token"])
    assert access["org_code"] == biz.org_code


async def test_second_authorization_reuses_the_session_without_password(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    again = await client.get("/oauth2/auth", params=auth_params(biz))
    callback = redirect_params(again)
    assert "code" in callback
    async with services.db.connect() as conn:
        row = (await conn.execute(select(t.authorization_codes.c.is_existing_session))).all()
    assert sorted(r.is_existing_session for r in row) == [False, True]


async def test_prompt_login_asks_for_the_password_again(
    client: httpx.AsyncClient, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    page = await client.get("/oauth2/auth", params=auth_params(biz, prompt="login"))
    assert page.status_code == 200
    assert "/oauth2/auth/login" in page.text


async def test_prompt_none_without_a_session_is_login_required(
    client: httpx.AsyncClient, biz: Business
) -> None:
    response = await client.get("/oauth2/auth", params=auth_params(biz, prompt="none"))
    assert redirect_params(response)["error"] == "login_required"


async def test_session_cookie_is_http_only_lax_and_stored_hashed(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    response = await submit_login(client, page, biz.email, PASSWORD)
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("claimflow_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    async with services.db.connect() as conn:
        stored = [r.id_hash for r in await conn.execute(select(t.sessions.c.id_hash))]
    assert len(stored) == 1 and session_id not in stored[0] and stored[0] != session_id


async def test_session_cookie_is_secure_behind_an_https_issuer(db_url: str) -> None:
    from claimflow.app import create_app
    from claimflow.services import build_services
    from tests.conftest import make_settings

    services = build_services(make_settings(db_url, issuer="https://id.example.com"))
    try:
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="https://id.example.com") as c:
            page = await c.get("/oauth2/auth", params=auth_params(biz))
            response = await submit_login(c, page, biz.email, PASSWORD)
        cookies = response.headers.get_list("set-cookie")
        assert any(h.startswith("claimflow_session=") and "Secure" in h for h in cookies)
    finally:
        await services.close()


async def test_login_form_without_csrf_token_is_refused(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    data = hidden_fields(page.text) | {"email": biz.email, "password": PASSWORD}
    data["csrf_token"] = "0" * 64
    response = await client.post("/oauth2/auth/login", data=data)
    assert response.status_code == 400
    assert "location" not in response.headers
    async with services.db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one() == 0


async def test_login_form_cannot_smuggle_an_unregistered_redirect(
    client: httpx.AsyncClient, biz: Business
) -> None:
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    data = hidden_fields(page.text) | {"email": biz.email, "password": PASSWORD}
    data["authorization_request"] = data["authorization_request"].replace(
        "127.0.0.1%3A9", "evil.example"
    )
    response = await client.post("/oauth2/auth/login", data=data)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_redirect_keeps_the_registered_query_and_escapes_values(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    from claimflow.store import applications

    registered = "http://127.0.0.1:9/cb?tenant=a%26b"
    async with services.db.transaction() as conn:
        await applications.update_application(
            conn, biz.web_client_id, redirect_uris=[CALLBACK, registered]
        )
    await sign_in_for_code(client, biz)
    response = await client.get(
        "/oauth2/auth", params=auth_params(biz, redirect_uri=registered, state="a&code=forged")
    )
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert query["tenant"] == ["a&b"]
    assert query["state"] == ["a&code=forged"]
    assert len(query["code"]) == 1 and query["code"] != ["forged"]


async def test_pkce_public_client_gets_tokens_without_a_secret(
    client: httpx.AsyncClient, biz: Business
) -> None:
    verifier, challenge = pkce_pair()
    callback = await sign_in_for_code(client, biz, client_id=biz.spa_client_id, challenge=challenge)
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": CALLBACK,
            "client_id": biz.spa_client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == biz.spa_client_id


async def test_session_of_a_suspended_user_is_not_reused(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    from claimflow.store import users

    await sign_in_for_code(client, biz)
    async with services.db.transaction() as conn:
        await users.update_user(conn, biz.user_id, is_suspended=True)
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text


async def test_values_are_escaped_on_the_login_page(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    from claimflow.store import applications

    async with services.db.transaction() as conn:
        await applications.update_application(
            conn, biz.web_client_id, name="<img src=x onerror=alert(1)>"
        )
    page = await client.get(
        "/oauth2/auth", params=auth_params(biz, state='"><script>alert(1)</script>')
    )
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    callback = redirect_params(await submit_login(client, page, biz.email, PASSWORD))
    assert callback["state"] == '"><script>alert(1)</script>'


async def test_concurrent_first_sign_ins_to_an_auto_membership_organization_all_succeed(
    deployment: Deployment,
) -> None:
    """Two tabs signing in to the same open organization race to add the one membership."""
    client, services = deployment.client, deployment.services
    biz = await seed_business(services)
    await sign_in_for_code(client, biz)  # a session for the browser
    async with services.db.transaction() as conn:
        await organizations.update_organization(
            conn, biz.stranger_org_code, is_auto_membership_enabled=True
        )
    params = auth_params(biz, org_code=biz.stranger_org_code)
    responses = await asyncio.gather(*(client.get("/oauth2/auth", params=params) for _ in range(4)))
    assert [r.status_code for r in responses] == [302] * 4
    assert all("code" in redirect_params(r) for r in responses)
    async with services.db.connect() as conn:
        assert await organizations.find_membership(conn, biz.stranger_org_code, biz.user_id)
