"""OAuth client applications; client secrets are stored as SHA-256 digests only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import digest_secret, secret_matches
from claimflow.domain import Application, ApplicationType
from claimflow.domain.ids import new_client_id, new_client_secret
from claimflow.domain.origins import origin_of
from claimflow.errors import NotFound
from claimflow.store import billing_versions
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.loop_reads import PreparedRead, SqliteLoopReader
from claimflow.store.pg_direct import DirectPool, PgStatement


def application_from_row(row: Any) -> Application:
    return Application(
        client_id=row.client_id,
        name=row.name,
        type=ApplicationType(row.type),
        has_client_secret=row.client_secret_hash is not None,
        redirect_uris=tuple(row.redirect_uris or ()),
        logout_uris=tuple(row.logout_uris or ()),
        scopes=tuple(row.scopes or ()),
        require_organization=bool(row.require_organization),
        access_token_ttl_seconds=row.access_token_ttl_seconds,
        id_token_ttl_seconds=row.id_token_ttl_seconds,
        refresh_token_ttl_seconds=row.refresh_token_ttl_seconds,
        allowed_origins=tuple(row.allowed_origins or ()),
        org_code=row.org_code,
    )


async def create_application(
    conn: AsyncConnection,
    *,
    name: str,
    type: ApplicationType,
    redirect_uris: Sequence[str] = (),
    logout_uris: Sequence[str] = (),
    scopes: Sequence[str] = (),
    require_organization: bool = False,
    client_id: str | None = None,
    allowed_origins: Sequence[str] = (),
    org_code: str | None = None,
) -> tuple[Application, str | None]:
    """Create an application; returns it and its client secret, which is never shown again."""
    secret = None if type is ApplicationType.SPA else new_client_secret()
    cid = client_id or new_client_id()
    await conn.execute(
        insert(t.applications).values(
            client_id=cid,
            name=name,
            type=type.value,
            client_secret_hash=digest_secret(secret) if secret else None,
            redirect_uris=list(redirect_uris),
            logout_uris=list(logout_uris),
            scopes=sorted(set(scopes)),
            require_organization=require_organization,
            allowed_origins=list(allowed_origins),
            org_code=org_code,
            created_on=utcnow(),
        )
    )
    return await get_application(conn, cid), secret


_BY_CLIENT_ID = select(t.applications).where(t.applications.c.client_id == bindparam("client_id"))
"""Built once: every token request runs it, and SQLAlchemy then only looks up its compiled form."""


async def find_application(conn: AsyncConnection, client_id: str) -> Application | None:
    row = (await conn.execute(_BY_CLIENT_ID, {"client_id": client_id})).first()
    return None if row is None else application_from_row(row)


async def get_application(conn: AsyncConnection, client_id: str) -> Application:
    app = await find_application(conn, client_id)
    if app is None:
        raise NotFound("No application with this id.", "APPLICATION_INVALID")
    return app


_ORG_BILLING_VERSION = (
    select(t.billing_versions.c.version)
    .where(
        t.billing_versions.c.subject
        == literal(billing_versions.SUBJECT_PREFIX_ORG) + t.applications.c.org_code
    )
    .scalar_subquery()
    .label("org_billing_version")
)

_AUTHENTICATE = select(t.applications, _ORG_BILLING_VERSION).where(
    t.applications.c.client_id == bindparam("client_id")
)
"""Built once, as ``_BY_CLIENT_ID``: the client-credentials grant runs it on every token."""
_AUTHENTICATE_ON_LOOP = PreparedRead(_AUTHENTICATE)
_AUTHENTICATE_DIRECT = PgStatement(_AUTHENTICATE)
_BY_CLIENT_ID_DIRECT = PgStatement(_BY_CLIENT_ID)


async def authenticate_client(
    conn: AsyncConnection, client_id: str, client_secret: str
) -> Application | None:
    """The application if the secret matches its stored digest (constant-time compare).

    The same statement reads the billing version of an organization's M2M application
    (``billing_versions.read_with_request``): its token's billing lookup then needs no
    round trip of its own.
    """
    row = (await conn.execute(_AUTHENTICATE, {"client_id": client_id})).first()
    return _authenticated(row, client_secret)


def authenticate_client_on_loop(
    reader: SqliteLoopReader, client_id: str, client_secret: str
) -> Application | None:
    """``authenticate_client`` through the SQLite file's event-loop reader (``store.loop_reads``):
    the same statement and checks without aiosqlite's thread hops. Raises
    ``LoopReadUnavailable`` when the read would wait for a lock; the caller then reads through
    a connection."""
    row = reader.first(_AUTHENTICATE_ON_LOOP, {"client_id": client_id})
    return _authenticated(row, client_secret)


async def authenticate_client_direct(
    pool: DirectPool, client_id: str, client_secret: str
) -> Application | None:
    """``authenticate_client`` on PostgreSQL's driver directly (``store.pg_direct``): the same
    statement and checks, one round trip, no checkout of the engine's pool."""
    row = await pool.fetchrow(_AUTHENTICATE_DIRECT, {"client_id": client_id})
    return _authenticated(row, client_secret)


async def find_application_direct(pool: DirectPool, client_id: str) -> Application | None:
    """``find_application`` on PostgreSQL's driver directly (a public client's identification)."""
    row = await pool.fetchrow(_BY_CLIENT_ID_DIRECT, {"client_id": client_id})
    return None if row is None else application_from_row(row)


def _authenticated(row: Any, client_secret: str) -> Application | None:
    if row is None or row.client_secret_hash is None:
        return None
    if not secret_matches(client_secret, row.client_secret_hash):
        return None
    if row.org_code is not None:
        billing_versions.read_with_request(
            billing_versions.organization_subject(row.org_code), int(row.org_billing_version or 0)
        )
    return application_from_row(row)


async def list_applications(
    conn: AsyncConnection, *, limit: int, after_id: str | None = None
) -> list[Application]:
    query = select(t.applications).order_by(t.applications.c.client_id).limit(limit)
    if after_id is not None:
        query = query.where(t.applications.c.client_id > after_id)
    return [application_from_row(row) for row in await conn.execute(query)]


async def update_application(conn: AsyncConnection, client_id: str, **changes: Any) -> Application:
    await get_application(conn, client_id)
    if changes:
        await conn.execute(
            update(t.applications).where(t.applications.c.client_id == client_id).values(**changes)
        )
    return await get_application(conn, client_id)


async def browser_origins(conn: AsyncConnection) -> frozenset[str]:
    """Every origin some application lets a browser call the token endpoint from (CORS).

    A public client's redirect URIs are where its browser code runs, so their origins count;
    a confidential client's do not (its secret must never be in a browser). Each application's
    explicit ``allowed_origins`` count too.
    """
    columns = (
        t.applications.c.client_secret_hash,
        t.applications.c.type,
        t.applications.c.redirect_uris,
        t.applications.c.allowed_origins,
    )
    origins: set[str] = set()
    for row in await conn.execute(select(*columns)):
        origins.update(row.allowed_origins or ())
        if row.client_secret_hash is None and row.type != ApplicationType.M2M.value:
            origins.update(origin_of(uri) for uri in row.redirect_uris or ())
    origins.discard("")
    return frozenset(origins)


async def delete_application(conn: AsyncConnection, client_id: str) -> None:
    """Delete an application with its unspent codes and refresh tokens (404 when unknown).

    Its API authorizations go by cascade. Its Management API tokens are refused from the next
    request on, because the Management API reads the application's grants on every request.
    """
    await get_application(conn, client_id)
    for table in (t.authorization_codes, t.refresh_tokens):
        await conn.execute(delete(table).where(table.c.client_id == client_id))
    await conn.execute(delete(t.applications).where(t.applications.c.client_id == client_id))
