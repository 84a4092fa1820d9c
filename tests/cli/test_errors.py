"""Errors a person can act on: one or two lines saying what is wrong and what to do, no traceback.

Each test runs the real command (typer's runner in-process, or the installed ``claimflow``
script) with one thing wrong and checks the exit code and the whole of stderr.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import Result

from claimflow.cli.problems import explain
from tests.cli.conftest import CLAIMFLOW, Invoke, free_port

OTHER_SECRET_KEY = "another-deployment-Kx4Wq9Lm2Zt7Vb3Nd8Rj"


def error_lines(result: Result) -> list[str]:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.stderr
    assert all(line.startswith("error: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines


def refused(result: Result, code: int, *expected: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    text = "\n".join(error_lines(result))
    for fragment in expected:
        assert fragment in text, text
    return text


def test_a_database_that_does_not_exist_says_how_to_create_it(
    invoke: Invoke, workdir: Path
) -> None:
    name = f"claimflow_missing_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    result = invoke("migrate", "--database-url", url)
    refused(result, 1, f"database '{name}' does not exist on 127.0.0.1:5432", "createdb", name)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_sync_postgresql_url_names_the_asyncpg_url(
    invoke: Invoke, workdir: Path, scheme: str
) -> None:
    result = invoke("migrate", "--database-url", f"{scheme}://claims:pw@db.internal/claims")
    refused(
        result,
        2,
        "CLAIMFLOW_DATABASE_URL",
        "write postgresql+asyncpg://claims:***@db.internal/claims",
    )


def test_a_sync_sqlite_url_names_the_aiosqlite_url(invoke: Invoke, workdir: Path) -> None:
    result = invoke("keys", "list", "--database-url", "sqlite:///./claims.db")
    refused(result, 2, "write sqlite+aiosqlite:///./claims.db")
    assert not (workdir / "claims.db").exists()


def test_a_refused_port_says_nothing_listens_there(invoke: Invoke, workdir: Path) -> None:
    port = free_port()
    result = invoke(
        "migrate", "--database-url", f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"
    )
    refused(result, 1, f"cannot connect to the database at 127.0.0.1:{port} (connection refused)")


def test_a_url_that_does_not_parse_shows_both_accepted_forms(
    invoke: Invoke, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", "db.internal:5432/claims")
    result = invoke("prune")
    refused(result, 2, "cannot be parsed", "sqlite+aiosqlite:///", "postgresql+asyncpg://")


def test_workflows_enabled_that_is_not_json_shows_a_json_list(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_WORKFLOWS_ENABLED", "org_billing,user_billing")
    result = invoke("workflows", "list")
    refused(
        result,
        2,
        "CLAIMFLOW_WORKFLOWS_ENABLED is not valid JSON",
        '\'["org_billing", "user_billing", "org_billing_m2m"]\'',
    )


def test_an_unknown_workflow_lists_the_known_ones(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_WORKFLOWS_ENABLED", '["org_billing", "support_teir"]')
    result = invoke("serve")
    refused(result, 2, "'support_teir'", "org_billing", "CLAIMFLOW_WORKFLOWS_ENABLED")


def test_an_unsupported_signing_algorithm_lists_the_supported(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_SIGNING_ALGORITHM", "HS256")
    result = invoke("keys", "list")
    refused(result, 2, "CLAIMFLOW_SIGNING_ALGORITHM", "'HS256'", "RS256, ES256 or EdDSA")


def test_a_config_file_that_does_not_parse_names_the_file_and_line(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    (workdir / "claimflow.toml").write_text('[claimflow]\nport = "8000\n', encoding="utf-8")
    result = invoke("migrate")
    refused(result, 2, "claimflow.toml is not valid TOML", "line 2")


def test_an_unknown_key_in_the_config_file_is_refused(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    (workdir / "claimflow.toml").write_text("[claimflow]\nacess_token_ttl_seconds = 60\n")
    result = invoke("migrate")
    refused(result, 2, "'acess_token_ttl_seconds'", "did you mean 'access_token_ttl_seconds'")


def test_a_claimflow_config_that_does_not_exist_is_refused(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.setenv("CLAIMFLOW_CONFIG", str(workdir / "prod.toml"))
    result = invoke("migrate")
    refused(result, 2, "CLAIMFLOW_CONFIG names", "prod.toml", "not a file")


@pytest.mark.parametrize(
    ("key", "why"),
    [("s3cret", "too short"), ("changeme-changeme-changeme-changeme-1234", "placeholder")],
)
def test_a_short_or_placeholder_secret_key_is_refused(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch, key: str, why: str
) -> None:
    monkeypatch.setenv("CLAIMFLOW_SECRET_KEY", key)
    result = invoke("init")
    refused(result, 2, "CLAIMFLOW_SECRET_KEY", why, "secrets.token_urlsafe(32)")


def test_a_wrong_secret_key_says_it_cannot_decrypt_the_stored_keys(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("keys", "list").exit_code == 0
    monkeypatch.setenv("CLAIMFLOW_SECRET_KEY", OTHER_SECRET_KEY)
    for command in (("keys", "list"), ("serve",)):
        result = invoke(*command)
        refused(
            result,
            2,
            "CLAIMFLOW_SECRET_KEY cannot decrypt",
            "the key the database was created with",
        )


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_port_in_use_is_refused_before_the_banner(
    invoke: Invoke, cli_db_url: str, command: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(command, "--port", str(port))
    refused(result, 2, f"port {port} on 127.0.0.1 is already in use", "--port")
    assert "claimflow demo at" not in result.stdout


def test_the_installed_command_prints_one_line_and_no_traceback(workdir: Path) -> None:
    run = subprocess.run(
        [CLAIMFLOW, "migrate"],
        env={**os.environ, "CLAIMFLOW_DATABASE_URL": "postgresql://claims@db.internal/claims"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "error: CLAIMFLOW_DATABASE_URL: postgresql:// needs claimflow's async driver: "
        "write postgresql+asyncpg://claims@db.internal/claims"
    ]


def test_only_failures_an_operator_can_fix_are_shortened(cli_db_url: str) -> None:
    """A bug keeps its traceback: ``explain`` leaves it alone."""
    assert explain(RuntimeError("a bug"), cli_db_url) is None
    assert explain(KeyError("claims"), cli_db_url) is None
