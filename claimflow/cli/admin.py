"""``claimflow init``: a fresh deployment's database and its first Management API client."""

from __future__ import annotations

import asyncio
import json

import typer

from claimflow.cli.options import DATABASE_URL_OPTION, database_label, settings_from_flags
from claimflow.domain import Application, ApplicationType
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import applications
from claimflow.store import migrate as apply_migrations

INIT_APPLICATION_NAME = "Management API (claimflow init)"


async def create_management_application(settings: Settings) -> tuple[Application, str]:
    """An M2M application granted every Management API scope, and its one-time secret.

    Also creates the first signing key, so the first token request does not pay for it.
    """
    services = build_services(settings)
    try:
        await services.keys.ensure_active_key()
        async with services.db.transaction() as conn:
            app, secret = await applications.create_application(
                conn,
                name=INIT_APPLICATION_NAME,
                type=ApplicationType.M2M,
                scopes=ALL_MANAGEMENT_SCOPES,
            )
    finally:
        await services.close()
    assert secret is not None
    return app, secret


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        as_json: bool = typer.Option(
            False, "--json", help='Print only {"client_id": .., "client_secret": ..}.'
        ),
        database_url: str | None = DATABASE_URL_OPTION,
    ) -> None:
        """Create the database and an M2M application with every Management API scope.

        The client secret is printed once and stored only as a digest: keep it. Each run creates
        one more application (to replace a lost secret, create a new one and delete the old).
        """
        settings = settings_from_flags(database_url)
        settings.resolved_secret_key()
        apply_migrations(settings.database_url)
        application, secret = asyncio.run(create_management_application(settings))
        if as_json:
            typer.echo(json.dumps({"client_id": application.client_id, "client_secret": secret}))
            return
        issuer = settings.public_issuer()
        typer.echo(f"Database ready: {database_label(settings.database_url)}")
        typer.echo(f"Created the M2M application {INIT_APPLICATION_NAME!r}.")
        typer.echo(f"  client_id:     {application.client_id}")
        typer.echo(f"  client_secret: {secret}")
        typer.echo("The secret is shown only now; it is stored as a digest.")
        typer.echo("Get a Management API token:")
        typer.echo(
            f"  curl -s -X POST {issuer}/oauth2/token -d grant_type=client_credentials "
            f"-d client_id={application.client_id} -d client_secret={secret} "
            f"-d audience={issuer}/api"
        )
