"""OpenTelemetry traces, off unless the standard ``OTEL_*`` variables ask for them.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp|console``) set, a server exports one trace per HTTP request: the
FastAPI/ASGI server span, a span per workflow run (``workflow <id>``) and per Management API call
a workflow makes (``management_api <METHOD> <endpoint>``), and the SQLAlchemy, httpx and Redis
client spans under them. ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the
service as everywhere else; ``OTEL_SDK_DISABLED=true`` turns it all off (OpenTelemetry's
"SDK environment variables" specification).

Without those variables nothing is imported beyond this module and ``traced`` awaits its
argument directly, so a deployment that does not trace pays nothing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

INSTRUMENTATION_NAME = "claimflow"
_provider: TracerProvider | None = None


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter_from_environment() -> SpanExporter:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself


def install_tracing(
    app: FastAPI,
    engine: AsyncEngine | Sequence[AsyncEngine],
    exporter: SpanExporter | None = None,
) -> bool:
    """Instrument ``app`` and its clients when asked; True when tracing is on.

    ``exporter`` (a test's in-memory exporter) turns tracing on regardless of the environment
    and exports each span as it ends.
    """
    global _provider
    if exporter is None and not tracing_requested():
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "claimflow")})
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter_from_environment()))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    # Its declared range stops below SQLAlchemy 2.1; the engine events it hooks are unchanged
    # in 2.1 (tests/observability/test_tracing.py checks the query spans arrive).
    from sqlalchemy.ext.asyncio import AsyncEngine as Engine

    engines = [engine] if isinstance(engine, Engine) else list(engine)
    SQLAlchemyInstrumentor().instrument(
        engines=[e.sync_engine for e in engines], tracer_provider=provider, skip_dep_check=True
    )
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return True


def uninstall_tracing(app: FastAPI) -> None:
    """Undo ``install_tracing`` (tests; a server keeps tracing until it exits)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FastAPIInstrumentor.uninstrument_app(app)
    SQLAlchemyInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


async def traced(name: str, operation: Awaitable[T], attributes: Mapping[str, Any]) -> T:
    """Await ``operation`` inside a span ``name`` when tracing is on; else just await it."""
    if _provider is None:
        return await operation
    tracer = _provider.get_tracer(INSTRUMENTATION_NAME)
    with tracer.start_as_current_span(name, attributes=dict(attributes)):
        return await operation
