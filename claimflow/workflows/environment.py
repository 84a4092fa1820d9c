"""Workflow environment variables and secrets (Kinde's ``kinde.env``), encrypted at rest.

Every value is encrypted with the deployment's ``SecretBox``, not only secrets: a database dump
should not hand out API keys that someone forgot to flag. Reads are cached for a few seconds so a
token issuance does not pay a query per variable; writes through the Management API clear the
cache of this process at once (other workers catch up within ``CACHE_SECONDS``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import SecretBox
from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import Database
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, required_utc, utcnow

MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class StoredVariable:
    id: str
    key: str
    value: str | None
    is_secret: bool
    created_on: datetime


def _validate(key: str | None, value: str | None) -> None:
    if key is not None and (not key.strip() or len(key) > MAX_KEY_LENGTH):
        raise InvalidRequest(f"key must be 1 to {MAX_KEY_LENGTH} characters.", "KEY_INVALID")
    if value is not None and len(value) > MAX_VALUE_LENGTH:
        raise InvalidRequest(
            f"value must be at most {MAX_VALUE_LENGTH} characters.", "VALUE_INVALID"
        )


def _row(box: SecretBox, row: Any) -> StoredVariable:
    encrypted = row.value_encrypted
    return StoredVariable(
        id=row.id,
        key=row.key,
        value=None if encrypted is None else box.decrypt(encrypted).decode("utf-8"),
        is_secret=bool(row.is_secret),
        created_on=required_utc(row.created_on),
    )


async def create_variable(
    conn: AsyncConnection, box: SecretBox, *, key: str, value: str, is_secret: bool = False
) -> StoredVariable:
    _validate(key, value)
    variable = StoredVariable(new_prefixed_id("env_var"), key, value, is_secret, utcnow())
    try:
        await conn.execute(
            insert(t.environment_variables).values(
                id=variable.id,
                key=key,
                value_encrypted=box.encrypt(value.encode("utf-8")),
                is_secret=is_secret,
                created_on=variable.created_on,
            )
        )
    except IntegrityError as exc:
        raise Conflict("An environment variable with this key exists.", "KEY_EXISTS") from exc
    return variable


async def get_variable(conn: AsyncConnection, box: SecretBox, variable_id: str) -> StoredVariable:
    row = (
        await conn.execute(
            select(t.environment_variables).where(t.environment_variables.c.id == variable_id)
        )
    ).first()
    if row is None:
        raise NotFound("No environment variable with this id.", "VARIABLE_NOT_FOUND")
    return _row(box, row)


async def list_variables(conn: AsyncConnection, box: SecretBox) -> list[StoredVariable]:
    rows = await conn.execute(
        select(t.environment_variables).order_by(t.environment_variables.c.key)
    )
    return [_row(box, row) for row in rows]


async def update_variable(
    conn: AsyncConnection,
    box: SecretBox,
    variable_id: str,
    *,
    key: str | None = None,
    value: str | None = None,
    is_secret: bool | None = None,
) -> StoredVariable:
    current = await get_variable(conn, box, variable_id)
    _validate(key, value)
    if current.is_secret and is_secret is False:
        # Kinde: secrets stay unreadable after creation; un-flagging one would reveal it.
        raise InvalidRequest("A secret cannot be made readable again.", "SECRET_IMMUTABLE")
    changes: dict[str, object] = {}
    if key is not None:
        changes["key"] = key
    if value is not None:
        changes["value_encrypted"] = box.encrypt(value.encode("utf-8"))
    if is_secret is not None:
        changes["is_secret"] = is_secret
    if changes:
        try:
            await conn.execute(
                update(t.environment_variables)
                .where(t.environment_variables.c.id == variable_id)
                .values(**changes)
            )
        except IntegrityError as exc:
            raise Conflict("An environment variable with this key exists.", "KEY_EXISTS") from exc
    return await get_variable(conn, box, variable_id)


async def delete_variable(conn: AsyncConnection, variable_id: str) -> None:
    result = await conn.execute(
        delete(t.environment_variables).where(t.environment_variables.c.id == variable_id)
    )
    if result.rowcount == 0:
        raise NotFound("No environment variable with this id.", "VARIABLE_NOT_FOUND")


class EnvironmentVariables:
    """Read side for workflows: every variable, decrypted, cached for ``CACHE_SECONDS``."""

    CACHE_SECONDS = 5.0

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        self._by_key: dict[str, StoredVariable] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def get(self, key: str) -> StoredVariable | None:
        if time.monotonic() - self._loaded_at > self.CACHE_SECONDS:
            async with self._db.connect() as conn:
                variables = await list_variables(conn, self._box)
            self._by_key = {v.key: v for v in variables}
            self._loaded_at = time.monotonic()
        return self._by_key.get(key)
