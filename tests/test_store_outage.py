"""PostgreSQL down under ``claimflow serve --workers 2``: 503s, quiet logs, no lost workers.

A private PostgreSQL cluster (never the shared one) is stopped under a running two-worker
server and started again. While it is down every endpoint answers 503 in its own format, the
log carries a line per kind of failure per interval and no traceback, and a worker killed
meanwhile is replaced (its start-up does not need the database) instead of the supervisor
stopping the server. When the cluster is back, the same server answers 200 without a restart.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import (
    M2M,
    PrivatePostgres,
    children_of,
    claimflow,
    demo_for_this_run,
    fresh_pg_database,
    m2m_token,
    running_server,
    server_environment,
)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _client_credentials(http: httpx.Client, base_url: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": M2M[0],
            "client_secret": M2M[1],
            "audience": base_url + "/api",
        },
    )


def _until(condition: object, what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_an_outage_answers_503_keeps_the_workers_and_recovers(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    with fresh_pg_database(private_postgres.server) as database_url:
        env = server_environment(database_url, None)
        claimflow(env, tmp_path, "import", str(demo_for_this_run(tmp_path)))
        with running_server(env, tmp_path) as (base_url, workers, server):
            log_path = tmp_path / "serve.log"
            with httpx.Client(base_url=base_url, timeout=30) as http:
                api = {"Authorization": f"Bearer {m2m_token(http, base_url)}"}
                assert http.get("/api/v1/organizations", headers=api).status_code == 200

                private_postgres.stop()
                answers = []
                for _ in range(20):
                    answers.append(_client_credentials(http, base_url))
                    answers.append(http.get("/api/v1/organizations", headers=api))
                assert {r.status_code for r in answers} == {503}
                for response in answers:
                    assert response.headers["cache-control"] == "no-store"
                    assert response.headers["retry-after"].isdigit()
                oauth, kinde = answers[0].json(), answers[1].json()
                assert oauth["error"] == "temporarily_unavailable"
                assert kinde["errors"][0]["code"] == "SERVICE_UNAVAILABLE"

                # A worker killed during the outage is replaced; the server keeps serving 503s.
                os.kill(min(workers), signal.SIGKILL)
                _until(
                    lambda: log_path.read_text().count("Application startup complete") == 3,
                    "the replacement worker never started",
                )
                assert server.poll() is None
                started = re.findall(r"Started server process \[(\d+)\]", log_path.read_text())
                replacement = {int(pid) for pid in started} - workers
                assert len(replacement) == 1
                assert replacement <= children_of(server.pid)
                assert _client_credentials(http, base_url).status_code == 503

                private_postgres.start()
                _until(
                    lambda: _client_credentials(http, base_url).status_code == 200,
                    "the server did not recover after the database came back",
                )
                assert http.get("/api/v1/organizations", headers=api).status_code == 200

            log = log_path.read_text()
            assert "Traceback" not in log
            outage_lines = [line for line in log.splitlines() if "database unavailable" in line]
            assert 1 <= len(outage_lines) < len(answers) // 4
