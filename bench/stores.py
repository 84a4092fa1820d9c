"""Run one in-process measurement on a SQLite file and on a scratch PostgreSQL database.

The in-process benches compare two arms on each store in one run; this is the part they share:
a temporary SQLite file, a PostgreSQL database created for the run and dropped after it (on the
server ``CLAIMFLOW_BENCH_PG`` names, default the machine's), and the rows in order.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

PG_SERVER = os.environ.get("CLAIMFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")

Measure = Callable[[str, int], Awaitable[dict[str, float]]]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def on_both_stores(measure: Measure, iterations: int) -> list[tuple[str, dict[str, float]]]:
    """``measure(database_url, iterations)`` on SQLite, then on PostgreSQL."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        rows.append(
            ("SQLite", await measure(f"sqlite+aiosqlite:///{Path(scratch) / 'b.db'}", iterations))
        )
    name = f"claimflow_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
        rows.append(("PostgreSQL", await measure(url, iterations)))
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows
