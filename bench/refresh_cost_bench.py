"""What one refresh costs as the work grows: plan size and database size, in one run.

    .venv/bin/python bench/refresh_cost_bench.py [--seconds 5] [--rounds 3] [--chains 4]
        [--database sqlite|postgresql]

Each scenario is a real ``claimflow serve`` (one worker) seeded like
``token_endpoint_bench.py``'s: an organization on a plan, a member with refresh tokens from real
sign-ins, the ``org_billing`` workflow on (warm billing cache). The scenarios differ in one thing:

- the plan has 1, 5 (the demo's, the baseline), 10, 50 or 200 features, so the ``org_billing``
  claim grows (past the token size budget it steps down to its compact forms);
- the 5-feature plan in a database that also holds 100,000 users and 10,000 organizations
  (100,000 memberships), bulk-inserted beside the demo's rows;
- the 5-feature plan where every session has already been refreshed 10,000 times (each
  refresh-token family holds 10,000 spent rows, kept until they expire), as a session that
  refreshes every five minutes has after five weeks.

Every server stays up; rounds visit them in turn, so drift in the machine's load hits all alike.
Server CPU per refresh is read from ``/proc`` (PostgreSQL backends included), as in
``token_endpoint_bench.py``; the last column is the ratio to the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from token_endpoint_bench import (
    PG_SERVER,
    Round,
    Server,
    measure,
    postgres_database,
    start_claimflow,
    summary,
)

from claimflow.crypto import digest_secret
from claimflow.store import tables as t

BASELINE = "5 features (demo)"
BIG_USERS = 100_000
BIG_ORGS = 10_000
LONG_FAMILY = 10_000


async def bulk_fill(url: str, users: int, orgs: int) -> None:
    """``users`` users spread over ``orgs`` organizations, one membership each."""
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    chunk = 10_000
    try:
        async with engine.begin() as conn:
            org_rows = [
                {"code": f"org_bulk_{i}", "name": f"Bulk {i}", "created_on": now}
                for i in range(orgs)
            ]
            for start in range(0, orgs, chunk):
                await conn.execute(insert(t.organizations), org_rows[start : start + chunk])
            for start in range(0, users, chunk):
                ids = range(start, min(users, start + chunk))
                await conn.execute(
                    insert(t.users),
                    [
                        {
                            "id": f"kp_bulk_{i}",
                            "email": f"user{i}@bulk.test",
                            "given_name": "Bulk",
                            "family_name": str(i),
                            "is_suspended": False,
                            "total_sign_ins": 0,
                            "failed_sign_ins": 0,
                            "created_on": now,
                        }
                        for i in ids
                    ],
                )
                await conn.execute(
                    insert(t.memberships),
                    [
                        {"org_code": f"org_bulk_{i % orgs}", "user_id": f"kp_bulk_{i}"}
                        | {"joined_on": now}
                        for i in ids
                    ],
                )
    finally:
        await engine.dispose()


async def lengthen_families(url: str, tokens: list[str], spent: int) -> None:
    """``spent`` spent rows in the family of each of ``tokens`` (sessions refreshed for weeks)."""
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            for token in tokens:
                columns = t.refresh_tokens.c
                row = (
                    await conn.execute(
                        select(
                            columns.family_id,
                            columns.client_id,
                            columns.user_id,
                            columns.org_code,
                            columns.scope,
                            columns.audience,
                            columns.auth_time,
                            columns.expires_on,
                        ).where(columns.token_hash == digest_secret(token))
                    )
                ).one()
                await conn.execute(
                    insert(t.refresh_tokens),
                    [
                        {
                            "token_hash": digest_secret(f"{token}-spent-{i}"),
                            "family_id": row.family_id,
                            "client_id": row.client_id,
                            "user_id": row.user_id,
                            "org_code": row.org_code,
                            "scope": row.scope,
                            "audience": row.audience,
                            "auth_time": row.auth_time,
                            "created_on": now,
                            "expires_on": row.expires_on,
                            "used_on": now,
                        }
                        for i in range(spent)
                    ],
                )
    finally:
        await engine.dispose()


def probe_token_bytes(server: Server) -> int:
    """The size of the access token one refresh issues (with the last, unused, chain's token)."""
    refresh_token = server.refresh_tokens.pop()
    answer = httpx.post(
        server.url,
        data=server.form | {"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=30,
    )
    answer.raise_for_status()
    return len(answer.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    scenarios = [
        ("1 feature", 1, False, False),
        (BASELINE, 5, False, False),
        ("10 features", 10, False, False),
        ("50 features", 50, False, False),
        ("200 features", 200, False, False),
        (f"5 features, {BIG_USERS:,} users, {BIG_ORGS:,} organizations", 5, True, False),
        (f"5 features, sessions refreshed {LONG_FAMILY:,} times", 5, False, True),
    ]
    servers: dict[str, Server] = {}
    token_bytes: dict[str, int] = {}
    measured: dict[str, list[Round]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        try:
            for index, (name, features, big, long_families) in enumerate(scenarios):
                workdir = Path(tmp) / str(index)
                workdir.mkdir()
                database = None
                if args.database == "postgresql":
                    database = stack.enter_context(postgres_database())
                    url = f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{database}"
                else:
                    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
                chains = args.chains * (args.rounds + 1)
                servers[name] = start_claimflow(workdir, url, chains, database, features)
                if big:
                    asyncio.run(bulk_fill(url, BIG_USERS, BIG_ORGS))
                if long_families:
                    tokens = servers[name].refresh_tokens
                    asyncio.run(lengthen_families(url, tokens, LONG_FAMILY))
                measured[name] = []
                token_bytes[name] = probe_token_bytes(servers[name])
            for _ in range(args.rounds):
                for name, server in servers.items():
                    measured[name].append(
                        measure(server, "refresh_token", args.chains, args.seconds)
                    )
        finally:
            for server in servers.values():
                server.stop()
    base = statistics.median(r.cpu_ms for r in measured[BASELINE])
    print(
        f"refresh_token, {args.database}, {args.chains} chains, {args.rounds} rounds of "
        f"{args.seconds:g} s; medians (min-max)"
    )
    print(
        "| scenario | access token | throughput | p50 ms | p99 ms | CPU-ms per refresh "
        "| vs the demo's |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, samples in measured.items():
        cpu = statistics.median(r.cpu_ms for r in samples)
        print(
            f"| {name} | {token_bytes[name]:,} B | {summary(samples, 'throughput')} req/s "
            f"| {summary(samples, 'p50_ms')} "
            f"| {summary(samples, 'p99_ms')} | {summary(samples, 'cpu_ms')} | {cpu / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
