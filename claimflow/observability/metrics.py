"""The Prometheus metrics of a claimflow server, and one-line hooks to record them.

The metric objects live here so that the grants, the cache, the sign-in throttle and the
workflow engine record with one call each and never import ``prometheus_client`` themselves.
Under ``claimflow serve --workers N`` the serve command points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh directory before the workers start; ``prometheus_client`` then writes each worker's
samples there and ``/metrics`` sums them (``multiprocess.MultiProcessCollector``), so a scrape of
any worker sees the whole server.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a warm token request takes milliseconds, a workflow's limit is seconds."""

TOKEN_REQUESTS = Counter(
    "claimflow_token_requests",
    "Token endpoint requests (RFC 6749 §3.2) by grant type and outcome (issued or the error code).",
    ["grant", "outcome"],
)
TOKEN_REQUEST_SECONDS = Histogram(
    "claimflow_token_request_seconds",
    "Time to answer a token request, by grant type.",
    ["grant"],
    buckets=LATENCY_BUCKETS,
)
WORKFLOW_RUNS = Counter(
    "claimflow_workflow_runs", "Workflow runs by workflow and outcome.", ["workflow", "outcome"]
)
WORKFLOW_RUN_SECONDS = Histogram(
    "claimflow_workflow_run_seconds",
    "Duration of workflow runs, by workflow.",
    ["workflow"],
    buckets=LATENCY_BUCKETS,
)
WORKFLOW_SKIPS = Counter(
    "claimflow_workflow_skips",
    "Workflows not run because their precondition did not hold for the event (no run record).",
    ["workflow"],
)
BILLING_CACHE_EVENTS = Counter(
    "claimflow_billing_cache",
    "Billing cache events: hit, miss, load, stale_serve, invalidation.",
    ["event"],
)
MANAGEMENT_API_REQUESTS = Counter(
    "claimflow_management_api_requests",
    "Management API requests by method, route template and HTTP status.",
    ["method", "route", "status"],
)
SIGN_IN_FAILURES = Counter(
    "claimflow_sign_in_failures", "Password sign-ins refused for wrong credentials."
)
SIGN_IN_LOCKED = Counter(
    "claimflow_sign_in_locked", "Password sign-ins refused because the throttle locked the key."
)

BillingCacheEvent = Literal["hit", "miss", "load", "stale_serve", "invalidation"]


_token_children: dict[tuple[str, str], tuple[Any, Any]] = {}
"""The labelled children of the two token metrics per (grant, outcome), as for workflows below:
one token request records both, and ``labels()`` costs more than the increment itself."""


def _count_and_time(
    children: dict[tuple[str, str], tuple[Any, Any]],
    counter: Counter,
    histogram: Histogram,
    label: str,
    name: str,
    outcome: str,
    seconds: float,
) -> None:
    """Count one event by (name, outcome) and time it by name, through cached children."""
    pair = children.get((name, outcome))
    if pair is None:
        pair = children[(name, outcome)] = (
            counter.labels(**{label: name, "outcome": outcome}),
            histogram.labels(**{label: name}),
        )
    count, timing = pair
    count.inc()
    timing.observe(seconds)


def record_token_request(grant: str, outcome: str, seconds: float) -> None:
    _count_and_time(
        _token_children, TOKEN_REQUESTS, TOKEN_REQUEST_SECONDS, "grant", grant, outcome, seconds
    )


_workflow_children: dict[tuple[str, str], tuple[Any, Any]] = {}
"""The labelled children of the two workflow metrics, looked up once per (workflow, outcome):
``labels()`` takes a lock and builds its key on every call, and a warm token records a run."""


def record_workflow_run(workflow: str, outcome: str, seconds: float) -> None:
    _count_and_time(
        _workflow_children,
        WORKFLOW_RUNS,
        WORKFLOW_RUN_SECONDS,
        "workflow",
        workflow,
        outcome,
        seconds,
    )


def record_workflow_skip(workflow: str) -> None:
    WORKFLOW_SKIPS.labels(workflow=workflow).inc()


_billing_cache_children: dict[str, Any] = {}
"""The billing cache counter's children, looked up once per event (a warm token records a hit)."""


def record_billing_cache(event: BillingCacheEvent, count: int = 1) -> None:
    child = _billing_cache_children.get(event)
    if child is None:
        child = _billing_cache_children[event] = BILLING_CACHE_EVENTS.labels(event=event)
    child.inc(count)


def record_management_api_request(method: str, route: str, status: int) -> None:
    MANAGEMENT_API_REQUESTS.labels(method=method, route=route, status=str(status)).inc()


def record_sign_in_failure() -> None:
    SIGN_IN_FAILURES.inc()


def record_sign_in_locked() -> None:
    SIGN_IN_LOCKED.inc()


def exposition() -> tuple[bytes, str]:
    """The text exposition format of every metric, summed over workers in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
