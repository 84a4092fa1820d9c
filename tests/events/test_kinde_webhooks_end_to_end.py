"""A plan change on Kinde shows in the next claimflow token, through Kinde's webhook.

Two real servers on loopback. "Kinde" is a claimflow seeded with the demo business: it answers
the Management API, publishes its JWKS and sends Kinde's webhooks (signed JWTs). The claimflow
under test reads billing from it over HTTP (``CLAIMFLOW_MANAGEMENT_API_URL``) with a billing
cache that would keep an entry for an hour, and receives its webhooks
(``CLAIMFLOW_KINDE_WEBHOOK_DOMAIN``). Alice signs in on Pro; Acme moves to Enterprise on
"Kinde"; the webhook arrives and her next sign-in carries Enterprise, long before the TTL.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from claimflow.app import create_app
from claimflow.cli.demo import seed_once
from claimflow.seed import demo_data_path, load_business_file
from tests.conftest import make_settings
from tests.helpers import free_port, serving
from tests.servers import M2M, m2m_token, sign_in


def plan_of(claims: dict[str, object]) -> list[str]:
    billing = claims["org_billing"]
    assert isinstance(billing, dict)
    return [agreement["plan_code"] for agreement in billing["agreements"]]


def test_a_plan_change_on_kinde_reaches_the_next_token_through_its_webhook(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = load_business_file(demo_data_path())
    urls = {}
    for name in ("kinde", "claimflow"):
        path = tmp_path / f"{name}.db"
        shutil.copy(sqlite_template, path)
        urls[name] = f"sqlite+aiosqlite:///{path}"
        assert asyncio.run(seed_once(urls[name], demo))
    kinde_port, our_port = free_port(), free_port()
    kinde_url, our_url = f"http://127.0.0.1:{kinde_port}", f"http://127.0.0.1:{our_port}"
    kinde = create_app(
        make_settings(urls["kinde"], issuer=kinde_url, webhook_poll_interval_seconds=0.2)
    )
    monkeypatch.setenv("KINDE_WF_M2M_CLIENT_ID", M2M[0])
    monkeypatch.setenv("KINDE_WF_M2M_CLIENT_SECRET", M2M[1])
    ours = create_app(
        make_settings(
            urls["claimflow"],
            issuer=our_url,
            management_api_url=kinde_url,
            kinde_webhook_domain=kinde_url,
            billing_cache_ttl_seconds=3600,
            webhook_delivery_enabled=False,
        )
    )
    with (
        serving(kinde, kinde_port),
        serving(ours, our_port),
        httpx.Client(base_url=kinde_url) as on_kinde,
    ):
        headers = {"Authorization": f"Bearer {m2m_token(on_kinde, kinde_url)}"}
        hook = on_kinde.post(
            "/api/v1/webhooks",
            json={
                "name": "claimflow billing cache",
                "endpoint": our_url + "/webhooks/kinde",
                "event_types": ["customer.agreement_created"],
            },
            headers=headers,
        )
        assert hook.status_code == 200, hook.text

        with httpx.Client(base_url=our_url) as on_ours:
            before, _ = sign_in(on_ours, "org_acme")
            assert plan_of(before) == ["pro"]

            change = on_kinde.post(
                "/api/v1/billing/agreements",
                json={"customer_id": "customer_acme", "plan_code": "enterprise"},
                headers=headers,
            )
            assert change.status_code == 200, change.text

            deadline = time.monotonic() + 30
            while True:
                after, _ = sign_in(on_ours, "org_acme")
                if plan_of(after) == ["enterprise"]:
                    break
                # Until the webhook lands the cached Pro is served: the TTL is an hour.
                assert plan_of(after) == ["pro"]
                assert time.monotonic() < deadline, "the webhook never reached claimflow"
                time.sleep(0.2)
        assert "sso" in {e["feature_code"] for e in after["org_billing"]["entitlements"]}  # type: ignore[index]
