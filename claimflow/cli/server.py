"""``claimflow serve`` and ``claimflow migrate``."""

from __future__ import annotations

import os

import typer
import uvicorn

from claimflow.cli.options import DATABASE_URL_OPTION, database_label, settings_from_flags
from claimflow.store import migrate as apply_migrations

WORKER_HEALTHCHECK_SECONDS = 60


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
    ) -> None:
        """Migrate the database, then serve the provider and the Management API."""
        settings = settings_from_flags(database_url, host=host, port=port, issuer=issuer)
        if workers > 1 and settings.database_url.startswith("sqlite"):
            typer.echo(
                "--workers > 1 needs a shared database: set CLAIMFLOW_DATABASE_URL to "
                "PostgreSQL (and CLAIMFLOW_REDIS_URL for the shared billing cache).",
                err=True,
            )
            raise typer.Exit(2)
        secret_key = settings.resolved_secret_key()
        apply_migrations(settings.database_url)
        # Workers build their settings from the environment: pass on what the flags decided.
        os.environ["CLAIMFLOW_DATABASE_URL"] = settings.database_url
        os.environ["CLAIMFLOW_ISSUER"] = settings.public_issuer()
        os.environ["CLAIMFLOW_SECRET_KEY"] = secret_key
        uvicorn.run(
            "claimflow.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            # The app reads X-Forwarded-* itself, from CLAIMFLOW_TRUSTED_PROXIES only; uvicorn's
            # own default would believe any process on 127.0.0.1.
            proxy_headers=False,
            # A worker that has not answered uvicorn's health check in time is killed and
            # replaced; on a busy host importing the app alone can exceed uvicorn's 5 s, and the
            # workers were then replaced forever without ever serving.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            log_level="info",
        )
