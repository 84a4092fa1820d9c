"""What every ``claimflow`` command shares: the ``--database-url`` flag and settings from flags.

Flags beat ``CLAIMFLOW_*`` environment variables, which beat the config file; each command
builds its settings through ``settings_from_flags`` so that order holds everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from claimflow.cli.problems import record_database_url
from claimflow.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

DEMO_DATABASE_FILE = "claimflow-demo.db"
DEMO_DATABASE_URL = f"sqlite+aiosqlite:///./{DEMO_DATABASE_FILE}"
DEFAULT_DATABASE_FILE = "claimflow.db"


def _deployment_configured() -> bool:
    """Whether the environment names a database or a config file configures this directory."""
    if os.environ.get("CLAIMFLOW_DATABASE_URL") or os.environ.get("CLAIMFLOW_CONFIG"):
        return True
    return Path(DEFAULT_CONFIG_FILE).is_file()


def settings_from_flags(
    database_url: str | None = None, *, demo_fallback: bool = True, **flags: object
) -> Settings:
    """Settings with the flags given on the command line on top (flags > env > config file).

    With ``demo_fallback``, a directory where ``claimflow demo`` ran and no other database was
    ever chosen or created uses the demo's database (said on stderr), so ``claimflow keys list``
    or ``workflows runs`` after ``make demo`` look at the demo, not at a new empty file.
    """
    values = {k: v for k, v in flags.items() if v is not None}
    if database_url is not None:
        values["database_url"] = database_url
    elif (
        demo_fallback
        and not _deployment_configured()
        and Path(DEMO_DATABASE_FILE).is_file()
        and not Path(DEFAULT_DATABASE_FILE).exists()
    ):
        typer.echo(
            f"using the demo's database ./{DEMO_DATABASE_FILE} "
            "(set CLAIMFLOW_DATABASE_URL to use another)",
            err=True,
        )
        values["database_url"] = DEMO_DATABASE_URL
    settings = load_settings(**values)
    record_database_url(settings.database_url)
    return settings


def database_label(url: str) -> str:
    """The database URL without credentials, for messages."""
    return url.split("@")[-1] if "@" in url else url


DATABASE_URL_OPTION = typer.Option(None, help="Overrides CLAIMFLOW_DATABASE_URL.")
