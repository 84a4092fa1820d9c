"""``claimflow keys``: list the signing keys and rotate them.

Rotation adds a new active key and retires the current one; the retired key stays in the JWKS
until every token it signed has expired (``KeyManager.rotate``), so resource servers that
cache the JWKS keep verifying tokens throughout a rotation.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from claimflow.cli.options import DATABASE_URL_OPTION, settings_from_flags
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import migrate as apply_migrations
from claimflow.store._rows import utcnow
from claimflow.store.oidc_signing_keys import SigningKeyInfo, list_signing_keys
from claimflow.tokens.keys import SUPPORTED_ALGORITHMS

app = typer.Typer(no_args_is_help=True)


def _state(key: SigningKeyInfo, now: datetime) -> str:
    if key.retired_on is None:
        return "active"
    if key.expires_on is not None and key.expires_on <= now:
        return "expired"
    return "retired (published)"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


async def _list(settings: Settings) -> list[SigningKeyInfo]:
    services = build_services(settings)
    try:
        await services.keys.ensure_active_key()
        async with services.db.connect() as conn:
            return await list_signing_keys(conn)
    finally:
        await services.close()


async def _rotate(settings: Settings, algorithm: str | None) -> str:
    services = build_services(settings)
    try:
        key = await services.keys.rotate(algorithm)
        return key.kid
    finally:
        await services.close()


@app.command("list")
def list_keys(database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Show every signing key: kid, algorithm, state, created, retired, published until."""
    settings = settings_from_flags(database_url)
    settings.resolved_secret_key()
    apply_migrations(settings.database_url)
    keys = asyncio.run(_list(settings))
    now = utcnow()
    typer.echo(
        f"{'kid':<18} {'alg':<6} {'state':<20} {'created':<21} {'retired':<21} published until"
    )
    for key in keys:
        typer.echo(
            f"{key.kid:<18} {key.algorithm:<6} {_state(key, now):<20} "
            f"{_when(key.created_on):<21} {_when(key.retired_on):<21} {_when(key.expires_on)}"
        )


@app.command()
def rotate(
    algorithm: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(SUPPORTED_ALGORITHMS)}; default from settings."),
    ] = None,
    database_url: str | None = DATABASE_URL_OPTION,
) -> None:
    """Add a new active signing key; the old one stays published until its tokens expire."""
    if algorithm is not None and algorithm not in SUPPORTED_ALGORITHMS:
        typer.echo(f"error: unsupported algorithm {algorithm!r}", err=True)
        raise typer.Exit(2)
    settings = settings_from_flags(database_url)
    settings.resolved_secret_key()
    apply_migrations(settings.database_url)
    kid = asyncio.run(_rotate(settings, algorithm))
    typer.echo(f"rotated: new active key {kid} ({algorithm or settings.signing_algorithm})")
