"""Fault figures for design §9 and the outage handling, re-measured in one run.

    .venv/bin/python bench/stale_billing_faults.py [--sign-ins 20] [--configs postgresql,...]

For each configuration (PostgreSQL only; PostgreSQL + a private Redis; that Redis paused with
SIGSTOP during the change) it starts ``claimflow serve --workers 2``, has both workers cache
Acme's plan, changes the plan through worker B, and then counts, over ``--sign-ins`` sign-ins
alternating between the workers, the tokens that still carry the old plan. Then, on a private
PostgreSQL cluster, it stops the database under the server and records the status codes of 40
requests, the log lines about the outage and the tracebacks, then starts it again and counts
the requests until the first 200. Run it against another checkout with ``PYTHONPATH`` to get
the "before" column.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from tests.servers import (
    ACME,
    ACME_CUSTOMER,
    M2M,
    PinnedConnections,
    PrivatePostgres,
    PrivateRedis,
    claimflow,
    demo_for_this_run,
    fresh_pg_database,
    m2m_token,
    running_server,
    server_environment,
    sign_in,
)


def stale_tokens(config: str, sign_ins: int) -> tuple[int, int, int]:
    """(tokens with the old plan, failed sign-ins, sign-ins) after the change answered."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        redis = None if config == "postgresql" else PrivateRedis(workdir)
        if redis is not None:
            redis.start()
        try:
            with fresh_pg_database() as url:
                env = server_environment(url, None if redis is None else redis.url)
                claimflow(env, workdir, "import", str(demo_for_this_run(workdir)))
                with running_server(env, workdir) as (base_url, workers, _server):
                    port = int(base_url.rsplit(":", 1)[1])
                    pinned = PinnedConnections(base_url, port, workers)
                    pid_a, pid_b = sorted(workers)
                    api = {"Authorization": f"Bearer {m2m_token(pinned.to(pid_a), base_url)}"}
                    for pid in (pid_a, pid_b, pid_a, pid_b):
                        sign_in(pinned.to(pid), ACME)
                    if redis is not None and config == "redis_paused":
                        redis.pause()
                    try:
                        pinned.to(pid_b).post(
                            "/api/v1/billing/agreements",
                            json={"customer_id": ACME_CUSTOMER, "plan_code": "enterprise"},
                            headers=api,
                            timeout=30,
                        ).raise_for_status()
                    except httpx.TimeoutException:
                        print(f"{config}: the plan change did not answer within 30 s")
                    old = failed = 0
                    for i in range(sign_ins):
                        try:
                            claims, _ = sign_in(pinned.to((pid_a, pid_b)[i % 2]), ACME)
                        except (AssertionError, httpx.HTTPError):
                            failed += 1  # a failed sign-in issued nothing
                            continue
                        plans = [a["plan_code"] for a in claims["org_billing"]["agreements"]]
                        old += plans != ["enterprise"]
                    pinned.close()
                    return old, failed, sign_ins
        finally:
            if redis is not None:
                redis.stop()


def outage() -> dict[str, object]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        with tempfile.TemporaryDirectory() as scratch, fresh_pg_database(cluster.server) as url:
            workdir = Path(scratch)
            env = server_environment(url, None)
            claimflow(env, workdir, "import", str(demo_for_this_run(workdir)))
            with running_server(env, workdir) as (base_url, _workers, _server):
                with httpx.Client(base_url=base_url, timeout=30) as http:
                    api = {"Authorization": f"Bearer {m2m_token(http, base_url)}"}
                    token_form = {
                        "grant_type": "client_credentials",
                        "client_id": M2M[0],
                        "client_secret": M2M[1],
                        "audience": base_url + "/api",
                    }
                    cluster.stop()
                    statuses: collections.Counter[str] = collections.Counter()
                    for _ in range(20):
                        for response in (
                            http.post("/oauth2/token", data=token_form),
                            http.get("/api/v1/organizations", headers=api),
                        ):
                            kind = response.headers.get("content-type", "?").split(";")[0]
                            statuses[f"{response.status_code} {kind}"] += 1
                    cluster.start()
                    until_ok = 0
                    started = time.monotonic()
                    while http.post("/oauth2/token", data=token_form).status_code != 200:
                        until_ok += 1
                        time.sleep(0.05)
                    recovered_s = time.monotonic() - started
                log = (workdir / "serve.log").read_text()
        return {
            "responses": dict(statuses),
            "outage log lines": sum("database unavailable" in line for line in log.splitlines()),
            "tracebacks": log.count("Traceback"),
            "log bytes": len(log),
            "failed requests after restart": until_ok,
            "recovered in s": round(recovered_s, 2),
        }
    finally:
        cluster.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ins", type=int, default=20)
    parser.add_argument("--configs", default="postgresql,postgresql+redis,redis_paused")
    parser.add_argument("--no-outage", action="store_true")
    args = parser.parse_args()
    print(f"{'configuration':<20} after the change answered: old-plan tokens, failed sign-ins")
    for config in args.configs.split(","):
        old, failed, total = stale_tokens(config, args.sign_ins)
        print(f"{config:<20} {old} of {total} old, {failed} of {total} failed")
    if not args.no_outage:
        print("PostgreSQL stopped under serve --workers 2 (40 requests):")
        for name, value in outage().items():
            print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
