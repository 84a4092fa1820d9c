"""``claimflow keys list`` and ``claimflow keys rotate``."""

from __future__ import annotations

from tests.cli.conftest import Invoke


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_list_creates_the_first_key_and_rotate_keeps_the_old_one_published(
    invoke: Invoke, cli_db_url: str
) -> None:
    first = invoke("keys", "list")
    assert first.exit_code == 0, first.output
    (only,) = rows(first.stdout)
    assert only[1] == "RS256" and only[2] == "active"

    rotated = invoke("keys", "rotate", "--algorithm", "ES256")
    assert rotated.exit_code == 0
    assert "ES256" in rotated.stdout

    listed = rows(invoke("keys", "list").stdout)
    assert [(r[1], r[2]) for r in listed] == [("ES256", "active"), ("RS256", "retired")]
    assert listed[1][0] == only[0]
    assert "PRIVATE" not in invoke("keys", "list").stdout


def test_rotate_refuses_an_unknown_algorithm(invoke: Invoke, cli_db_url: str) -> None:
    result = invoke("keys", "rotate", "--algorithm", "HS256")
    assert result.exit_code == 2
    assert "unsupported algorithm" in result.stderr
