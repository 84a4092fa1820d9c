"""The ``claimflow`` command: serve, migrate, init, demo, import, prune, keys, workflows."""

from __future__ import annotations

import typer

from claimflow.cli import admin, demo, importer, keys, prune, server, workflows
from claimflow.cli.problems import ClaimflowGroup

app = typer.Typer(
    name="claimflow",
    cls=ClaimflowGroup,
    help="A self-hostable OpenID Connect provider whose tokens carry organization billing.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
admin.register(app)
demo.register(app)
importer.register(app)
prune.register(app)
app.add_typer(keys.app, name="keys", help="Signing keys: list and rotate.")
app.add_typer(workflows.app, name="workflows", help="Token-generation workflows and their runs.")


def main() -> None:
    app()
