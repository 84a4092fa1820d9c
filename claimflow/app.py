"""ASGI application factory: the app is layers and routers you can read top to bottom."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware import Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from claimflow import account, management, observability, oidc, openapi_errors, unavailable
from claimflow.events.runner import start_webhook_delivery
from claimflow.management import errors as management_errors
from claimflow.middleware import BodyLimit, Cors, DefaultResponseHeaders, DirectRoutes, HostCheck
from claimflow.observability import tracing
from claimflow.oidc import cors as oidc_cors
from claimflow.oidc import errors as oauth_errors
from claimflow.oidc import token as token_endpoint
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store.housekeeping import prune_expired

HOUSEKEEPING_INTERVAL_SECONDS = 3600.0
"""How often a running server deletes expired codes, sessions and tokens."""

log = logging.getLogger("claimflow")


async def _housekeeping(services: Services) -> None:
    """Prune expired rows every ``HOUSEKEEPING_INTERVAL_SECONDS`` until cancelled at shutdown."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_SECONDS)
        try:
            async with services.db.transaction() as conn:
                pruned = await prune_expired(conn)
        except (SQLAlchemyError, ConnectionError, TimeoutError) as exc:
            log.error("housekeeping failed (%s); trying again at the next interval", exc)
            continue
        log.info("housekeeping: pruned %d expired rows", pruned.total)


def _freeze_startup_objects() -> None:
    """Move every object alive after start-up out of the garbage collector's sight, once.

    The modules, routes, compiled statements and schemas a server holds (about 200,000
    objects) live as long as the process, yet each full collection walks them all: about
    120 ms on a 2-core machine, every few thousand requests, a stall for every request in
    flight (``bench/README.md``). ``gc.freeze()`` puts them in the permanent generation, as
    Python's documentation suggests for long-lived servers
    (https://docs.python.org/3/library/gc.html#gc.freeze); what requests allocate is
    collected as before. Once per process: later calls would also freeze what earlier
    apps of the same process (tests, the CLI) left behind.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def _layers(services: Services) -> list[Middleware]:
    """The ASGI layers around the routes, outermost first."""
    settings = services.settings
    proxies = (
        # Outermost, so every layer below sees the client's address and scheme.
        [Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)]
        if settings.trusted_proxies
        else []
    )
    return [
        *proxies,
        Middleware(observability.RequestIdMiddleware),
        Middleware(observability.HTTPMetricsMiddleware),
        Middleware(DefaultResponseHeaders),
        Middleware(HostCheck, issuer=services.issuer, extra_hosts=settings.allowed_hosts),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        Middleware(
            Cors, paths=oidc_cors.CORS_PATHS, allowed_origins=oidc_cors.allowed_origins(services)
        ),
        # Innermost: the token endpoint past FastAPI's router (``middleware/direct_routes.py``).
        Middleware(DirectRoutes, routes={("POST", "/oauth2/token"): token_endpoint.token_endpoint}),
    ]


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the ASGI app; pass ``services`` to share them with a test or a CLI command."""
    services = services or build_services(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await unavailable.prepare_signing_key(services.keys)
        await services.workflows.warm_up()  # runner processes for untrusted workflows
        _freeze_startup_objects()
        housekeeping = asyncio.create_task(_housekeeping(services))
        delivery = start_webhook_delivery(
            services.settings, services.db, services.keys, services.issuer
        )
        try:
            yield
        finally:
            for task in (housekeeping, delivery):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await services.close()

    app = FastAPI(
        title="claimflow",
        version="0.1.0",
        description=(
            "OpenID Connect provider and Kinde-compatible Management API whose tokens carry "
            "what the signed-in organization has paid for."
        ),
        lifespan=lifespan,
        middleware=_layers(services),
        # Swagger UI and ReDoc load their scripts from a CDN; off unless asked for.
        docs_url="/docs" if services.settings.api_docs_enabled else None,
        redoc_url="/redoc" if services.settings.api_docs_enabled else None,
    )
    app.state.services = services
    management_errors.install(app)
    oauth_errors.install(app)
    unavailable.install(app)
    app.include_router(oidc.router)
    app.include_router(management.router)
    app.include_router(management.kinde_webhooks_router)
    app.include_router(observability.router)
    tracing.install_tracing(app, services.db.engines)
    app.include_router(account.router)
    openapi_errors.install(app)
    services.workflows.serve_management_api(app)  # the in-process Management API transport
    return app
