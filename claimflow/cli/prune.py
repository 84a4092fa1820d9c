"""``claimflow prune``: delete expired codes, sessions, throttle windows and revoked tokens.

The server does the same every hour; the command is for a cron job when the server is not the
only writer, or to shrink the tables before a backup.
"""

from __future__ import annotations

import asyncio

import typer

from claimflow.cli.options import DATABASE_URL_OPTION, settings_from_flags
from claimflow.settings import Settings
from claimflow.store import Database
from claimflow.store import migrate as apply_migrations
from claimflow.store.housekeeping import PrunedRows, prune_expired


async def _prune(settings: Settings) -> PrunedRows:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as conn:
            return await prune_expired(conn)
    finally:
        await db.dispose()


def register(app: typer.Typer) -> None:
    @app.command()
    def prune(database_url: str | None = DATABASE_URL_OPTION) -> None:
        """Delete expired authorization codes, sessions, sign-in throttles and tokens."""
        settings = settings_from_flags(database_url)
        apply_migrations(settings.database_url)
        pruned = asyncio.run(_prune(settings))
        typer.echo(
            f"pruned {pruned.total} rows: {pruned.authorization_codes} authorization codes, "
            f"{pruned.sessions} sessions, {pruned.login_attempts} sign-in throttles, "
            f"{pruned.revoked_tokens} revoked access tokens, "
            f"{pruned.refresh_tokens} refresh tokens"
        )
