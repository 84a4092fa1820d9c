"""Property: no request, valid or not, gets a 5xx or a status ``/openapi.json`` does not list.

Schemathesis generates requests from our own ``/openapi.json`` (positive and negative cases)
for every operation (the Management API, the Account API, the OAuth and OIDC endpoints); they
go through ``httpx.ASGITransport`` to a real app on a SQLite file seeded with a small business,
with an M2M token carrying every management scope. Each response passes schemathesis's
``not_a_server_error`` and ``status_code_conformance`` checks (the document lists the statuses
each operation really answers, ``claimflow/openapi_errors.py``), and each error of Kinde's APIs
has Kinde's envelope. The number of examples per operation is bounded so the whole property runs
in well under a minute and a half.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from claimflow.app import create_app
from claimflow.middleware import speaks_kinde_envelope
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client
from tests.management.catalogue import make_org, make_plan, make_user

EXAMPLES_PER_OPERATION = 20


CHECKS = [not_a_server_error, status_code_conformance]


def check_envelope(response: httpx.Response, label: str) -> None:
    """A Kinde API's answer is JSON, and an error carries Kinde's envelope."""
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


def test_every_status_is_documented_none_is_5xx_and_kinde_errors_carry_the_envelope(
    db_url: str,
) -> None:
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
        served = loop.run_until_complete(http.get("/openapi.json"))
        schema = schemathesis.openapi.from_dict(served.json())
        operations = list(map(ok_operation, schema.get_all_operations()))
        assert len([op for op in operations if op.path.startswith("/api/v1/")]) >= 30
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
                case.validate_response(response, checks=CHECKS)
                if speaks_kinde_envelope(case.operation.path):
                    check_envelope(response, case.operation.label)

            property_holds()
    finally:
        loop.run_until_complete(http.aclose())
        loop.run_until_complete(services.close())
        loop.close()
