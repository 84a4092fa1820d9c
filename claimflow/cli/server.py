"""``claimflow serve`` and ``claimflow migrate``."""

from __future__ import annotations

import os

import typer
import uvicorn

from claimflow.settings import Settings
from claimflow.store import migrate as apply_migrations


def _settings(database_url: str | None, **flags: object) -> Settings:
    values = {k: v for k, v in flags.items() if v is not None}
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    @app.command()
    def migrate(
        database_url: str | None = typer.Option(None, help="Overrides CLAIMFLOW_DATABASE_URL."),
    ) -> None:
        """Apply the database migrations (Alembic) up to the newest."""
        settings = _settings(database_url)
        apply_migrations(settings.database_url)
        typer.echo(f"migrated {settings.database_url.split('@')[-1]}")

    @app.command()
    def serve(
        host: str | None = typer.Option(None, help="Interface to bind (CLAIMFLOW_HOST)."),
        port: int | None = typer.Option(None, help="Port to bind (CLAIMFLOW_PORT)."),
        workers: int = typer.Option(1, help="Worker processes; >1 needs PostgreSQL and Redis."),
        database_url: str | None = typer.Option(None, help="Overrides CLAIMFLOW_DATABASE_URL."),
        issuer: str | None = typer.Option(None, help="Public base URL (CLAIMFLOW_ISSUER)."),
    ) -> None:
        """Migrate the database, then serve the provider and the Management API."""
        settings = _settings(database_url, host=host, port=port, issuer=issuer)
        settings.resolved_secret_key()
        apply_migrations(settings.database_url)
        # Workers re-read settings from the environment: pass on what flags decided.
        os.environ["CLAIMFLOW_DATABASE_URL"] = settings.database_url
        os.environ["CLAIMFLOW_ISSUER"] = settings.public_issuer()
        os.environ["CLAIMFLOW_SECRET_KEY"] = settings.resolved_secret_key()
        uvicorn.run(
            "claimflow.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            proxy_headers=True,
        )
