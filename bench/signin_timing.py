"""Does the time of a wrong-password answer tell which emails have accounts? Measured in one run.

    .venv/bin/python bench/signin_timing.py [--tries 30] [--bcrypt-cost 12] [--database-url URL]
                                            [--migration] [--legacy-ms 40]

In process (httpx over ASGITransport, a SQLite file unless ``--database-url``), the throttle's
limits raised out of the way. Three emails get the same wrong password, interleaved so they share
the machine's noise: one that has no account, an argon2id user, and a user imported with a
bcrypt hash (``PUT /users/{id}/password`` with ``hashing_method: bcrypt``; cost 12 is bcrypt's
default). One warm-up request first (any process pays once for its first sign-in). The table
gives the median answer time of the login POST and its difference to the argon2id user's; an
attacker who cannot tell the rows apart by more than the noise cannot tell which emails exist.

``--migration`` enables the drip-feed example (``examples/workflows/legacy_password_migration.py``,
in a runner process) against a legacy service on loopback that answers in ``--legacy-ms``, and
adds a user only the legacy system knows: the unknown email and that user now take the
migration path (hash, workflow, legacy round trip), the others are paced to it.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from claimflow.app import create_app
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import migrate, users
from claimflow.workflows.environment import create_variable
from tests.helpers import legacy_service
from tests.oidc.flow import CALLBACK, PASSWORD, seed_business, submit_login

EXAMPLES = Path(__file__).parents[1] / "examples" / "workflows"
MIGRATION_WORKFLOW = "legacy_password_migration"

ISSUER = "http://bench.claimflow.test"
NO_LIMIT = 1_000_000


async def main(
    tries: int, bcrypt_cost: int, database_url: str | None, migration: bool, legacy_ms: float
) -> None:
    accounts = {"legacy@example.com": ("legacy password", {"given_name": "Lena"})}
    with tempfile.TemporaryDirectory() as tmp, legacy_service(accounts) as legacy:
        legacy.delay_seconds = legacy_ms / 1000
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate, url)
        settings = Settings(
            database_url=url,
            issuer=ISSUER,
            secret_key=secrets.token_urlsafe(32),
            workflows_enabled=[MIGRATION_WORKFLOW] if migration else [],
            workflows_dir=str(EXAMPLES) if migration else None,
            workflow_overrides={MIGRATION_WORKFLOW: {"time_limit_seconds": 30}}
            if migration
            else {},
            login_max_failures=NO_LIMIT,
            login_account_max_failures=NO_LIMIT,
            login_address_max_failures=NO_LIMIT,
        )
        services = build_services(settings)
        await services.workflows.warm_up()
        biz = await seed_business(services)
        imported = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(bcrypt_cost)).decode()
        async with services.db.transaction() as conn:
            bob = await users.create_user(conn, email="bob@example.com")
            await users.set_password_hash(conn, bob.id, imported)
            if migration:
                await create_variable(conn, services.box, key="LEGACY_AUTH_URL", value=legacy.url)
        emails = {
            "unknown email": "nobody@example.com",
            "argon2id user": biz.email,
            f"bcrypt-imported user (cost {bcrypt_cost})": "bob@example.com",
        }
        if migration:
            emails["user only the legacy knows"] = "legacy@example.com"
        samples: dict[str, list[float]] = {name: [] for name in emails}
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            params = {"response_type": "code", "client_id": biz.web_client_id}
            page = await client.get("/oauth2/auth", params=params | {"redirect_uri": CALLBACK})
            await submit_login(client, page, "warm-up@example.com", "wrong")
            for _ in range(tries):
                for name, email in emails.items():
                    started = time.perf_counter()
                    answer = await submit_login(client, page, email, "wrong password")
                    samples[name].append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 401, answer.text
        await services.close()

    medians = {name: statistics.median(values) for name, values in samples.items()}
    reference = medians["argon2id user"]
    mode = f", migration on (legacy {legacy_ms:g} ms)" if migration else ""
    print(f"wrong-password answer times, {tries} tries each, in-process{mode}")
    print(f"{'email':<34} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'vs argon2 ms':>13}")
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        print(
            f"{name:<34} {medians[name]:>10.1f} {deciles[0]:>8.1f} {deciles[-1]:>8.1f} "
            f"{medians[name] - reference:>+13.1f}"
        )
    spread = max(medians.values()) - min(medians.values())
    print(f"largest difference between medians: {spread:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--bcrypt-cost", type=int, default=12)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--migration", action="store_true")
    parser.add_argument("--legacy-ms", type=float, default=40.0)
    args = parser.parse_args()
    asyncio.run(
        main(args.tries, args.bcrypt_cost, args.database_url, args.migration, args.legacy_ms)
    )
