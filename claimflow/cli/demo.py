"""``claimflow demo``: an embedded server with a seeded demo business, and what to try with it.

The data comes from ``claimflow/demo.yaml`` through the importer, so the demo is also a worked
example of the import format. The database is ``claimflow-demo.db`` in the working directory (kept
between runs, so tokens and sessions survive a restart); seeding is skipped when it already
happened, which makes restarting idempotent.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import make_url

from claimflow.app import create_app
from claimflow.cli.options import DEMO_DATABASE_URL, database_label
from claimflow.cli.preflight import check_deployment, ensure_port_free
from claimflow.cli.problems import record_database_url
from claimflow.cli.server import logging_options, tls_options
from claimflow.cli.tls import CertificatePair, local_certificate
from claimflow.seed import (
    BusinessData,
    InvalidBusinessData,
    demo_data_path,
    import_business_data,
    load_business_file,
)
from claimflow.settings import Settings, load_settings
from claimflow.store import Database, applications, organizations
from claimflow.store import migrate as apply_migrations

DEMO_PASSWORD = "claimflow-demo"
DEMO_M2M_CLIENT_ID = "demo-m2m"
DEMO_WEB_CLIENT_ID = "demo-web"
DEMO_TLS_DIRECTORY = "claimflow-demo-tls"


def demo_tls_directory(database_url: str) -> Path:
    """Where ``--https`` keeps the demo's certificate: beside the demo's SQLite file (the
    demo's data directory), else in the working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / DEMO_TLS_DIRECTORY
    return Path.cwd() / DEMO_TLS_DIRECTORY


async def seed_once(database_url: str, data: BusinessData) -> bool:
    """Import ``data`` unless an earlier run did; True when this call seeded."""
    db = Database(database_url)
    try:
        async with db.connect() as conn:
            marker_ids = [a.client_id for a in data.applications if a.client_id]
            if marker_ids:
                seeded = await applications.find_application(conn, marker_ids[0]) is not None
            else:
                seeded = await organizations.count_organizations(conn) > 0
        if seeded:
            return False
        await import_business_data(db, data)
        return True
    finally:
        await db.dispose()


def _secret_of(data: BusinessData, client_id: str) -> str | None:
    for application in data.applications:
        if application.client_id == client_id:
            return application.client_secret
    return None


def _redirect_of(data: BusinessData, client_id: str) -> str | None:
    for application in data.applications:
        if application.client_id == client_id and application.redirect_uris:
            return application.redirect_uris[0]
    return None


def what_to_try(
    issuer: str, data: BusinessData, cacert: Path | None = None
) -> list[tuple[str, str]]:
    """Steps to print after start-up: (title, command or URL), using the demo's own values;
    with ``cacert`` (``--https``), curl is told to trust the demo's certificate."""
    steps: list[tuple[str, str]] = []
    curl = "curl -s" if cacert is None else f"curl -s --cacert {shlex.quote(str(cacert))}"
    m2m_secret = _secret_of(data, DEMO_M2M_CLIENT_ID)
    if m2m_secret is not None:
        token_cmd = " ".join(
            [
                f"{curl} -X POST",
                shlex.quote(f"{issuer}/oauth2/token"),
                "-d grant_type=client_credentials",
                f"-d client_id={DEMO_M2M_CLIENT_ID}",
                f"-d client_secret={shlex.quote(m2m_secret)}",
                f"-d audience={shlex.quote(issuer + '/api')}",
            ]
        )
        steps.append(("Get a Management API token (M2M, client_credentials)", token_cmd))
        steps.append(
            (
                "Keep it in $TOKEN",
                f"TOKEN=$({token_cmd} | python3 -c "
                "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            )
        )
        api = f"{issuer}/api/v1"
        steps.append(
            (
                "Read an organization with its billing",
                f'{curl} -H "Authorization: Bearer $TOKEN" '
                f"'{api}/organization?code=org_acme&expand=billing'",
            )
        )
        steps.append(
            (
                "Read what it is entitled to",
                f'{curl} -H "Authorization: Bearer $TOKEN" '
                f"'{api}/billing/entitlements?customer_id=customer_acme&expand=plans'",
            )
        )
    web_secret = _secret_of(data, DEMO_WEB_CLIENT_ID)
    redirect_uri = _redirect_of(data, DEMO_WEB_CLIENT_ID)
    if web_secret is not None and redirect_uri is not None:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": DEMO_WEB_CLIENT_ID,
                "redirect_uri": redirect_uri,
                "scope": "openid profile email offline",
                "state": "demo-state",
                "nonce": "demo-nonce",
                "org_code": "org_acme",
            },
            quote_via=quote,
        )
        steps.append(
            (
                "Sign in to Acme in a browser as alice@acme.test / " + DEMO_PASSWORD,
                f"{issuer}/oauth2/auth?{query}",
            )
        )
        steps.append(
            (
                "Or let the example client catch the callback and print the decoded tokens",
                " ".join(
                    [
                        ".venv/bin/python examples/oidc_client.py",
                        f"--issuer {shlex.quote(issuer)}",
                        f"--client-id {DEMO_WEB_CLIENT_ID}",
                        f"--client-secret {shlex.quote(web_secret)}",
                        "--org-code org_acme",
                    ]
                ),
            )
        )
        steps.append(
            (
                "Without it, the browser lands on the redirect URI with ?code=...; swap the code"
                " within 60 s",
                " ".join(
                    [
                        f"{curl} -X POST",
                        shlex.quote(f"{issuer}/oauth2/token"),
                        "-d grant_type=authorization_code -d code=PASTE_CODE",
                        f"-d redirect_uri={shlex.quote(redirect_uri)}",
                        f"-u {DEMO_WEB_CLIENT_ID}:{shlex.quote(web_secret)}",
                    ]
                ),
            )
        )
    return steps


def _print_banner(
    console: Console,
    settings: Settings,
    data: BusinessData,
    seeded: bool,
    tls: CertificatePair | None,
) -> None:
    issuer = settings.public_issuer()
    state = "seeded" if seeded else "already seeded, kept"
    console.print(
        f"[bold]claimflow demo[/bold] at {escape(issuer)}  "
        f"(database {escape(database_label(settings.database_url))}, {state})",
        highlight=False,
        soft_wrap=True,
    )
    people = Table(title=f"Demo users (password: {DEMO_PASSWORD})", title_justify="left")
    people.add_column("email")
    people.add_column("organizations (roles)")
    people.add_column("personal plan")
    for user in data.users:
        orgs = ", ".join(f"{m.org_code} ({', '.join(m.roles)})" for m in user.memberships)
        plan = user.billing.plan_code if user.billing and user.billing.plan_code else ""
        people.add_row(user.email, orgs or "-", plan or "-")
    console.print(people)
    plans = Table(title="Organizations", title_justify="left")
    plans.add_column("org_code")
    plans.add_column("name")
    plans.add_column("plan")
    for org in data.organizations:
        plan = org.billing.plan_code if org.billing and org.billing.plan_code else ""
        plans.add_row(org.code or "", org.name, plan or "(no billing customer)")
    console.print(plans)
    if tls is not None:
        trust = shlex.quote(str(tls.certfile))
        console.print(
            f"[bold]HTTPS[/bold] with a self-signed certificate: trust {escape(trust)} "
            f"(SSL_CERT_FILE={escape(trust)} for Python and httpx, REQUESTS_CA_BUNDLE for "
            f"requests, NODE_EXTRA_CA_CERTS for Node, curl --cacert); Kinde's SDKs take "
            f"it as their domain: {escape(issuer)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print("[bold]What to try next[/bold]")
    cacert = tls.certfile if tls is not None else None
    for number, (title, command) in enumerate(what_to_try(issuer, data, cacert), start=1):
        console.print(f"{number}. {escape(title)}", highlight=False)
        console.print(f"   {escape(command)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        host: str = typer.Option("127.0.0.1", help="Interface to bind."),
        port: int = typer.Option(8000, help="Port to bind."),
        database_url: str = typer.Option(
            DEMO_DATABASE_URL, help="Where the demo keeps its data (a SQLite file by default)."
        ),
        data_file: Annotated[
            Path | None,
            typer.Option("--data", help="Seed from this file instead of claimflow/demo.yaml."),
        ] = None,
        https: bool = typer.Option(
            False,
            "--https",
            help="Serve HTTPS with a self-signed certificate kept beside the demo's database "
            "(Kinde's SDKs accept only https:// domains).",
        ),
    ) -> None:
        """Start an embedded server seeded with a demo business and print what to try."""
        console = Console()
        try:
            data = load_business_file(data_file or demo_data_path())
        except InvalidBusinessData as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        tls = local_certificate(demo_tls_directory(database_url), host) if https else None
        settings = load_settings(
            database_url=database_url,
            host=host,
            port=port,
            issuer=None,
            ssl_certfile=str(tls.certfile) if tls else None,
            ssl_keyfile=str(tls.keyfile) if tls else None,
        )
        record_database_url(settings.database_url)
        ensure_port_free(host, port)
        settings.resolved_secret_key()
        apply_migrations(settings.database_url)
        check_deployment(settings)
        try:
            seeded = asyncio.run(seed_once(settings.database_url, data))
        except InvalidBusinessData as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        _print_banner(console, settings, data, seeded, tls)
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level="info",
            proxy_headers=False,
            **tls_options(tls),
            **logging_options(settings.log_format),
        )
