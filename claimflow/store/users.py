"""Users, their password hashes and sign-in counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import User
from claimflow.domain.ids import new_user_id
from claimflow.errors import Conflict, NotFound
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, as_utc, required_utc, utcnow
from claimflow.store.billing import delete_customer_of


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        given_name=row.given_name,
        family_name=row.family_name,
        created_on=required_utc(row.created_on),
        is_suspended=bool(row.is_suspended),
        total_sign_ins=int(row.total_sign_ins or 0),
        failed_sign_ins=int(row.failed_sign_ins or 0),
        last_signed_in=as_utc(row.last_signed_in),
    )


user_from_row = _user


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    conn: AsyncConnection,
    *,
    email: str | None,
    given_name: str | None = None,
    family_name: str | None = None,
    password_hash: str | None = None,
    user_id: str | None = None,
) -> User:
    user = User(
        id=user_id or new_user_id(),
        email=normalize_email(email) if email else None,
        given_name=given_name,
        family_name=family_name,
        created_on=utcnow(),
    )
    try:
        await conn.execute(
            insert(t.users).values(
                id=user.id,
                email=user.email,
                given_name=user.given_name,
                family_name=user.family_name,
                password_hash=password_hash,
                is_suspended=False,
                total_sign_ins=0,
                failed_sign_ins=0,
                created_on=user.created_on,
            )
        )
    except IntegrityError as exc:
        raise Conflict("A user with this email already exists.", "USER_EXISTS") from exc
    return user


async def get_user(conn: AsyncConnection, user_id: str) -> User:
    user = await find_user(conn, user_id)
    if user is None:
        raise NotFound("No user with this id.", "USER_INVALID")
    return user


async def lock_user(conn: AsyncConnection, user_id: str) -> None:
    """Lock the user's row shared for the transaction (404 when it is gone).

    A write of the user's flag overrides or property values takes it, so on PostgreSQL a
    deletion of the user at the same moment (its ``DELETE`` conflicts with ``FOR SHARE``) goes
    first or after and never in between, where the insert would fail its foreign key (500).
    """
    row = (
        await conn.execute(
            select(t.users.c.id).where(t.users.c.id == user_id).with_for_update(read=True)
        )
    ).first()
    if row is None:
        raise NotFound("No user with this id.", "USER_INVALID")


async def find_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
    return None if row is None else _user(row)


async def find_user_by_email(conn: AsyncConnection, email: str) -> User | None:
    row = (
        await conn.execute(select(t.users).where(t.users.c.email == normalize_email(email)))
    ).first()
    return None if row is None else _user(row)


async def get_password_hash(conn: AsyncConnection, user_id: str) -> str | None:
    row = (
        await conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user_id))
    ).first()
    return None if row is None else row.password_hash


async def set_password_hash(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    await get_user(conn, user_id)
    await conn.execute(
        update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
    )


async def list_users(
    conn: AsyncConnection,
    *,
    limit: int,
    after_id: str | None = None,
    email: str | None = None,
    emails: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
) -> list[User]:
    """Users in id order; ``emails``/``ids`` filter as Kinde's comma-separated query values."""
    query = select(t.users).order_by(t.users.c.id).limit(limit)
    if after_id is not None:
        query = query.where(t.users.c.id > after_id)
    if email is not None:
        query = query.where(t.users.c.email == normalize_email(email))
    if emails is not None:
        query = query.where(t.users.c.email.in_([normalize_email(e) for e in emails]))
    if ids is not None:
        query = query.where(t.users.c.id.in_(list(ids)))
    return [_user(row) for row in await conn.execute(query)]


async def update_user(conn: AsyncConnection, user_id: str, **changes: Any) -> User:
    await get_user(conn, user_id)
    if changes.get("email"):
        changes["email"] = normalize_email(changes["email"])
    if changes:
        try:
            await conn.execute(update(t.users).where(t.users.c.id == user_id).values(**changes))
        except IntegrityError as exc:
            raise Conflict("A user with this email already exists.", "USER_EXISTS") from exc
    return await get_user(conn, user_id)


async def delete_user(conn: AsyncConnection, user_id: str) -> None:
    await get_user(conn, user_id)
    await delete_customer_of(conn, user_id=user_id)
    await conn.execute(delete(t.memberships).where(t.memberships.c.user_id == user_id))
    await conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user_id))
    await conn.execute(delete(t.users).where(t.users.c.id == user_id))


async def record_sign_in(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(
        update(t.users)
        .where(t.users.c.id == user_id)
        .values(total_sign_ins=t.users.c.total_sign_ins + 1, last_signed_in=utcnow())
    )


async def record_failed_sign_in(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(
        update(t.users)
        .where(t.users.c.id == user_id)
        .values(failed_sign_ins=t.users.c.failed_sign_ins + 1)
    )


async def bcrypt_hash_prefixes(conn: AsyncConnection) -> set[str]:
    """The distinct ``$2b$12`` prefixes (variant and cost) of the imported bcrypt hashes."""
    prefix = func.substr(t.users.c.password_hash, 1, 6)
    rows = await conn.execute(select(prefix).where(t.users.c.password_hash.like("$2%")).distinct())
    return {str(row[0]) for row in rows}
