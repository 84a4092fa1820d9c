"""Property: no Management API request, valid or not, gets a 5xx; every 4xx has the envelope.

Schemathesis generates requests from our own ``/openapi.json`` (positive and negative cases)
for every ``/api/v1`` operation; they go through ``httpx.ASGITransport`` to a real app on a
SQLite file seeded with a small business, with a token carrying every management scope. The
number of examples per operation is bounded so the whole property runs in seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client
from tests.management.catalogue import make_org, make_plan, make_user

EXAMPLES_PER_OPERATION = 20


def check(response: httpx.Response, label: str) -> None:
    assert response.status_code < 500, (label, response.status_code, response.text[:500])
    assert response.headers["content-type"] == "application/json", label
    if response.status_code >= 400:
        errors = response.json()["errors"]
        assert isinstance(errors, list) and errors, label
        for error in errors:
            assert isinstance(error["code"], str) and isinstance(error["message"], str), label


def request_of(case: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=ISSUER)
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        data = kwargs.pop("data")
        kwargs["content"] = data if isinstance(data, bytes | str) else str(data)
    return kwargs


def ok_operation(result: Any) -> Any:
    """Our own schema must load cleanly; an ``Err`` here is a bug in our OpenAPI document."""
    return result.ok()


def test_no_route_returns_5xx_and_4xx_carry_the_envelope(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    services = build_services(make_settings(db_url))
    app = create_app(services=services)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)

    async def seed() -> None:
        http.headers.update(await management_client(http, services))
        await make_plan(http, "free", {"seats": 1})
        org = await make_org(http, "free")
        await make_user(http, "ada@example.com", org["code"])

    try:
        loop.run_until_complete(seed())
        schema = schemathesis.openapi.from_dict(app.openapi())
        operations = [
            op
            for op in map(ok_operation, schema.get_all_operations())
            if op.path.startswith("/api/v1/")
        ]
        assert len(operations) >= 30
        for operation in operations:
            strategy = st.one_of(
                operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
            )

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def property_holds(case: Any) -> None:
                try:
                    request = http.build_request(**request_of(case))
                except httpx.InvalidURL:
                    # httpx refuses to send a URL component over 64 KiB: no such request can
                    # reach the server, so there is nothing to check.
                    reject()
                response = loop.run_until_complete(http.send(request))
                check(response, case.operation.label)

            property_holds()
    finally:
        loop.run_until_complete(http.aclose())
        loop.run_until_complete(services.close())
        loop.close()
