"""OpenTelemetry traces: off by default; on, one trace per token request with its workflow runs.

The spans are read from the SDK's in-memory exporter, installed exactly as ``OTEL_*`` variables
would install the OTLP one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from claimflow.app import create_app
from claimflow.observability.tracing import install_tracing, tracing_requested, uninstall_tracing
from claimflow.services import Services
from tests.conftest import ISSUER
from tests.helpers import management_client
from tests.oidc.flow import exchange, seed_business, sign_in_for_code


@pytest.fixture
async def traced(
    services: Services,
) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    app: FastAPI = create_app(services=services)
    exporter = InMemorySpanExporter()
    assert install_tracing(app, services.db.engine, exporter=exporter)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http, exporter
    finally:
        uninstall_tracing(app)


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "idp"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask_for_it(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing_requested(environ) is on


async def test_a_token_request_is_one_trace_with_a_span_per_workflow_run_and_api_call(
    services: Services, traced: tuple[httpx.AsyncClient, InMemorySpanExporter]
) -> None:
    client, exporter = traced
    biz = await seed_business(services, require_organization=True)
    code = (await sign_in_for_code(client, biz, org_code=biz.org_code))["code"]
    exporter.clear()
    response = await exchange(client, biz, code)
    assert response.status_code == 200, response.text

    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1
    by_id = {span.context.span_id: span for span in spans}
    (root,) = [span for span in spans if span.parent is None]
    assert root.name == "POST /oauth2/token"
    workflow_runs = [span for span in spans if span.name.startswith("workflow ")]
    # user_billing does not apply to an organization's sign-in: no run, no span
    assert [span.name for span in workflow_runs] == ["workflow org_billing"]
    for run in workflow_runs:
        assert ancestors(run, by_id)[-1] == "POST /oauth2/token"
    api_calls = [span for span in spans if span.name.startswith("management_api ")]
    assert api_calls, [span.name for span in spans]
    for call in api_calls:
        assert "workflow org_billing" in ancestors(call, by_id)
    queries = [span for span in spans if span.attributes and "db.statement" in span.attributes]
    assert queries, "no SQLAlchemy spans"
    assert all(ancestors(query, by_id)[-1] == "POST /oauth2/token" for query in queries)


async def test_a_management_api_request_is_a_trace_named_by_its_route(
    services: Services, traced: tuple[httpx.AsyncClient, InMemorySpanExporter]
) -> None:
    client, exporter = traced
    headers = await management_client(client, services)
    exporter.clear()
    response = await client.get("/api/v1/organizations/org_nope/users", headers=headers)
    assert response.status_code == 404
    roots = [span for span in exporter.get_finished_spans() if span.parent is None]
    assert [span.name for span in roots] == ["GET /api/v1/organizations/{org_code}/users"]
    assert roots[0].attributes is not None
    assert (
        roots[0].attributes.get(
            "http.status_code", roots[0].attributes.get("http.response.status_code")
        )
        == 404
    )


async def test_without_otel_variables_the_app_exports_nothing(client: httpx.AsyncClient) -> None:
    from claimflow.observability import tracing

    assert (await client.get("/healthz")).status_code == 200
    assert tracing._provider is None
