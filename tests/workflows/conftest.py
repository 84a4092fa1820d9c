"""Fixtures of the workflow tests: a billing world in the real store, events, a fake Kinde.

``kinde`` is a real HTTP server on loopback (uvicorn in the test's event loop) serving
Kinde-shaped Management API responses, whose behaviour a test changes per path and which
records every request it received, so tests assert what arrived on the wire.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from claimflow.domain import FeatureKind
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services
from claimflow.store import billing, organizations, users
from claimflow.store.billing import PriceInput
from claimflow.workflows.event import TokensGenerationEvent


def make_event(user_id: str, org_code: str | None = None) -> TokensGenerationEvent:
    return tokens_generation_event(
        issuer="http://claimflow.test", user_id=user_id, client_id="app_test", org_code=org_code
    )


@dataclass
class BillingWorld:
    org_code: str
    org_customer: str
    member_id: str
    personal_user_id: str
    personal_customer: str
    plain_org_code: str


async def build_world(services: Services, features: int = 12) -> BillingWorld:
    """Plans ``pro`` (``features`` features, more than one default page) and ``basic``; an
    organization on ``pro`` with a member; a user with personal billing on ``basic``."""
    async with services.db.transaction() as conn:
        for i in range(features):
            await billing.create_feature(
                conn, code=f"feat_{i:02d}", name=f"Feature {i}", kind=FeatureKind.LIMIT
            )
        await billing.create_plan(
            conn,
            code="pro",
            name="Pro",
            prices=[
                PriceInput(f"feat_{i:02d}", f"Pro {i}", fixed_charge=10, entitlement_limit_max=i)
                for i in range(features)
            ],
        )
        await billing.create_plan(
            conn, code="basic", name="Basic", prices=[PriceInput("feat_00", "Basic 0")]
        )
        org = await organizations.create_organization(conn, name="Acme")
        plain = await organizations.create_organization(conn, name="No billing")
        member = await users.create_user(conn, email="member@acme.test")
        await organizations.add_member(conn, org.code, member.id)
        await organizations.add_member(conn, plain.code, member.id)
        customer = await billing.create_customer(conn, org_code=org.code)
        await billing.create_agreement(conn, customer_id=customer.id, plan_code="pro")
        person = await users.create_user(conn, email="solo@home.test")
        personal = await billing.create_customer(conn, user_id=person.id)
        await billing.create_agreement(conn, customer_id=personal.id, plan_code="basic")
    return BillingWorld(org.code, customer.id, member.id, person.id, personal.id, plain.code)


@pytest.fixture
async def world(services: Services) -> BillingWorld:
    return await build_world(services)


# -- a Kinde-compatible Management API on loopback -----------------------------------------


ENTITLEMENT_COUNT = 12


def _entitlement(i: int) -> dict[str, Any]:
    return {
        "id": f"entitlement_{i:02d}",
        "fixed_charge": 35,
        "price_name": f"Price {i}",
        "unit_amount": None,
        "feature_code": f"feat_{i:02d}",
        "feature_name": f"Feature {i}",
        "entitlement_limit_max": i,
        "entitlement_limit_min": None,
    }


AGREEMENT = {
    "id": "agreement_0001",
    "plan_code": "pro",
    "expires_on": None,
    "billing_group_id": "sbg_01",
    "entitlements": [{"feature_code": "feat_00", "entitlement_id": "entitlement_00"}],
}


@dataclass
class FakeKinde:
    """Behaviour per path: ``ok`` or a fault; ``requests`` records what arrived."""

    base_url: str = ""
    modes: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    token_requests: int = 0

    def received(self, path: str) -> list[dict[str, list[str]]]:
        return [q for p, q, _ in self.requests if p == path]

    def customer_id(self, org_code: str) -> str:
        return f"customer_for_{org_code}"


def _fault(mode: str) -> Response | None:
    if mode == "500":
        return JSONResponse({"errors": [{"code": "INTERNAL", "message": "boom"}]}, 500)
    if mode == "400":
        return JSONResponse({"errors": [{"code": "BAD_REQUEST", "message": "nope"}]}, 400)
    if mode == "403":
        return JSONResponse({"errors": [{"code": "FORBIDDEN", "message": "no scope"}]}, 403)
    if mode == "404":
        return JSONResponse({"errors": {"code": "NOT_FOUND", "message": "none"}}, 404)
    if mode == "invalid_json":
        return Response(b'{"code": "OK", "entitle', media_type="application/json")
    if mode == "not_object":
        return JSONResponse([1, 2, 3])
    return None


def fake_kinde_app(state: FakeKinde) -> Starlette:
    async def record(request: Request) -> None:
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        state.requests.append((request.url.path, query, request.url.query))
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)

    async def token(request: Request) -> Response:
        state.token_requests += 1
        form = await request.form()
        if form.get("client_secret") != "wf-secret":
            return JSONResponse({"error": "invalid_client"}, 401)
        return JSONResponse({"access_token": "kinde-m2m-token", "expires_in": 3600})

    async def organization(request: Request) -> Response:
        await record(request)
        fault = _fault(state.modes.get("organization", "ok"))
        if fault is not None:
            return fault
        code = request.query_params["code"]
        if state.modes.get("organization") == "no_customer":
            return JSONResponse({"code": code, "name": "X", "billing": None})
        return JSONResponse(
            {"code": code, "name": "X", "billing": {"billing_customer_id": state.customer_id(code)}}
        )

    async def user(request: Request) -> Response:
        await record(request)
        fault = _fault(state.modes.get("user", "ok"))
        if fault is not None:
            return fault
        user_id = request.query_params["id"]
        return JSONResponse({"id": user_id, "billing": {"customer_id": f"customer_of_{user_id}"}})

    async def entitlements(request: Request) -> Response:
        await record(request)
        mode = state.modes.get("entitlements", "ok")
        fault = _fault(mode)
        if fault is not None:
            return fault
        if mode == "wrong_shape":
            return JSONResponse({"code": "OK", "has_more": False, "entitlements": {"a": 1}})
        if mode == "null":
            return JSONResponse({"code": "OK", "has_more": False, "entitlements": None})
        if mode == "null_item":
            return JSONResponse({"code": "OK", "has_more": False, "entitlements": [None]})
        if mode == "string_limit":
            bad = _entitlement(0) | {"entitlement_limit_max": "10"}
            return JSONResponse({"code": "OK", "has_more": False, "entitlements": [bad]})
        size = int(request.query_params.get("page_size", "10"))
        after = request.query_params.get("starting_after")
        items = [_entitlement(i) for i in range(ENTITLEMENT_COUNT)]
        start = next((i + 1 for i, e in enumerate(items) if e["id"] == after), 0)
        page = items[start : start + size]
        return JSONResponse(
            {
                "code": "OK",
                "message": "Success",
                "has_more": start + size < len(items),
                "entitlements": page,
                "plans": [{"code": "pro", "subscribed_on": "2024-11-18T13:32:03+11:00"}],
            }
        )

    async def agreements(request: Request) -> Response:
        await record(request)
        fault = _fault(state.modes.get("agreements", "ok"))
        if fault is not None:
            return fault
        return JSONResponse(
            {"code": "OK", "message": "Success", "has_more": False, "agreements": [AGREEMENT]}
        )

    return Starlette(
        routes=[
            Route("/oauth2/token", token, methods=["POST"]),
            Route("/api/v1/organization", organization),
            Route("/api/v1/user", user),
            Route("/api/v1/billing/entitlements", entitlements),
            Route("/api/v1/billing/agreements", agreements),
        ]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def kinde() -> AsyncIterator[FakeKinde]:
    state = FakeKinde()
    port = free_port()
    config = uvicorn.Config(
        fake_kinde_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    state.base_url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    await task


def decode(body: bytes) -> Any:
    return json.loads(body)
