"""How many passwords does a burst of parallel guesses get checked? Measured in one run.

    .venv/bin/python bench/signin_throttle.py [--parallel 10 40] [--rounds 3] [--database-url URL]

In process (httpx over ASGITransport, a SQLite file unless ``--database-url``), default
settings (``CLAIMFLOW_LOGIN_MAX_FAILURES=5``). Each scenario is a fresh account attacked from a
fresh client address:

- N wrong passwords sent at once: how many were checked (answered 401, and counted as calls to
  the password verifier) and how many refused unchecked (429);
- 19 wrong passwords and the right one sent at once, the right one last, ``--rounds`` times:
  how many rounds ended with an authorization code.

The throttle holds when the wrong passwords checked never exceed the limit, whatever N. Which
five of a burst are checked is up to the scheduler, so the right one is among them about one
round in four (the odds of five guesses sent one by one); a success forgets the pair's count,
so a guess still waiting behind it may be checked too (the guesser holds the password by then).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from claimflow import crypto
from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import migrate, users
from tests.oidc.flow import CALLBACK, PASSWORD, password_hash, seed_business, submit_login

ISSUER = "http://bench.claimflow.test"


class CheckCounter:
    """Counts calls to the password verifier (the real one runs; this only counts)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, check: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            with self._lock:
                self.calls += 1
            return check(*args)

        return counted


async def burst(
    services: Services, client_id: str, counter: CheckCounter, account: int, passwords: list[str]
) -> list[int]:
    """Send ``passwords`` at once for a new account from a new address; the answers' statuses."""
    email = f"target{account}@example.com"
    async with services.db.transaction() as conn:
        await users.create_user(conn, email=email, password_hash=password_hash())
    address = f"198.51.{account // 250}.{account % 250 + 1}"
    transport = httpx.ASGITransport(
        app=create_app(services=services), client=(address, 40000), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        page = await client.get(
            "/oauth2/auth",
            params={"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK},
        )
        counter.calls = 0
        answers = await asyncio.gather(*(submit_login(client, page, email, p) for p in passwords))
    return [answer.status_code for answer in answers]


async def main(parallel: list[int], rounds: int, database_url: str | None) -> None:
    counter = CheckCounter()
    crypto.verify_password = counter.wrap(crypto.verify_password)  # type: ignore[method-assign]
    crypto.burn_password_check = counter.wrap(crypto.burn_password_check)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate, url)
        settings = Settings(database_url=url, issuer=ISSUER, secret_key="bench")
        services = build_services(settings)
        biz = await seed_business(services)
        web = biz.web_client_id
        await burst(services, web, counter, 0, ["warm-up"])  # a process's first sign-in sets up
        rows = []
        account = 0
        for n in parallel:
            account += 1
            statuses = await burst(
                services, web, counter, account, [f"guess-{i}" for i in range(n)]
            )
            rows.append((f"{n} wrong passwords at once", counter.calls, statuses))
        codes = 0
        for _ in range(rounds):
            account += 1
            guesses = [f"guess-{i}" for i in range(19)] + [PASSWORD]
            statuses = await burst(services, web, counter, account, guesses)
            codes += statuses[-1] == 302
            rows.append(("19 wrong + the right one at once", counter.calls, statuses))
        await services.close()

    where = url.split("@")[-1] if database_url else "SQLite file"
    print(f"database: {where}; limit {settings.login_max_failures} checks per window; in-process")
    print(f"{'burst':<34} {'checks':>7} {'401':>5} {'429':>5} {'302 (code)':>11} {'5xx':>5}")
    for name, checks, statuses in rows:
        errors = sum(status >= 500 for status in statuses)
        print(
            f"{name:<34} {checks:>7} {statuses.count(401):>5} {statuses.count(429):>5} "
            f"{statuses.count(302):>11} {errors:>5}"
        )
    print(f"rounds of 19 wrong + right that got a code: {codes} of {rounds}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    logging.getLogger("claimflow").setLevel(logging.ERROR)  # one refusal line per 429
    asyncio.run(main(args.parallel, args.rounds, args.database_url))
