"""idpyoidc completes an authorization code flow as a relying party against a live claimflow.

idpyoidc (IdentityPython's OIDC library, with cryptojwt as its JOSE layer) is one of the strict
relying parties: it reads discovery, checks the authorization response's ``iss`` (RFC 9207),
fetches the JWKS and verifies the ID token's signature, ``iss``, ``aud``, ``nonce`` and times
(OIDC Core §3.1.3.7) before it calls userinfo. The server is ``claimflow demo --https``, so the
whole flow also runs over TLS with the demo's self-signed certificate as the only trust anchor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptojwt.key_jar import KeyJar
from idpyoidc.client.rp_handler import RPHandler
from idpyoidc.exception import VerificationError

from tests.oidc.flow import hidden_fields
from tests.servers import HttpsDemo, running_https_demo

CALLBACK = "http://127.0.0.1:8765/callback"
SERVICES = {
    "provider_info": {
        "class": "idpyoidc.client.oidc.provider_info_discovery.ProviderInfoDiscovery"
    },
    "authorization": {"class": "idpyoidc.client.oidc.authorization.Authorization"},
    "access_token": {"class": "idpyoidc.client.oidc.access_token.AccessToken"},
    "userinfo": {"class": "idpyoidc.client.oidc.userinfo.UserInfo"},
}


@pytest.fixture(scope="module")
def https_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsDemo]:
    with running_https_demo(tmp_path_factory.mktemp("idpyoidc-demo")) as demo:
        yield demo


def relying_party(demo: HttpsDemo, client_secret: str) -> RPHandler:
    """idpyoidc's RP handler with the demo web app statically registered."""
    clients = {
        "claimflow": {
            "issuer": demo.issuer,
            "client_type": "oidc",
            "client_id": "demo-web",
            "client_secret": client_secret,
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email"],
            "services": SERVICES,
        }
    }
    return RPHandler(
        base_url="http://127.0.0.1:8765",
        client_configs=clients,
        keyjar=KeyJar(),
        httpc_params={"verify": str(demo.certfile)},
    )


def sign_in(demo: HttpsDemo, url: str) -> dict[str, str]:
    """Alice fills the login form the RP's URL leads to; the callback's query parameters."""
    with httpx.Client(verify=demo.trusting()) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        form = hidden_fields(page.text) | {"email": "alice@acme.test", "password": "claimflow-demo"}
        done = browser.post(page.url.join("/oauth2/auth/login"), data=form)
    assert done.status_code == 302, done.text
    return {k: v[0] for k, v in parse_qs(urlsplit(done.headers["location"]).query).items()}


def test_idpyoidc_completes_a_code_flow_and_verifies_the_id_token(https_demo: HttpsDemo) -> None:
    rp = relying_party(https_demo, "demo-web-secret-not-for-production")
    url = rp.begin("claimflow", req_args={"org_code": "org_acme"})
    assert url.startswith(https_demo.issuer + "/oauth2/auth?")
    callback = sign_in(https_demo, url)
    assert callback["iss"] == https_demo.issuer

    result: dict[str, Any] = rp.finalize(https_demo.issuer, callback)
    assert "error" not in result, result
    id_token = result["id_token"]
    assert id_token["iss"] == https_demo.issuer
    assert "demo-web" in id_token["aud"]
    assert id_token["email"] == "alice@acme.test"
    assert id_token["org_billing"]["customer_id"] == "customer_acme"
    # The ID token's signature was checked against the keys idpyoidc fetched from our JWKS.
    assert rp.get_client_from_session_key(result["state"]).keyjar.get_issuer_keys(https_demo.issuer)
    assert result["userinfo"]["sub"] == id_token["sub"]
    assert result["userinfo"]["email"] == "alice@acme.test"


def test_idpyoidc_refuses_a_callback_whose_iss_is_not_the_issuer(https_demo: HttpsDemo) -> None:
    """The mix-up defence (RFC 9207 §2.4) holds with our ``iss``: a forged one is refused."""
    rp = relying_party(https_demo, "demo-web-secret-not-for-production")
    callback = sign_in(https_demo, rp.begin("claimflow", req_args={"org_code": "org_acme"}))
    with pytest.raises(VerificationError, match="Issuer mismatch"):
        rp.finalize(https_demo.issuer, callback | {"iss": "https://attacker.example"})
