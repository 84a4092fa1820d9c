"""Refresh tokens, rotated on every use, grouped in families (OAuth 2.0 Security BCP §4.14.2).

Each token is stored as a digest. A refresh spends the presented token with a conditional
``UPDATE ... WHERE used_on IS NULL AND revoked_on IS NULL`` and adds its successor to the same
family; presenting a spent token again means it leaked, so the whole family is revoked, along
with the access tokens it issued.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    LargeBinary,
    and_,
    bindparam,
    case,
    cast,
    exists,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import digest_secret
from claimflow.store import tables as t
from claimflow.store._rows import as_utc, required_utc, utcnow
from claimflow.store.oidc_revocations import revoke_jti
from claimflow.store.pg_direct import DirectPool, PgStatement
from claimflow.store.sqlite_writes import PreparedWrite


@dataclass(frozen=True, slots=True)
class RefreshToken:
    family_id: str
    client_id: str
    user_id: str
    org_code: str | None
    scope: str
    audience: tuple[str, ...]
    auth_time: datetime
    created_on: datetime
    expires_on: datetime
    used_on: datetime | None
    revoked_on: datetime | None


def refresh_token_from_row(row: Any) -> RefreshToken:
    return RefreshToken(
        family_id=row.family_id,
        client_id=row.client_id,
        user_id=row.user_id,
        org_code=row.org_code,
        scope=row.scope,
        audience=tuple(row.audience or ()),
        auth_time=required_utc(row.auth_time),
        created_on=required_utc(row.created_on),
        expires_on=required_utc(row.expires_on),
        used_on=as_utc(row.used_on),
        revoked_on=as_utc(row.revoked_on),
    )


_INSERT = insert(t.refresh_tokens)


async def create_refresh_token(
    conn: AsyncConnection,
    token: str,
    *,
    family_id: str,
    client_id: str,
    user_id: str,
    org_code: str | None,
    scope: str,
    audience: Sequence[str],
    auth_time: datetime,
    ttl_seconds: int,
    access_token_jti: str,
    access_token_expires_on: datetime,
) -> None:
    now = utcnow()
    await conn.execute(
        _INSERT,
        {
            "token_hash": digest_secret(token),
            "family_id": family_id,
            "client_id": client_id,
            "user_id": user_id,
            "org_code": org_code,
            "scope": scope,
            "audience": list(audience),
            "auth_time": auth_time,
            "created_on": now,
            "expires_on": now + timedelta(seconds=ttl_seconds),
            "access_token_jti": access_token_jti,
            "access_token_expires_on": access_token_expires_on,
        },
    )


BY_HASH = select(t.refresh_tokens).where(t.refresh_tokens.c.token_hash == bindparam("digest"))
"""The token by the ``digest`` of its value (``find_refresh_token``; on the event loop in
``store.refresh_grant_reads``)."""


async def find_refresh_token(conn: AsyncConnection, token: str) -> RefreshToken | None:
    row = (await conn.execute(BY_HASH, {"digest": digest_secret(token)})).first()
    return None if row is None else refresh_token_from_row(row)


def _spend_statement() -> Any:
    """The spend of ``spend_refresh_token``, built once (it runs on every refresh).

    A family is a chain (each spend adds the one successor), so the only other row that can
    hold a sealed successor is the presented token's predecessor, whose spend sealed the
    presented token itself. Both rows are found by primary key (``predecessor_hash``): the
    spend reads two rows however long the family has grown, where a match on ``family_id``
    read every row a long-lived session had left, its cost growing with each refresh.

    Nothing else in the ``WHERE`` has an index, so no plan can choose another path (a
    connection's cached generic plan, made while the table was small, once chose
    ``ix_refresh_tokens_family_id``). The family needs no condition of its own: the presented
    row is the one whose family the grant read, and its predecessor is in that family by
    construction (``rotate_refresh_token`` writes both).
    """
    rows = t.refresh_tokens.c
    presented = rows.token_hash == bindparam("digest")
    same = t.refresh_tokens.alias("presented")
    spendable_predecessor = (
        select(same.c.predecessor_hash)
        .where(
            same.c.token_hash == bindparam("digest"),
            same.c.used_on.is_(None),
            same.c.revoked_on.is_(None),
        )
        .scalar_subquery()
    )
    return (
        update(t.refresh_tokens)
        .where(
            or_(
                and_(presented, rows.used_on.is_(None), rows.revoked_on.is_(None)),
                and_(
                    rows.token_hash == spendable_predecessor,
                    rows.successor_sealed.is_not(None),
                ),
            )
        )
        .values(
            used_on=case(
                (presented, bindparam("now", type_=rows.used_on.type)), else_=rows.used_on
            ),
            successor_sealed=case(
                (presented, cast(bindparam("sealed", type_=LargeBinary), LargeBinary)),
                else_=null(),
            ),
        )
        .returning(rows.token_hash)
    )


_SPEND = _spend_statement()


async def spend_refresh_token(
    conn: AsyncConnection, token: str, *, successor_sealed: bytes | None = None
) -> bool:
    """Mark the token used; False when it was already used or revoked (a concurrent refresh).

    ``successor_sealed`` (the successor, encrypted) is kept on the spent row for the reuse
    grace; the successor kept on the token this one replaced is dropped, since spending this
    one shows the client received it.

    One statement does both (one round trip): it updates the presented row if it is still
    unspent, and clears its predecessor's sealed successor only if it does.
    """
    params = _spend_params(token, successor_sealed)
    spent = (await conn.execute(_SPEND, params)).scalars()
    return params["digest"] in set(spent)


def _spend_params(token: str, successor_sealed: bytes | None) -> dict[str, Any]:
    """``_SPEND``'s parameters (every rotation's statements start from them)."""
    return {
        "digest": digest_secret(token),
        "now": utcnow(),
        "sealed": successor_sealed,
    }


def _rotate_statement() -> Any:
    """PostgreSQL: the spend and the successor's insert as one statement (a data-modifying CTE).

    The successor row is inserted only if the spend returned the presented token, so the
    statement is exactly the spend followed by a conditional insert, in one round trip and
    atomic on its own (no ``BEGIN``/``COMMIT`` needed)."""
    spent = _SPEND.cte("spent")
    columns = [c for c in t.refresh_tokens.c if c.name in _SUCCESSOR_COLUMNS]
    values = select(*(cast(bindparam(f"n_{c.name}", type_=c.type), c.type) for c in columns))
    values = values.where(
        exists().where(spent.c.token_hash == bindparam("digest")).select_from(spent)
    )
    return (
        insert(t.refresh_tokens)
        .from_select([c.name for c in columns], values)
        .returning(t.refresh_tokens.c.token_hash)
        .add_cte(spent)
    )


_SUCCESSOR_COLUMNS = (
    "token_hash",
    "family_id",
    "client_id",
    "user_id",
    "org_code",
    "scope",
    "audience",
    "auth_time",
    "created_on",
    "expires_on",
    "access_token_jti",
    "access_token_expires_on",
    "predecessor_hash",
)
_ROTATE = _rotate_statement()


@dataclass(frozen=True, slots=True)
class Successor:
    """The refresh token that replaces a spent one (see ``create_refresh_token``)."""

    token: str
    client_id: str
    user_id: str
    org_code: str | None
    scope: str
    audience: Sequence[str]
    auth_time: datetime
    ttl_seconds: int
    access_token_jti: str
    access_token_expires_on: datetime

    def row(self, family_id: str, predecessor_hash: str) -> dict[str, Any]:
        """The successor's row in ``family_id``, replacing the token of ``predecessor_hash``."""
        now = utcnow()
        return {
            "token_hash": digest_secret(self.token),
            "family_id": family_id,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "org_code": self.org_code,
            "scope": self.scope,
            "audience": list(self.audience),
            "auth_time": self.auth_time,
            "created_on": now,
            "expires_on": now + timedelta(seconds=self.ttl_seconds),
            "access_token_jti": self.access_token_jti,
            "access_token_expires_on": self.access_token_expires_on,
            "predecessor_hash": predecessor_hash,
        }


async def rotate_refresh_token(
    conn: AsyncConnection,
    token: str,
    *,
    family_id: str,
    successor: Successor,
    successor_sealed: bytes | None = None,
) -> bool:
    """Spend ``token`` and store ``successor`` in its family; False (nothing stored) when the
    token was already used or revoked. One statement on PostgreSQL, so ``conn`` may be in
    autocommit (``Database.single_statement``); the spend then the insert elsewhere."""
    if conn.dialect.name != "postgresql":
        won = await spend_refresh_token(conn, token, successor_sealed=successor_sealed)
        if won:
            await conn.execute(_INSERT, successor.row(family_id, digest_secret(token)))
        return won
    params = _rotate_params(token, family_id, successor, successor_sealed)
    return (await conn.execute(_ROTATE, params)).first() is not None


_SPEND_ON_SQLITE = PreparedWrite(_SPEND)
_INSERT_ON_SQLITE = PreparedWrite(_INSERT, column_keys=_SUCCESSOR_COLUMNS)


def rotation_on_sqlite(
    token: str, *, family_id: str, successor: Successor, successor_sealed: bytes | None = None
) -> Callable[[sqlite3.Connection], bool]:
    """``rotate_refresh_token``'s SQLite transaction (the spend, then the successor's insert if
    it won) as one function of the file's connection, for ``Database.sqlite_transaction``: the
    same statements and parameters, encoded before the hop."""
    params = _spend_params(token, successor_sealed)
    digest = params["digest"]
    spend = _SPEND_ON_SQLITE.parameters(params)
    row = _INSERT_ON_SQLITE.parameters(successor.row(family_id, digest))

    def rotate(connection: sqlite3.Connection) -> bool:
        spent = {found[0] for found in connection.execute(_SPEND_ON_SQLITE.sql, spend)}
        if digest not in spent:
            return False
        connection.execute(_INSERT_ON_SQLITE.sql, row)
        return True

    return rotate


def _rotate_params(
    token: str, family_id: str, successor: Successor, successor_sealed: bytes | None
) -> dict[str, Any]:
    params = _spend_params(token, successor_sealed)
    row = successor.row(family_id, params["digest"])
    params.update({f"n_{name}": value for name, value in row.items()})
    return params


_ROTATE_DIRECT = PgStatement(_ROTATE)


async def rotate_refresh_token_direct(
    pool: DirectPool,
    token: str,
    *,
    family_id: str,
    successor: Successor,
    successor_sealed: bytes | None = None,
) -> bool:
    """``rotate_refresh_token``'s PostgreSQL statement on the driver directly
    (``store.pg_direct``): the same single statement, atomic on its own in autocommit."""
    params = _rotate_params(token, family_id, successor, successor_sealed)
    return await pool.write_fetchrow(_ROTATE_DIRECT, params) is not None


async def claim_successor(conn: AsyncConnection, token: str, used_after: datetime) -> bytes | None:
    """Take the sealed successor of a token spent after ``used_after``, once.

    A compare-and-set on the sealed value: of two concurrent retries, one gets it.
    """
    digest = digest_secret(token)
    row = (
        await conn.execute(
            select(t.refresh_tokens.c.successor_sealed).where(
                t.refresh_tokens.c.token_hash == digest,
                t.refresh_tokens.c.used_on >= used_after,
                t.refresh_tokens.c.revoked_on.is_(None),
                t.refresh_tokens.c.successor_sealed.is_not(None),
            )
        )
    ).first()
    if row is None:
        return None
    sealed: bytes = row.successor_sealed
    taken = await conn.execute(
        update(t.refresh_tokens)
        .where(
            t.refresh_tokens.c.token_hash == digest,
            t.refresh_tokens.c.successor_sealed == sealed,
        )
        .values(successor_sealed=None)
    )
    return sealed if taken.rowcount == 1 else None


async def replace_access_token(
    conn: AsyncConnection, token: str, *, access_token_jti: str, access_token_expires_on: datetime
) -> tuple[str | None, datetime | None] | None:
    """Record a newly issued access token on ``token``'s row while the token is still unused
    and unrevoked; returns the access token it replaces, or ``None`` (nothing recorded) when
    the token was used or revoked meanwhile.

    The reuse grace checks its successor before it issues, and issuing takes a while (the
    workflows run): a successor used in between makes the retry a retry after the successor
    was used (``oidc.grants.refresh_token``), which this conditional ``UPDATE`` tells, row
    locked, as one with the successor's spend."""
    digest = digest_secret(token)
    row = (
        await conn.execute(
            select(
                t.refresh_tokens.c.access_token_jti, t.refresh_tokens.c.access_token_expires_on
            ).where(t.refresh_tokens.c.token_hash == digest)
        )
    ).first()
    recorded = await conn.execute(
        update(t.refresh_tokens)
        .where(
            t.refresh_tokens.c.token_hash == digest,
            t.refresh_tokens.c.used_on.is_(None),
            t.refresh_tokens.c.revoked_on.is_(None),
        )
        .values(access_token_jti=access_token_jti, access_token_expires_on=access_token_expires_on)
    )
    if recorded.rowcount != 1 or row is None:
        return None
    return row.access_token_jti, as_utc(row.access_token_expires_on)


async def revoke_family(conn: AsyncConnection, family_id: str) -> None:
    """Revoke every refresh token of the family and every access token they issued.

    The revocation is repeated until it finds nothing left to revoke. On PostgreSQL each
    ``UPDATE`` sees the rows committed before it started (READ COMMITTED): one that waits for
    the token a concurrent rotation is spending revokes that token once the rotation commits,
    but not the successor the rotation inserted, which is not in its snapshot and would
    outlive the family (RFC 9700 §4.14.2). The next ``UPDATE`` starts after that commit and
    sees it. A rotation that has not spent its token by then waits for this transaction's
    lock on it and finds it revoked, so the repetition ends once an ``UPDATE`` revokes
    nothing: then every row the family can still grow from is revoked here. SQLite writes one
    transaction at a time, so its second ``UPDATE`` revokes nothing.
    """
    now = utcnow()
    revoke = (
        update(t.refresh_tokens)
        .where(t.refresh_tokens.c.family_id == family_id, t.refresh_tokens.c.revoked_on.is_(None))
        .values(revoked_on=now, successor_sealed=None)
    )
    while (await conn.execute(revoke)).rowcount:
        pass
    rows = await conn.execute(
        select(
            t.refresh_tokens.c.access_token_jti, t.refresh_tokens.c.access_token_expires_on
        ).where(
            t.refresh_tokens.c.family_id == family_id,
            t.refresh_tokens.c.access_token_jti.is_not(None),
        )
    )
    for row in rows.all():
        expires_on = as_utc(row.access_token_expires_on) or now
        if expires_on > now:
            await revoke_jti(conn, row.access_token_jti, expires_on)
