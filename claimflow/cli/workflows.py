"""``claimflow workflows``: what is active, recent runs, and a dry run against real data."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
