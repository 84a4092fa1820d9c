"""What an operator may see of the signing keys: ids, algorithms and lifetimes, never key
material (the private keys stay encrypted and are only ever decrypted by ``KeyManager``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import as_utc, required_utc


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    kid: str
    algorithm: str
    created_on: datetime
    retired_on: datetime | None
    expires_on: datetime | None


async def list_signing_keys(conn: AsyncConnection) -> list[SigningKeyInfo]:
    k = t.signing_keys.c
    rows = await conn.execute(
        select(k.kid, k.algorithm, k.created_on, k.retired_on, k.expires_on).order_by(
            k.created_on.desc()
        )
    )
    return [
        SigningKeyInfo(
            row.kid,
            row.algorithm,
            required_utc(row.created_on),
            as_utc(row.retired_on),
            as_utc(row.expires_on),
        )
        for row in rows
    ]
