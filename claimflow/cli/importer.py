"""``claimflow import FILE``: load a business description in one transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from claimflow.cli.options import DATABASE_URL_OPTION, database_label, settings_from_flags
from claimflow.seed import (
    BusinessData,
    ImportSummary,
    InvalidBusinessData,
    import_business_data,
    load_business_file,
)
from claimflow.settings import Settings
from claimflow.store import Database
from claimflow.store import migrate as apply_migrations

PROGRESS_THRESHOLD = 200
"""Files with more items than this get a progress bar; small ones would only flicker."""


async def _import(settings: Settings, data: BusinessData, console: Console) -> ImportSummary:
    db = Database(settings.database_url)
    try:
        if data.item_count <= PROGRESS_THRESHOLD:
            return await import_business_data(db, data)
        columns = (
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("import", total=data.item_count)
            return await import_business_data(db, data, lambda n: progress.advance(task, n))
    finally:
        await db.dispose()


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_file(
        file: Annotated[Path, typer.Argument(help="A YAML or JSON business description.")],
        database_url: str | None = DATABASE_URL_OPTION,
    ) -> None:
        """Import features, plans, organizations, users, billing and applications from FILE.

        The whole file is one transaction: on any error nothing is written. See
        claimflow/demo.yaml for the format.
        """
        console = Console(stderr=True)
        settings = settings_from_flags(database_url)
        try:
            data = load_business_file(file)
        except InvalidBusinessData as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        apply_migrations(settings.database_url)
        try:
            summary = asyncio.run(_import(settings, data, console))
        except InvalidBusinessData as exc:
            console.print(
                f"[red]error:[/red] {escape(str(exc))}\nNothing was imported.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from exc
        typer.echo(
            f"imported {file} into {database_label(settings.database_url)}: {summary.describe()}"
        )
