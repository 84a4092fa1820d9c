"""Authorization codes (RFC 6749 §4.1.2): stored as digests, single use, short-lived.

Spending a code is one conditional ``UPDATE ... WHERE used_on IS NULL`` so two concurrent
exchanges of the same code cannot both win (§4.1.2: "MUST NOT use the authorization code more
than once"). The row remembers what the exchange issued so a replay can revoke it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import digest_secret
from claimflow.store import tables as t
from claimflow.store._rows import as_utc, required_utc, utcnow


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    client_id: str
    user_id: str
    org_code: str | None
    redirect_uri: str
    scope: str
    audience: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    is_existing_session: bool
    expires_on: datetime
    used_on: datetime | None
    refresh_family_id: str | None
    access_token_jti: str | None
    access_token_expires_on: datetime | None


def _code(row: Any) -> AuthorizationCode:
    return AuthorizationCode(
        client_id=row.client_id,
        user_id=row.user_id,
        org_code=row.org_code,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        audience=tuple(row.audience or ()),
        nonce=row.nonce,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        auth_time=required_utc(row.auth_time),
        is_existing_session=bool(row.is_existing_session),
        expires_on=required_utc(row.expires_on),
        used_on=as_utc(row.used_on),
        refresh_family_id=row.refresh_family_id,
        access_token_jti=row.access_token_jti,
        access_token_expires_on=as_utc(row.access_token_expires_on),
    )


async def create_code(
    conn: AsyncConnection,
    code: str,
    *,
    client_id: str,
    user_id: str,
    org_code: str | None,
    redirect_uri: str,
    scope: str,
    audience: Sequence[str],
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    auth_time: datetime,
    is_existing_session: bool,
    ttl_seconds: int,
) -> None:
    await conn.execute(
        insert(t.authorization_codes).values(
            code_hash=digest_secret(code),
            client_id=client_id,
            user_id=user_id,
            org_code=org_code,
            redirect_uri=redirect_uri,
            scope=scope,
            audience=list(audience),
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            auth_time=auth_time,
            is_existing_session=is_existing_session,
            expires_on=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )


async def find_code(conn: AsyncConnection, code: str) -> AuthorizationCode | None:
    row = (
        await conn.execute(
            select(t.authorization_codes).where(
                t.authorization_codes.c.code_hash == digest_secret(code)
            )
        )
    ).first()
    return None if row is None else _code(row)


async def spend_code(
    conn: AsyncConnection,
    code: str,
    *,
    refresh_family_id: str,
    access_token_jti: str,
    access_token_expires_on: datetime,
) -> bool:
    """Mark the code used and record what it issued; False when another exchange won."""
    result = await conn.execute(
        update(t.authorization_codes)
        .where(
            t.authorization_codes.c.code_hash == digest_secret(code),
            t.authorization_codes.c.used_on.is_(None),
        )
        .values(
            used_on=utcnow(),
            refresh_family_id=refresh_family_id,
            access_token_jti=access_token_jti,
            access_token_expires_on=access_token_expires_on,
        )
    )
    return bool(result.rowcount == 1)
