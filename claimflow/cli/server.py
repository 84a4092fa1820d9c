"""``claimflow serve`` and ``claimflow migrate``."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import typer
import uvicorn

from claimflow.cli.options import DATABASE_URL_OPTION, database_label, settings_from_flags
from claimflow.cli.preflight import check_deployment, ensure_port_free
from claimflow.cli.tls import CertificatePair, check_certificate_pair
from claimflow.observability.logs import uvicorn_log_config
from claimflow.observability.metrics import MULTIPROCESS_DIR_VARIABLE
from claimflow.store import migrate as apply_migrations

WORKER_HEALTHCHECK_SECONDS = 60
"""How long uvicorn's supervisor waits for a worker's answer before killing it as hung.

A spawned worker imports the whole server before it can answer; uvicorn's default (5 s) kills
workers that are merely starting on a busy machine, over and over, and the server never serves.
"""


def logging_options(log_format: str) -> dict[str, Any]:
    """uvicorn's ``log_config`` when ``CLAIMFLOW_LOG_FORMAT`` asks for JSON, else its default."""
    config = uvicorn_log_config(log_format)
    return {"log_config": config} if config is not None else {}


def tls_options(pair: CertificatePair | None) -> dict[str, Any]:
    """uvicorn's TLS arguments for ``pair``; none for plain HTTP."""
    if pair is None:
        return {}
    return {"ssl_certfile": str(pair.certfile), "ssl_keyfile": str(pair.keyfile)}


def register(app: typer.Typer) -> None:
    @app.command()
    def migrate(database_url: str | None = DATABASE_URL_OPTION) -> None:
        """Apply the database migrations (Alembic) up to the newest."""
        settings = settings_from_flags(database_url)
        apply_migrations(settings.database_url)
        typer.echo(f"migrated {database_label(settings.database_url)}")

    @app.command()
    def serve(
        host: str | None = typer.Option(None, help="Interface to bind (CLAIMFLOW_HOST)."),
        port: int | None = typer.Option(None, help="Port to bind (CLAIMFLOW_PORT)."),
        workers: int = typer.Option(1, min=1, help="Worker processes; >1 needs PostgreSQL."),
        database_url: str | None = DATABASE_URL_OPTION,
        issuer: str | None = typer.Option(None, help="Public base URL (CLAIMFLOW_ISSUER)."),
        ssl_certfile: str | None = typer.Option(
            None, help="PEM certificate chain: serve HTTPS (CLAIMFLOW_SSL_CERTFILE)."
        ),
        ssl_keyfile: str | None = typer.Option(
            None, help="PEM private key of --ssl-certfile (CLAIMFLOW_SSL_KEYFILE)."
        ),
    ) -> None:
        """Migrate the database, then serve the provider and the Management API.

        With a certificate the server speaks HTTPS itself and the default issuer is
        ``https://host:port``; behind a TLS-terminating proxy, set ``--issuer`` instead.
        """
        settings = settings_from_flags(
            database_url,
            demo_fallback=False,
            host=host,
            port=port,
            issuer=issuer,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        tls = check_certificate_pair(settings.ssl_certfile, settings.ssl_keyfile)
        if workers > 1 and settings.database_url.startswith("sqlite"):
            typer.echo(
                "--workers > 1 needs a shared database: set CLAIMFLOW_DATABASE_URL to "
                "PostgreSQL (and CLAIMFLOW_REDIS_URL for the shared billing cache).",
                err=True,
            )
            raise typer.Exit(2)
        ensure_port_free(settings.host, settings.port)
        secret_key = settings.resolved_secret_key()
        apply_migrations(settings.database_url)
        check_deployment(settings)
        # Workers build their settings from the environment: pass on what the flags decided.
        os.environ["CLAIMFLOW_DATABASE_URL"] = settings.database_url
        os.environ["CLAIMFLOW_ISSUER"] = settings.public_issuer()
        os.environ["CLAIMFLOW_SECRET_KEY"] = secret_key
        # Workers write their metric samples to one directory that /metrics sums; it must be
        # empty at start (samples of an earlier run would be counted) and is ours to remove.
        metrics_dir = None
        if workers > 1 and not os.environ.get(MULTIPROCESS_DIR_VARIABLE):
            metrics_dir = tempfile.mkdtemp(prefix="claimflow-metrics-")
            os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
        try:
            uvicorn.run(
                "claimflow.app:create_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=workers,
                # The app reads X-Forwarded-* itself, from CLAIMFLOW_TRUSTED_PROXIES only;
                # uvicorn's own default would believe any process on 127.0.0.1.
                proxy_headers=False,
                log_level="info",
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                **tls_options(tls),
                **logging_options(settings.log_format),
            )
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
