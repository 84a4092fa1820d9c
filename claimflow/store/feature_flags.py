"""Kinde's feature flags: the catalogue, organization and user overrides, and what a user sees.

Every write that can make a flag's value longer (a new flag, a new default, an override) checks,
in its transaction, that the largest ``feature_flags`` claim any user could now get stays within
``FEATURE_FLAGS_CLAIM_MAX_BYTES``; otherwise it is refused (400) and nothing is written. The token
endpoint reads a user's flags with one query (``resolved_flags``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import FeatureFlag, FlagType, FlagValue, OverrideLevel, ResolvedFlag
from claimflow.domain.feature_flags import (
    FEATURE_FLAGS_CLAIM_MAX_BYTES,
    parse_value,
    resolve,
    value_text,
    worst_case_claim_bytes,
)
from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import organizations, users
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, as_utc, dialect_insert, utcnow


def _flag(row: Any) -> FeatureFlag:
    flag_type = FlagType(row.type)
    return FeatureFlag(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        type=flag_type,
        default_value=parse_value(flag_type, row.default_value),
        allow_override_level=OverrideLevel(row.allow_override_level),
        created_on=as_utc(row.created_on),
    )


async def _one_writer_at_a_time(conn: AsyncConnection) -> None:
    """Serialize the writes that are checked against the claim's bound.

    Two writers each checking the bound before the other commits could together exceed it. On
    PostgreSQL a self-conflicting table lock (``SHARE ROW EXCLUSIVE``) makes them take turns until
    commit, while reads (the token endpoint's ``SELECT``) go on; SQLite already has one writer.
    """
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE feature_flags IN SHARE ROW EXCLUSIVE MODE")


def parsed(flag_type: FlagType, raw: str) -> FlagValue:
    """``parse_value`` with its refusal as Kinde's 400."""
    try:
        return parse_value(flag_type, raw)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid flag value: {exc}.", "FLAG_VALUE_INVALID") from exc


async def create_flag(
    conn: AsyncConnection,
    *,
    key: str,
    name: str,
    description: str | None,
    flag_type: FlagType,
    allow_override_level: OverrideLevel,
    default_value: str,
) -> FeatureFlag:
    value = parsed(flag_type, default_value)
    await _one_writer_at_a_time(conn)
    flag_id = new_prefixed_id("flag")
    try:
        await conn.execute(
            insert(t.feature_flags).values(
                id=flag_id,
                key=key,
                name=name,
                description=description,
                type=flag_type.value,
                allow_override_level=allow_override_level.value,
                default_value=value_text(value),
                created_on=utcnow(),
            )
        )
    except IntegrityError as exc:
        raise Conflict("A feature flag with this key already exists.", "FLAG_EXISTS") from exc
    await check_claim_size(conn)
    return await get_flag(conn, key)


async def find_flag(conn: AsyncConnection, key: str) -> FeatureFlag | None:
    row = (await conn.execute(select(t.feature_flags).where(t.feature_flags.c.key == key))).first()
    return None if row is None else _flag(row)


async def get_flag(conn: AsyncConnection, key: str) -> FeatureFlag:
    flag = await find_flag(conn, key)
    if flag is None:
        raise NotFound("No feature flag with this key.", "FLAG_NOT_FOUND")
    return flag


async def list_flags(conn: AsyncConnection) -> list[FeatureFlag]:
    rows = await conn.execute(select(t.feature_flags).order_by(t.feature_flags.c.key))
    return [_flag(row) for row in rows]


async def replace_flag(
    conn: AsyncConnection,
    key: str,
    *,
    name: str,
    description: str | None,
    flag_type: FlagType,
    allow_override_level: OverrideLevel,
    default_value: str,
) -> FeatureFlag:
    """Kinde's ``UpdateFeatureFlag`` replaces every field but the key.

    Overrides the new definition no longer admits are deleted with it: all of them when the type
    changes (a ``bool`` override means nothing to an ``int`` flag), the user overrides when the
    level drops below ``usr``, the organization ones when it drops to ``env``.
    """
    await _one_writer_at_a_time(conn)
    current = await get_flag(conn, key)
    value = parsed(flag_type, default_value)
    await conn.execute(
        update(t.feature_flags)
        .where(t.feature_flags.c.id == current.id)
        .values(
            name=name,
            description=description,
            type=flag_type.value,
            allow_override_level=allow_override_level.value,
            default_value=value_text(value),
        )
    )
    type_changed = flag_type is not current.type
    if type_changed or not allow_override_level.allows(OverrideLevel.USER):
        await conn.execute(
            delete(t.user_feature_flags).where(t.user_feature_flags.c.flag_id == current.id)
        )
    if type_changed or not allow_override_level.allows(OverrideLevel.ORGANIZATION):
        table = t.organization_feature_flags
        await conn.execute(delete(table).where(table.c.flag_id == current.id))
    await check_claim_size(conn)
    return await get_flag(conn, key)


async def delete_flag(conn: AsyncConnection, key: str) -> None:
    flag = await get_flag(conn, key)
    for table in (t.organization_feature_flags, t.user_feature_flags):
        await conn.execute(delete(table).where(table.c.flag_id == flag.id))
    await conn.execute(delete(t.feature_flags).where(t.feature_flags.c.id == flag.id))


async def _set_override(
    conn: AsyncConnection,
    table: Any,
    holder: dict[str, str],
    key: str,
    raw: str,
    level: OverrideLevel,
) -> None:
    """Upsert one override; 400 where the flag's level does not reach ``level``."""
    await _one_writer_at_a_time(conn)
    flag = await get_flag(conn, key)
    if not flag.allow_override_level.allows(level):
        raise InvalidRequest(
            f"The flag '{key}' may be overridden at level '{flag.allow_override_level}' at most.",
            "FLAG_OVERRIDE_NOT_ALLOWED",
        )
    text = value_text(parsed(flag.type, raw))
    values = {**holder, "flag_id": flag.id, "value": text}
    statement = dialect_insert(conn, table).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[*holder, "flag_id"], set_={"value": statement.excluded.value}
        )
    )
    await check_claim_size(conn)


async def set_organization_override(
    conn: AsyncConnection, org_code: str, key: str, raw: str
) -> None:
    """Upsert an organization's override while its row is locked shared (404 when it is gone):
    a deletion of the organization at the same moment goes first or after, never in between.
    The flag writers' lock comes first, so a deletion waiting on the row cannot close a cycle."""
    await _one_writer_at_a_time(conn)
    await organizations.lock_organization(conn, org_code, exclusive=False)
    holder = {"org_code": org_code}
    await _set_override(
        conn, t.organization_feature_flags, holder, key, raw, OverrideLevel.ORGANIZATION
    )


async def set_user_override(conn: AsyncConnection, user_id: str, key: str, raw: str) -> None:
    """Upsert a user's override with the user's row locked shared, as for an organization."""
    await _one_writer_at_a_time(conn)
    await users.lock_user(conn, user_id)
    holder = {"user_id": user_id}
    await _set_override(conn, t.user_feature_flags, holder, key, raw, OverrideLevel.USER)


async def delete_organization_override(conn: AsyncConnection, org_code: str, key: str) -> None:
    flag = await get_flag(conn, key)
    table = t.organization_feature_flags
    await conn.execute(
        delete(table).where(table.c.org_code == org_code, table.c.flag_id == flag.id)
    )


async def delete_organization_overrides(conn: AsyncConnection, org_code: str) -> None:
    table = t.organization_feature_flags
    await conn.execute(delete(table).where(table.c.org_code == org_code))


_org_value = t.organization_feature_flags
_user_value = t.user_feature_flags
RESOLVED_FLAGS = (
    select(
        t.feature_flags,
        _org_value.c.value.label("org_value"),
        _user_value.c.value.label("user_value"),
    )
    .select_from(
        t.feature_flags.outerjoin(
            _org_value,
            and_(
                _org_value.c.flag_id == t.feature_flags.c.id,
                _org_value.c.org_code == bindparam("org_code"),
            ),
        ).outerjoin(
            _user_value,
            and_(
                _user_value.c.flag_id == t.feature_flags.c.id,
                _user_value.c.user_id == bindparam("user_id"),
            ),
        )
    )
    .order_by(t.feature_flags.c.key)
)
"""Every flag with the override of ``org_code`` and of ``user_id``, by key; built once, it runs
on every user token (``resolved_flags``, and on the loop in ``store.refresh_grant_reads``). A
None parameter matches no override, as no override row has a null key."""


async def resolved_flags(
    conn: AsyncConnection, *, user_id: str | None, org_code: str | None
) -> list[ResolvedFlag]:
    """Every flag as ``user_id`` signed in to ``org_code`` (or personally) sees it; one query.

    Without a user, what the organization's members see unless their own override wins.
    """
    rows = await conn.execute(RESOLVED_FLAGS, {"org_code": org_code, "user_id": user_id})
    return [resolved_flag(row) for row in rows]


def resolved_flag(row: Any) -> ResolvedFlag:
    """A ``feature_flags`` row with its ``org_value`` and ``user_value`` overrides (or None),
    resolved (``domain.feature_flags.resolve``)."""
    flag = _flag(row)
    org_value = None if row.org_value is None else parse_value(flag.type, row.org_value)
    user_value = None if row.user_value is None else parse_value(flag.type, row.user_value)
    return resolve(flag, org_value, user_value)


async def check_claim_size(conn: AsyncConnection) -> None:
    """Refuse (400) a write after which some user's ``feature_flags`` claim could be too large."""
    flags = {flag.id: flag for flag in await list_flags(conn)}
    candidates: list[tuple[FeatureFlag, FlagValue]] = [(f, f.default_value) for f in flags.values()]
    for table in (t.organization_feature_flags, t.user_feature_flags):
        for row in await conn.execute(select(table.c.flag_id, table.c.value)):
            flag = flags[row.flag_id]
            candidates.append((flag, parse_value(flag.type, row.value)))
    size = worst_case_claim_bytes(candidates)
    if size > FEATURE_FLAGS_CLAIM_MAX_BYTES:
        raise InvalidRequest(
            f"The feature_flags claim could reach {size} bytes; at most "
            f"{FEATURE_FLAGS_CLAIM_MAX_BYTES} fit in a token. Use fewer or shorter flags.",
            "FEATURE_FLAGS_TOO_LARGE",
        )
