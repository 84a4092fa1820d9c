"""HTTPS served by claimflow itself: ``serve --ssl-certfile/--ssl-keyfile`` and ``demo --https``.

Each server is a real ``claimflow`` process on a free port, fetched over TLS with its
certificate as the only trust anchor, as Kinde's SDKs will fetch ``https://{domain}``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from claimflow.cli.demo import DEMO_TLS_DIRECTORY, demo_tls_directory
from claimflow.cli.tls import local_certificate
from tests.cli.conftest import Invoke


def openssl_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed pair made by the ``openssl`` command, not by claimflow's own code."""
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def trusting(cafile: Path, strict: bool = False) -> ssl.SSLContext:
    """A client context whose only trust anchor is ``cafile`` (strict: Python 3.13's flags)."""
    context = ssl.create_default_context(cafile=str(cafile))
    if strict:
        context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def test_serve_speaks_https_with_the_given_certificate(
    invoke: Invoke, cli_db_url: str, start_server, workdir: Path
) -> None:  # type: ignore[no-untyped-def]
    credentials = json.loads(invoke("init", "--json").stdout)
    cert, key = openssl_certificate(workdir, "server")
    base_url, _process = start_server(
        "serve", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), https=True
    )
    assert base_url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=base_url, verify=trusting(cert)) as http:
        discovery = http.get("/.well-known/openid-configuration").json()
        # The default issuer follows the scheme served: every endpoint is https.
        assert discovery["issuer"] == base_url
        assert discovery["token_endpoint"] == base_url + "/oauth2/token"
        token = http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": credentials["client_id"],
                "client_secret": credentials["client_secret"],
                "audience": base_url + "/api",
            },
        )
        assert token.status_code == 200, token.text
        organizations = http.get(
            "/api/v1/organizations",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert organizations.status_code == 200, organizations.text

    # A client that does not trust the certificate is refused by TLS, not served.
    other, _ = openssl_certificate(workdir, "other")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(base_url + "/.well-known/openid-configuration", verify=trusting(other))


def test_serve_refuses_a_key_that_is_not_the_certificates(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    cert, _ = openssl_certificate(workdir, "server")
    _, other_key = openssl_certificate(workdir, "other")
    result = invoke("serve", "--ssl-certfile", str(cert), "--ssl-keyfile", str(other_key))
    assert result.exit_code == 2
    assert "the key must be the certificate's" in result.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--ssl-certfile", "server.pem"), "go together"),
        (("--ssl-keyfile", "server-key.pem"), "go together"),
        (("--ssl-certfile", "missing.pem", "--ssl-keyfile", "server-key.pem"), "not a readable"),
    ],
)
def test_serve_refuses_an_incomplete_certificate_pair(
    invoke: Invoke, cli_db_url: str, workdir: Path, flags: tuple[str, ...], message: str
) -> None:
    openssl_certificate(workdir, "server")
    result = invoke("serve", *flags)
    assert result.exit_code == 2
    assert message in result.stderr


def test_demo_https_makes_a_certificate_once_and_serves_with_it(
    start_server, workdir: Path
) -> None:  # type: ignore[no-untyped-def]
    base_url, process = start_server("demo", "--https", https=True)
    certfile = workdir / DEMO_TLS_DIRECTORY / "cert.pem"
    assert (workdir / DEMO_TLS_DIRECTORY / "key.pem").stat().st_mode & 0o077 == 0
    # Python 3.13's default verification flags (X509_STRICT) accept it as a trust anchor.
    with httpx.Client(base_url=base_url, verify=trusting(certfile, strict=True)) as http:
        assert http.get("/.well-known/openid-configuration").json()["issuer"] == base_url
        token = http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "demo-m2m",
                "client_secret": "demo-m2m-secret-not-for-production",
                "audience": base_url + "/api",
            },
        )
        assert token.status_code == 200, token.text
    first = certfile.read_bytes()
    process.terminate()
    process.wait(timeout=10)

    # Restarted, the demo keeps the certificate a client was told to trust.
    base_url, _process = start_server("demo", "--https", https=True)
    assert certfile.read_bytes() == first
    with httpx.Client(base_url=base_url, verify=trusting(certfile)) as http:
        assert http.get("/.well-known/jwks.json").status_code == 200


def test_the_local_certificate_is_renewed_for_a_host_it_does_not_name(tmp_path: Path) -> None:
    first = local_certificate(tmp_path, "127.0.0.1")
    assert local_certificate(tmp_path, "localhost").certfile.read_bytes() == (
        first.certfile.read_bytes()
    )
    local_certificate(tmp_path, "demo.internal")
    certificate = x509.load_pem_x509_certificate(first.certfile.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "demo.internal"]
    # Trusting it trusts this server only: it cannot sign certificates for other names.
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_the_demo_keeps_its_certificate_beside_its_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'demo.db'}"
    assert demo_tls_directory(url) == tmp_path / "data" / DEMO_TLS_DIRECTORY
