"""The refresh_token grant: rotation on every use, reuse revokes the family, fresh claims."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from claimflow.app import create_app
from claimflow.crypto import digest_secret
from claimflow.domain import ApplicationType
from claimflow.services import Services, build_services
from claimflow.store import applications, organizations
from claimflow.store import tables as t
from claimflow.store.loop_reads import LoopReadUnavailable, SqliteLoopReader
from claimflow.store.refresh_grant_reads import read_refresh_grant_on_loop
from tests.conftest import ISSUER, make_settings
from tests.oidc.conftest import Deployment
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


async def refresh(
    client: httpx.AsyncClient, biz: Business, token: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token} | extra,
        auth=(biz.web_client_id, biz.web_secret),
    )


async def active(client: httpx.AsyncClient, biz: Business, token: str) -> bool:
    response = await client.post(
        "/oauth2/introspect", data={"token": token}, auth=(biz.web_client_id, biz.web_secret)
    )
    return bool(response.json()["active"])


async def first_tokens(deployment: Deployment, **extra: str) -> tuple[Business, dict[str, str]]:
    biz = await seed_business(deployment.services)
    callback = await sign_in_for_code(deployment.client, biz, **extra)
    response = await exchange(deployment.client, biz, callback["code"])
    assert response.status_code == 200, response.text
    return biz, response.json()


async def test_refresh_rotates_the_token_on_every_use(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    third = (await refresh(client, biz, second["refresh_token"])).json()
    assert len({tokens["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert len({tokens["access_token"], second["access_token"], third["access_token"]}) == 3
    claims = jwt.decode(third["access_token"], options={"verify_signature": False})
    assert claims["org_code"] == "org_acme"
    assert "id_token" in third
    assert await active(client, biz, third["refresh_token"])
    assert not await active(client, biz, second["refresh_token"])


async def spent_before_the_grace(deployment: Deployment, token: str) -> None:
    """Move the token's spend back past the reuse grace (instead of waiting it out)."""
    grace = deployment.services.settings.refresh_reuse_grace_seconds
    async with deployment.services.db.transaction() as conn:
        await conn.execute(
            update(t.refresh_tokens)
            .where(t.refresh_tokens.c.token_hash == digest_secret(token))
            .values(used_on=datetime.now(UTC) - timedelta(seconds=grace + 1))
        )


async def test_refresh_token_reuse_after_the_grace_revokes_family(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    await spent_before_the_grace(deployment, tokens["refresh_token"])

    reused = await refresh(client, biz, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    assert not await active(client, biz, second["refresh_token"])
    assert not await active(client, biz, second["access_token"])
    assert (await refresh(client, biz, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_an_identical_retry_within_the_grace_gets_the_same_successor_once(
    deployment: Deployment,
) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    lost = (await refresh(client, biz, tokens["refresh_token"])).json()  # the response is lost

    retried = await refresh(client, biz, tokens["refresh_token"])
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["refresh_token"] == lost["refresh_token"]
    assert body["access_token"] != lost["access_token"]
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["org_code"] == (
        "org_acme"
    )
    assert await active(client, biz, body["access_token"])
    assert not await active(client, biz, lost["access_token"])  # the lost response's token

    # Once: a second retry is reuse, and it revokes the family.
    again = await refresh(client, biz, tokens["refresh_token"])
    assert again.json()["error"] == "invalid_grant"
    assert not await active(client, biz, body["refresh_token"])
    assert not await active(client, biz, body["access_token"])


async def test_a_retry_after_the_successor_was_used_revokes_the_family(
    deployment: Deployment,
) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    third = (await refresh(client, biz, second["refresh_token"])).json()

    replayed = await refresh(client, biz, tokens["refresh_token"])
    assert replayed.json()["error"] == "invalid_grant"
    assert not await active(client, biz, third["refresh_token"])


async def test_a_retry_within_the_grace_into_a_revoked_family_gets_nothing(
    deployment: Deployment,
) -> None:
    """A sign-out (RFC 7009) inside the grace of a spend: the spent token's retry must not
    bring back the successor the revocation ended (nor any new token)."""
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    revoked = await client.post(
        "/oauth2/revoke",
        data={"token": second["refresh_token"]},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert revoked.status_code == 200
    retried = await refresh(client, biz, tokens["refresh_token"])
    assert retried.status_code == 400 and retried.json()["error"] == "invalid_grant"
    assert (await refresh(client, biz, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_refresh_or_reuse_in_one_family_changes_nothing_in_another(
    deployment: Deployment,
) -> None:
    """The spend finds rows by primary key only (no ``family_id`` condition): two sessions of
    one user and client, rotated and replayed in turn, keep apart. The other session's sealed
    successor survives this one's spends, and this one's revocation leaves it live."""
    client = deployment.client
    biz, first = await first_tokens(deployment)
    other = (await exchange(client, biz, (await sign_in_for_code(client, biz))["code"])).json()
    first_next = (await refresh(client, biz, first["refresh_token"])).json()

    other_next = (await refresh(client, biz, other["refresh_token"])).json()
    other_last = (await refresh(client, biz, other_next["refresh_token"])).json()
    # The first session's spent token still has its successor for an identical retry.
    retried = await refresh(client, biz, first["refresh_token"])
    assert retried.status_code == 200, retried.text
    assert retried.json()["refresh_token"] == first_next["refresh_token"]

    # Reuse in the other session revokes it alone.
    await spent_before_the_grace(deployment, other["refresh_token"])
    assert (await refresh(client, biz, other["refresh_token"])).json()["error"] == "invalid_grant"
    assert not await active(client, biz, other_last["refresh_token"])
    assert await active(client, biz, first_next["refresh_token"])
    assert await active(client, biz, retried.json()["access_token"])
    assert (await refresh(client, biz, first_next["refresh_token"])).status_code == 200


async def test_tokens_rotated_before_the_predecessor_column_still_rotate_and_revoke(
    deployment: Deployment,
) -> None:
    """Rows written before ``0004_refresh_predecessor`` name no predecessor: a spend of one
    cannot clear the sealed successor on the token it replaced, so a retry of that token
    finds its successor spent and revokes the family (the migration's promise); a token with
    no predecessor rotates as any other."""
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    async with deployment.services.db.transaction() as conn:
        await conn.execute(update(t.refresh_tokens).values(predecessor_hash=None))
    third = await refresh(client, biz, second["refresh_token"])
    assert third.status_code == 200, third.text
    spent = t.refresh_tokens.c.token_hash == digest_secret(tokens["refresh_token"])
    async with deployment.services.db.connect() as conn:
        kept = (
            await conn.execute(select(t.refresh_tokens.c.successor_sealed).where(spent))
        ).scalar()
    assert kept is not None  # not cleared: the second token names no predecessor

    replayed = await refresh(client, biz, tokens["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert not await active(client, biz, third.json()["refresh_token"])
    assert not await active(client, biz, third.json()["access_token"])
    again = await refresh(client, biz, third.json()["refresh_token"])
    assert again.json()["error"] == "invalid_grant"


async def test_a_retry_by_another_client_gets_nothing(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    async with deployment.services.db.transaction() as conn:
        other, other_secret = await applications.create_application(
            conn, name="other", type=ApplicationType.REGULAR, redirect_uris=["https://o/cb"]
        )
    stolen = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(other.client_id, str(other_secret)),
    )
    assert stolen.json()["error"] == "invalid_grant"
    assert await active(client, biz, second["refresh_token"])


async def test_the_successor_is_kept_sealed_and_dropped_once_handed_out(
    deployment: Deployment,
) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    spent = t.refresh_tokens.c.token_hash == digest_secret(tokens["refresh_token"])
    async with deployment.services.db.connect() as conn:
        sealed = (
            await conn.execute(select(t.refresh_tokens.c.successor_sealed).where(spent))
        ).scalar()
    assert sealed is not None
    assert second["refresh_token"].encode() not in bytes(sealed)
    assert (await refresh(client, biz, tokens["refresh_token"])).status_code == 200
    async with deployment.services.db.connect() as conn:
        kept = (
            await conn.execute(select(t.refresh_tokens.c.successor_sealed).where(spent))
        ).scalar()
    assert kept is None


async def test_concurrent_refreshes_of_one_token_have_one_winner(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    results = await asyncio.gather(
        *(refresh(client, biz, tokens["refresh_token"]) for _ in range(3))
    )
    # One wins; one loser counts as the winner's retry within the reuse grace and gets the same
    # successor, unless the other loser revoked the family before that retry had issued; the
    # other presented a spent token: the family is revoked, with every token handed out.
    assert sorted(r.status_code for r in results) in ([200, 200, 400], [200, 400, 400])
    winners = [r.json() for r in results if r.status_code == 200]
    assert len({winner["refresh_token"] for winner in winners}) == 1
    for winner in winners:
        assert not await active(client, biz, winner["refresh_token"])
        assert not await active(client, biz, winner["access_token"])


async def test_refresh_may_narrow_scope_but_not_widen_it(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    wider = await refresh(client, biz, tokens["refresh_token"], scope="openid admin")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrow = (await refresh(client, biz, tokens["refresh_token"], scope="openid offline")).json()
    assert narrow["scope"] == "openid offline"
    assert "email" not in jwt.decode(narrow["id_token"], options={"verify_signature": False})
    # Narrowing once does not shrink what the family was granted.
    full = (await refresh(client, biz, narrow["refresh_token"])).json()
    assert full["scope"] == "openid profile email offline"


async def test_refresh_after_leaving_the_organization_is_invalid_grant(
    deployment: Deployment,
) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    async with deployment.services.db.transaction() as conn:
        await organizations.remove_member(conn, "org_acme", biz.user_id)
    response = await refresh(client, biz, tokens["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_refresh_token_of_another_client_is_invalid_grant(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": biz.spa_client_id,
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert (await refresh(client, biz, tokens["refresh_token"])).status_code == 200


async def test_unknown_refresh_token_is_invalid_grant(deployment: Deployment) -> None:
    biz = await seed_business(deployment.services)
    response = await refresh(deployment.client, biz, "nope")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@contextmanager
def reader_that_would_wait(path: Path) -> Iterator[SqliteLoopReader]:
    """A loop reader whose every read would wait for a lock: its file is in rollback-journal
    mode under another connection's exclusive lock (a WAL file being recovered answers the
    same ``SQLITE_BUSY``)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (k TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    reader = SqliteLoopReader(path)
    try:
        yield reader
    finally:
        reader.close()
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_refresh_whose_loop_read_would_wait_reads_through_the_engine(
    client: httpx.AsyncClient, services: Services, app: FastAPI, tmp_path: Path
) -> None:
    """SQLite: the grant's reads on the event loop give up instead of waiting for a lock; the
    refresh then reads through the async engine and issues, with every check as before."""
    deployment = Deployment(client, services, app)
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    on_loop = services.db.loop_reader
    assert on_loop is not None
    with reader_that_would_wait(tmp_path / "locked.sqlite") as locked:
        with pytest.raises(LoopReadUnavailable):
            read_refresh_grant_on_loop(locked, tokens["refresh_token"])
        services.db.loop_reader = locked
        try:
            second = await refresh(client, biz, tokens["refresh_token"])
            assert second.status_code == 200, second.text
            claims = jwt.decode(second.json()["access_token"], options={"verify_signature": False})
            assert claims["org_code"] == "org_acme"
            async with services.db.transaction() as conn:
                await organizations.remove_member(conn, "org_acme", biz.user_id)
            left = await refresh(client, biz, second.json()["refresh_token"])
            assert left.status_code == 400 and left.json()["error"] == "invalid_grant"
        finally:
            services.db.loop_reader = on_loop


@pytest.fixture
async def pg_deployment(pg_url: str) -> AsyncIterator[Deployment]:
    """The provider on PostgreSQL only, for the races READ COMMITTED can show (SQLite has one
    writer at a time)."""
    services = build_services(make_settings(pg_url))
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield Deployment(client, services, app)
    await services.close()


HELD_INSERTS = 7_204_117
"""The advisory lock ``held_refresh_inserts`` makes every new refresh token's insert wait for."""


@asynccontextmanager
async def held_refresh_inserts(pg_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold every insert into ``refresh_tokens`` (a rotation's successor) at its row, after the
    rotation has spent its token and before it commits, until the yielded ``release`` is
    awaited: the window a real rotation has for its commit's WAL flush, widened so that a test
    can put another statement into it. A trigger waits for an advisory lock held here; both
    are gone afterwards (the session's database is shared by the tests)."""
    holder = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    await holder.execute(
        f"""
        CREATE FUNCTION held_refresh_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared({HELD_INSERTS}); RETURN NEW; END $$;
        CREATE TRIGGER held_refresh_insert BEFORE INSERT ON refresh_tokens
            FOR EACH ROW EXECUTE FUNCTION held_refresh_insert();
        """
    )
    await holder.execute(f"SELECT pg_advisory_lock({HELD_INSERTS})")
    held = True

    async def release() -> None:
        nonlocal held
        if held:
            await holder.execute(f"SELECT pg_advisory_unlock({HELD_INSERTS})")
            held = False

    try:
        yield release
    finally:
        await release()
        await holder.execute(
            "DROP TRIGGER held_refresh_insert ON refresh_tokens; DROP FUNCTION held_refresh_insert()"
        )
        await holder.close()


async def until_waiting(services: Services, wait_event: str, query: str) -> None:
    """Until a backend of the test database waits for a lock (``wait_event``: ``advisory``,
    ``transactionid``) in a statement that starts with ``query``."""
    async with asyncio.timeout(10):
        while True:
            async with services.db.connect() as probe:
                waiting = (
                    await probe.exec_driver_sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND wait_event = $1 AND query LIKE $2",
                        (wait_event, f"{query}%"),
                    )
                ).scalar_one()
            if waiting:
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("revocation", ["replay", "rfc7009"])
async def test_a_rotation_committing_during_the_family_revocation_is_revoked_too(
    pg_deployment: Deployment, pg_url: str, revocation: str
) -> None:
    """RFC 9700 §4.14.2, RFC 7009 §2.1: revoking a family revokes every token of it, including
    a successor a concurrent refresh is writing at that moment (the thief refreshing as the
    client replays a spent token, or a refresh racing the client's sign-out). The
    revocation's ``UPDATE`` waits for the token the rotation is spending; the successor the
    rotation inserts is not in the snapshot that ``UPDATE`` started with."""
    deployment = pg_deployment
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    await spent_before_the_grace(deployment, tokens["refresh_token"])

    async def revoke() -> httpx.Response:
        if revocation == "replay":
            return await refresh(client, biz, tokens["refresh_token"])
        return await client.post(
            "/oauth2/revoke",
            data={"token": second["refresh_token"]},
            auth=(biz.web_client_id, biz.web_secret),
        )

    async with held_refresh_inserts(pg_url) as release:
        rotation = asyncio.create_task(refresh(client, biz, second["refresh_token"]))
        await until_waiting(deployment.services, "advisory", "WITH spent AS")
        revoked = asyncio.create_task(revoke())
        await until_waiting(deployment.services, "transactionid", "UPDATE refresh_tokens")
        await release()
        rotated, answered = await rotation, await revoked
    if revocation == "replay":
        assert answered.json()["error"] == "invalid_grant"
    else:
        assert answered.status_code == 200
    assert rotated.status_code == 200, rotated.text
    third = rotated.json()

    assert not await active(client, biz, third["access_token"])
    assert not await active(client, biz, third["refresh_token"])
    again = await refresh(client, biz, third["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


HELD_WORKFLOW = """
from claimflow.workflows import Trigger, WorkflowSettings

workflow_settings = WorkflowSettings(id="held_tokens", name="test", trigger=Trigger.USER_TOKENS_GENERATION)

HELD = {}


async def run(event, bindings):
    held = HELD.pop("next", None)
    if held is not None:
        entered, release = held
        entered.set()
        await release.wait()
"""


@pytest.fixture
async def held_deployment(any_db_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """The provider with a trusted ``user:tokens_generation`` workflow that holds the next
    request's tokens until the test says: ``hold_next_tokens``."""
    (tmp_path / "held_tokens.py").write_text(HELD_WORKFLOW)
    settings = make_settings(
        any_db_url,
        workflows_dir=str(tmp_path),
        workflows_enabled=["org_billing", "user_billing", "org_billing_m2m", "held_tokens"],
        workflows_trusted=["held_tokens"],
    )
    services = build_services(settings)
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield Deployment(client, services, app)
    await services.close()


def hold_next_tokens(deployment: Deployment) -> tuple[asyncio.Event, asyncio.Event]:
    """(entered, release): the next token request's workflow sets ``entered`` and waits for
    ``release``."""
    registry = deployment.services.workflows.registry
    assert registry is not None
    held: dict[str, object] = registry.known["held_tokens"].entry.__globals__["HELD"]
    entered, release = asyncio.Event(), asyncio.Event()
    held["next"] = (entered, release)
    return entered, release


async def test_a_retry_whose_successor_is_used_while_it_issues_revokes_the_family(
    held_deployment: Deployment,
) -> None:
    """A retry within the grace checks that the successor is unused, then issues (workflows,
    signing) and records its access token on the successor. If the successor is used in
    between, the retry is a retry after the successor was used: the family is revoked and the
    retry gets nothing (RFC 9700 §4.14.2), not a fresh access token beside a spent token."""
    deployment = held_deployment
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    lost = (await refresh(client, biz, tokens["refresh_token"])).json()

    entered, release = hold_next_tokens(deployment)
    retry = asyncio.create_task(refresh(client, biz, tokens["refresh_token"]))
    async with asyncio.timeout(10):
        await entered.wait()
    used = await refresh(client, biz, lost["refresh_token"])
    assert used.status_code == 200, used.text
    release.set()
    retried = await retry

    assert retried.status_code == 400
    assert retried.json()["error"] == "invalid_grant"
    assert not await active(client, biz, used.json()["refresh_token"])
    assert not await active(client, biz, used.json()["access_token"])
