"""Failures an operator can fix, printed as one or two lines instead of a traceback.

Every ``claimflow`` command runs inside ``ClaimflowGroup.invoke``: a misconfiguration
(``ConfigurationError``, ``WorkflowConfigError``) or a database that cannot be reached is told
as what is wrong and what to do, on stderr, with a non-zero exit code. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from typer._click.core import Context as ClickContext  # the click typer bundles
from typer.core import TyperGroup

from claimflow.errors import ConfigurationError, WorkflowConfigError

_database_url: ContextVar[str | None] = ContextVar("claimflow_cli_database_url", default=None)
"""The database the running command is about to use, for the messages of ``explain``."""

EXIT_MISCONFIGURED = 2
EXIT_UNAVAILABLE = 1

_INVALID_CATALOG_NAME = "3D000"
_AUTHENTICATION_FAILED = ("28P01", "28000")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``__cause__``, ``__context__``, SQLAlchemy's ``orig``)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                current.__cause__,
                current.__context__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )


def _where(database_url: str | None) -> tuple[str, str, str]:
    """(host:port, database, user) of a server URL, for messages; blanks when unknown."""
    if database_url is None:
        return "the database server", "", ""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return "the database server", "", ""
    return f"{url.host or 'localhost'}:{url.port or 5432}", url.database or "", url.username or ""


def explain_database_failure(exc: BaseException, database_url: str | None) -> str | None:
    """What is wrong with reaching the database, or None when ``exc`` is not about that."""
    address, database, user = _where(database_url)
    fix = "or fix CLAIMFLOW_DATABASE_URL (or --database-url)."
    for cause in _chain(exc):
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate == _INVALID_CATALOG_NAME:
            create = (
                f"createdb -h {address.replace(':', ' -p ')} -U {user or 'postgres'} {database}"
            )
            return f"database {database!r} does not exist on {address}: create it ({create}) {fix}"
        if sqlstate in _AUTHENTICATION_FAILED:
            return f"the database server at {address} refused the credentials of {user!r}: {fix}"
        if isinstance(cause, ConnectionRefusedError):
            return (
                f"cannot connect to the database at {address} (connection refused): "
                f"start PostgreSQL there {fix}"
            )
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the database host of {address}: {fix}"
        if isinstance(cause, TimeoutError):
            return f"the database at {address} did not answer in time: check it is running {fix}"
    for cause in _chain(exc):
        if isinstance(cause, OperationalError | InterfaceError):
            first_line = str(cause.orig or cause).splitlines()[0]
            if database_url is not None and database_url.startswith("sqlite"):
                path = make_url(database_url).database
                return (
                    f"cannot open the SQLite database {path} ({first_line}): its directory must "
                    f"exist and be writable, {fix}"
                )
            return f"cannot use the database at {address} ({first_line}): {fix}"
    return None


def explain(exc: BaseException, database_url: str | None) -> tuple[str, int] | None:
    """The message and exit code for a failure an operator can fix, or None for a bug."""
    if isinstance(exc, ConfigurationError):
        return str(exc), EXIT_MISCONFIGURED
    if isinstance(exc, WorkflowConfigError):
        return (
            f"{exc}; fix CLAIMFLOW_WORKFLOWS_ENABLED or CLAIMFLOW_WORKFLOWS_DIR.",
            EXIT_MISCONFIGURED,
        )
    database = explain_database_failure(exc, database_url)
    if database is not None:
        return database, EXIT_UNAVAILABLE
    return None


def record_database_url(database_url: str) -> None:
    """Remember which database the running command uses, for ``explain``'s messages."""
    _database_url.set(database_url)


class ClaimflowGroup(TyperGroup):
    """The root command group: turns fixable failures into ``error: ...`` and an exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        _database_url.set(None)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            explained = explain(exc, _database_url.get())
            if explained is None:
                raise
            message, code = explained
            for line in message.splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(code) from None
