"""Operating a claimflow server: health and readiness, Prometheus metrics, traces, JSON logs.

Call sites elsewhere are one line each (``metrics.record_*``); the HTTP-level measurements are
ASGI middleware, so the grants and the Management API routes carry no instrumentation. The
root is lazy (PEP 562): the engine, the cache and the sign-in code import ``metrics`` without
pulling in the routes, which depend on the service container that depends on them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claimflow.observability import metrics
    from claimflow.observability.health import router
    from claimflow.observability.http_metrics import HTTPMetricsMiddleware
    from claimflow.observability.logs import JsonFormatter, uvicorn_log_config
    from claimflow.observability.request_id import RequestIdMiddleware, current_request_id

_EXPORTS = {
    "HTTPMetricsMiddleware": "claimflow.observability.http_metrics",
    "JsonFormatter": "claimflow.observability.logs",
    "RequestIdMiddleware": "claimflow.observability.request_id",
    "current_request_id": "claimflow.observability.request_id",
    "router": "claimflow.observability.health",
    "uvicorn_log_config": "claimflow.observability.logs",
}

__all__ = [
    "HTTPMetricsMiddleware",
    "JsonFormatter",
    "RequestIdMiddleware",
    "current_request_id",
    "metrics",
    "router",
    "uvicorn_log_config",
]


def __getattr__(name: str) -> Any:
    if name == "metrics":
        return import_module("claimflow.observability.metrics")
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
