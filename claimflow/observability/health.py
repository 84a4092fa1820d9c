"""``/healthz`` (the process answers), ``/readyz`` (it can do its job) and ``/metrics``.

Liveness and readiness are separate on purpose (Kubernetes' probes): a server whose database is
down is alive — restarting it would not help, and it recovers by itself — but not ready, so a
load balancer should send its traffic elsewhere until the checks pass again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from claimflow.observability.metrics import exposition
from claimflow.store import Database
from claimflow.store import tables as t

CHECK_TIMEOUT_SECONDS = 2.0
"""Each readiness check; a probe must answer well within the prober's own timeout."""

router = APIRouter(tags=["operations"])
NO_STORE = {"Cache-Control": "no-store"}


def _failure(exc: BaseException) -> str:
    return f"unavailable ({type(exc).__name__})"


async def _database_and_key(db: Database) -> tuple[str, str]:
    async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), db.connect() as conn:
        keys = t.signing_keys.c
        active = await conn.scalar(select(keys.kid).where(keys.retired_on.is_(None)).limit(1))
    return "ok", "ok" if active is not None else "no active signing key"


async def _redis(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await client.ping()
        return "ok"
    finally:
        await client.aclose()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get("/readyz", summary="Readiness: database, Redis (when configured), signing key")
async def readyz(request: Request) -> JSONResponse:
    db: Database = request.app.state.services.db
    redis_url: str | None = request.app.state.services.settings.redis_url
    checks: dict[str, str] = {}
    try:
        checks["database"], checks["signing_key"] = await _database_and_key(db)
    except Exception as exc:  # any failure of the check is the answer, not an error
        checks["database"] = _failure(exc)
        checks["signing_key"] = "unknown (database unavailable)"
    if redis_url:
        try:
            checks["redis"] = await _redis(redis_url)
        except Exception as exc:
            checks["redis"] = _failure(exc)
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)")
async def metrics() -> Response:
    payload, content_type = exposition()
    return Response(payload, media_type=content_type, headers=NO_STORE)
