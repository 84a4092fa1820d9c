"""The exceptions that mean the database cannot be reached, wrapped or not.

asyncpg raises some of them unwrapped (a refused connection is a plain ``ConnectionError``), so
catching ``SQLAlchemyError`` alone lets an outage through as a traceback. The HTTP layer turns
these into 503s (``claimflow.unavailable``); background writers log them once and carry on.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc


class StoreUnreachable(ConnectionError):
    """The database could not be reached by a driver-level statement (``store.pg_direct``),
    whatever ``OSError`` the connection attempt raised (several addresses refused, no route)."""


STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset: the server is not there
    TimeoutError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,  # a pooled connection died under a query
    sa_exc.TimeoutError,  # every pooled connection is stuck
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, admin shutdown
    asyncpg.exceptions.PostgresConnectionError,  # class 08: the connection broke
    asyncpg.exceptions.InterfaceError,
)
"""What a request sees when the database cannot be reached (asyncpg raises some unwrapped)."""
