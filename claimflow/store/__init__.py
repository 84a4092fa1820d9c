"""Persistence: one ``Database`` and repository modules of functions over a connection.

Every repository function takes an ``AsyncConnection`` so a caller composes several calls into
one transaction (``async with db.transaction() as conn``): an error anywhere rolls back all of it,
which is how a bad request writes nothing.
"""

from claimflow.store import apis, applications, billing, organizations, users
from claimflow.store.database import Database, migrate

__all__ = ["Database", "apis", "applications", "billing", "migrate", "organizations", "users"]
