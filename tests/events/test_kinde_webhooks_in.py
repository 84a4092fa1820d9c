"""``POST /webhooks/kinde``: Kinde's webhooks verified against a real JWKS, and the attacks.

Kinde is stood in for by a loopback HTTP server publishing ``/.well-known/jwks.json`` (keys this
test generates, as Kinde's would be); webhooks are real JWTs signed with them. What a verified
webhook does is observed where the billing cache listens: ``services.billing_changes``. Every
refused webhook is checked to have published nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from claimflow.app import create_app
from claimflow.events.inbound import customer_ids_of
from claimflow.services import Services, build_services
from tests.conftest import ISSUER, make_settings
from tests.helpers import free_port, serving


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class KindeStandIn:
    """A loopback server publishing a JWKS, as ``https://<business>.kinde.com`` does."""

    port: int
    keys: dict[str, Any] = field(default_factory=dict)
    """kid → private key; the public halves are published."""
    fetches: int = 0

    @property
    def domain(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_rsa_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def app(self) -> Starlette:
        async def jwks(_: Request) -> JSONResponse:
            self.fetches += 1
            published = []
            for kid, key in self.keys.items():
                if isinstance(key, rsa.RSAPrivateKey):
                    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "RS256"}
                else:
                    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "ES256"}
                published.append(jwk | {"kid": kid, "use": "sig"})
            return JSONResponse({"keys": published})

        return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])

    def webhook(
        self,
        kid: str = "kinde-1",
        *,
        key: Any = None,
        algorithm: str = "RS256",
        **claims: Any,
    ) -> str:
        """A webhook JWT as Kinde sends it; ``claims`` override the envelope's."""
        now = int(time.time())
        body: dict[str, Any] = {
            "type": "customer.agreement_created",
            "event_id": "event_" + uuid.uuid4().hex,
            "source": "admin",
            "timestamp": "2026-12-02T18:00:00Z",
            "iat": now,
            "iss": self.domain,
            "data": {"agreement": {"id": "agreement_1", "customer_id": "customer_acme"}},
        }
        body.update(claims)
        signing_key = key if key is not None else self.keys[kid]
        return jwt.encode(body, signing_key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def kinde() -> Iterator[KindeStandIn]:
    stand_in = KindeStandIn(free_port())
    stand_in.add_rsa_key("kinde-1")
    with serving(stand_in.app(), stand_in.port):
        yield stand_in


@dataclass
class Receiving:
    http: httpx.AsyncClient
    services: Services
    published: list[frozenset[str]]

    async def post(self, token: str) -> httpx.Response:
        return await self.http.post(
            "/webhooks/kinde", content=token, headers={"content-type": "application/jwt"}
        )


@pytest.fixture
async def receiving(db_url: str, kinde: KindeStandIn) -> AsyncIterator[Receiving]:
    services = build_services(make_settings(db_url, kinde_webhook_domain=kinde.domain))
    published: list[frozenset[str]] = []

    async def record(customer_ids: frozenset[str]) -> None:
        published.append(customer_ids)

    services.billing_changes.subscribe(record)
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Receiving(http, services, published)
    finally:
        await services.close()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code


async def test_a_verified_billing_webhook_invalidates_the_customer(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    response = await receiving.post(kinde.webhook())
    assert response.status_code == 200, response.text
    assert response.json()["invalidated_customer_ids"] == ["customer_acme"]
    assert receiving.published == [frozenset({"customer_acme"})]
    # The key set is cached: a second webhook does not fetch it again.
    other = kinde.webhook(data={"customer": {"id": "customer_globex"}})
    assert (await receiving.post(other)).status_code == 200
    assert receiving.published[-1] == frozenset({"customer_globex"})
    assert kinde.fetches == 1


async def test_a_webhook_naming_no_customer_is_acknowledged_and_changes_nothing(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    token = kinde.webhook(type="organization.updated", data={"organization": {"code": "org_x"}})
    response = await receiving.post(token)
    assert response.status_code == 200
    assert response.json()["invalidated_customer_ids"] == []
    assert receiving.published == []


async def test_a_webhook_signed_with_another_key_is_refused(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(await receiving.post(kinde.webhook(key=forger)), 401, "INVALID_SIGNATURE")
    assert receiving.published == []


async def test_a_webhook_whose_payload_was_altered_is_refused(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    genuine = kinde.webhook(data={"customer_id": "customer_acme"})
    other = kinde.webhook(data={"customer_id": "customer_victim"})
    header, _, signature = genuine.split(".")
    spliced = ".".join([header, other.split(".")[1], signature])
    refused(await receiving.post(spliced), 401, "INVALID_SIGNATURE")
    assert receiving.published == []


async def test_a_webhook_from_another_issuer_is_refused(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    token = kinde.webhook(iss="https://attacker.kinde.com")
    refused(await receiving.post(token), 401, "WRONG_ISSUER")
    assert receiving.published == []


async def test_an_expired_webhook_is_refused(receiving: Receiving, kinde: KindeStandIn) -> None:
    expired = kinde.webhook(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    refused(await receiving.post(expired), 401, "EXPIRED_WEBHOOK")
    too_old = kinde.webhook(iat=int(time.time()) - 2 * 86400)
    refused(await receiving.post(too_old), 401, "EXPIRED_WEBHOOK")
    assert receiving.published == []


async def test_an_unknown_key_is_refused_and_refetches_the_key_set_at_most_once(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    assert (await receiving.post(kinde.webhook())).status_code == 200
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(5):
        refused(await receiving.post(kinde.webhook("kinde-2", key=forger)), 401, "UNKNOWN_KEY")
    assert receiving.published == [frozenset({"customer_acme"})]
    # Within the cool-down, forged kids cost Kinde no fetch at all.
    assert kinde.fetches == 1


async def test_a_rotated_key_is_fetched_when_a_webhook_names_it(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    assert (await receiving.post(kinde.webhook())).status_code == 200
    kinde.add_rsa_key("kinde-2")
    assert receiving.services.kinde_webhooks is not None
    receiving.services.kinde_webhooks.jwks.refetch_cooldown_seconds = 0
    assert (await receiving.post(kinde.webhook("kinde-2"))).status_code == 200
    assert kinde.fetches == 2


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
async def test_unsigned_and_symmetric_webhooks_are_refused(
    receiving: Receiving, kinde: KindeStandIn, algorithm: str
) -> None:
    """RFC 8725 §2.1 and §3.1: no ``none``, and no HMAC keyed with the public key (built by
    hand: PyJWT itself refuses to sign that way)."""
    public_pem = (
        kinde.keys["kinde-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"type": "customer.plan_changed", "event_id": "event_x", "data": {"customer_id": "c"}}
    signing_input = ".".join(
        base64url(json.dumps(part).encode())
        for part in ({"alg": algorithm, "kid": "kinde-1", "typ": "JWT"}, claims)
    )
    signature = (
        b""
        if algorithm == "none"
        else hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    )
    token = f"{signing_input}.{base64url(signature)}"
    refused(await receiving.post(token), 401, "INVALID_ALGORITHM")
    assert receiving.published == []


async def test_a_key_of_one_algorithm_cannot_verify_another(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    kinde.keys["kinde-ec"] = ec.generate_private_key(ec.SECP256R1())
    assert receiving.services.kinde_webhooks is not None
    receiving.services.kinde_webhooks.jwks.refetch_cooldown_seconds = 0
    token = kinde.webhook("kinde-ec", key=kinde.keys["kinde-1"], algorithm="RS256")
    refused(await receiving.post(token), 401, "INVALID_ALGORITHM")
    assert (await receiving.post(kinde.webhook("kinde-ec", algorithm="ES256"))).status_code == 200


async def test_a_replayed_event_is_acknowledged_without_acting_again(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    token = kinde.webhook()
    assert (await receiving.post(token)).status_code == 200
    replay = await receiving.post(token)
    # 200, not 4xx: Kinde delivers at least once and would retry a refused duplicate.
    assert replay.status_code == 200 and replay.json()["message"] == "Already received"
    assert receiving.published == [frozenset({"customer_acme"})]


async def test_a_forgery_cannot_claim_a_real_events_id_first(
    receiving: Receiving, kinde: KindeStandIn
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = kinde.webhook(key=forger, event_id="event_real")
    refused(await receiving.post(forged), 401, "INVALID_SIGNATURE")
    assert (await receiving.post(kinde.webhook(event_id="event_real"))).status_code == 200
    assert receiving.published == [frozenset({"customer_acme"})]


@pytest.mark.parametrize("body", [b"", b"not a jwt", b"\xff\xfe", b"a.b.c"])
async def test_a_body_that_is_no_jwt_is_a_400(receiving: Receiving, body: bytes) -> None:
    response = await receiving.http.post("/webhooks/kinde", content=body)
    refused(response, 400, "MALFORMED_WEBHOOK")
    assert receiving.published == []


async def test_kinde_unreachable_is_a_503_that_kinde_retries(db_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    services = build_services(make_settings(db_url, kinde_webhook_domain=down))
    published: list[frozenset[str]] = []

    async def record(customer_ids: frozenset[str]) -> None:
        published.append(customer_ids)

    services.billing_changes.subscribe(record)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {"type": "customer.plan_changed", "event_id": "e1", "data": {"customer_id": "c"}},
        key,
        algorithm="RS256",
        headers={"kid": "k"},
    )
    try:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.post("/webhooks/kinde", content=token)
    finally:
        await services.close()
    refused(response, 503, "KINDE_JWKS_UNAVAILABLE")
    assert published == []


async def test_without_a_kinde_domain_the_route_is_a_404(db_url: str) -> None:
    services = build_services(make_settings(db_url))
    try:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.post("/webhooks/kinde", content="x.y.z")
    finally:
        await services.close()
    refused(response, 404, "ROUTE_NOT_FOUND")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["customer_id", "customer", "agreement", "billing", "organization", "id"]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def strings_in(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return set()


@given(JSON)
def test_customer_ids_are_only_non_empty_strings_of_the_payload(data: object) -> None:
    """Whatever a verified webhook's ``data`` holds, reading it never fails and names only
    strings it carries."""
    found = customer_ids_of(data)
    assert all(isinstance(c, str) and c for c in found)
    assert found <= strings_in(data)


@pytest.mark.parametrize(
    "data",
    [
        {"customer_id": "c1"},
        {"customer": {"id": "c1"}},
        {"agreement": {"id": "a", "customer_id": "c1"}},
        {"billing": {"billing_customer_id": "c1"}},
        {"organization": {"code": "org_x", "billing": {"billing_customer_id": "c1"}}},
        {"user": {"id": "u", "billing": {"customer_id": "c1"}}},
    ],
)
def test_each_place_kinde_names_a_customer_is_read(data: dict[str, Any]) -> None:
    assert customer_ids_of(data) == frozenset({"c1"})
