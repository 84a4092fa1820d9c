"""What every ``claimflow`` command shares: the ``--database-url`` flag and settings from flags.

Flags beat ``CLAIMFLOW_*`` environment variables, which beat the config file; each command
builds its settings through ``settings_from_flags`` so that order holds everywhere.
"""

from __future__ import annotations

import typer

from claimflow.settings import Settings


def settings_from_flags(database_url: str | None = None, **flags: object) -> Settings:
    """Settings with the flags given on the command line on top (flags > env > config file)."""
    values = {k: v for k, v in flags.items() if v is not None}
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


def database_label(url: str) -> str:
    """The database URL without credentials, for messages."""
    return url.split("@")[-1] if "@" in url else url


DATABASE_URL_OPTION = typer.Option(None, help="Overrides CLAIMFLOW_DATABASE_URL.")
