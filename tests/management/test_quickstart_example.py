"""``examples/management_quickstart.py`` does its tour against a real app (in-process ASGI)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI

from claimflow.services import Services
from tests.conftest import ISSUER
from tests.helpers import create_m2m_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "management_quickstart.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("management_quickstart", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_quickstart_creates_a_billed_organization_and_prints_kinde_shapes(
    app: FastAPI, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example()
    client_id, secret = await create_m2m_app(services)
    transport = httpx.ASGITransport(app=app)
    first = await example.run(ISSUER, client_id, secret, transport=transport)
    assert sorted(e["feature_code"] for e in first["entitlements"]) == ["api_calls", "seats", "sso"]
    assert [a["plan_code"] for a in first["agreements"]] == ["quickstart_pro"]
    assert first["organization"]["billing"]["agreements"][0]["plan_code"] == "quickstart_pro"
    assert '"entitlement_limit_max": 25' in capsys.readouterr().out

    again = await example.run(ISSUER, client_id, secret, transport=transport)
    assert again["organization"]["code"] != first["organization"]["code"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--client-id", "abc", "--client-secret", "-starts-with-a-dash"],
        ["--client-id=abc", "--client-secret=-starts-with-a-dash"],
        ["--client-secret", "-starts-with-a-dash", "--client-id", "abc"],
    ],
)
def test_quickstart_reads_a_client_secret_that_starts_with_a_dash(argv: list[str]) -> None:
    args = load_example().parse_arguments(argv)
    assert (args.client_id, args.client_secret) == ("abc", "-starts-with-a-dash")
