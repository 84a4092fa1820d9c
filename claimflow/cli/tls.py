"""TLS for ``claimflow serve --ssl-certfile/--ssl-keyfile`` and ``claimflow demo --https``.

Kinde's SDKs build every URL as ``https://{domain}`` and cannot be pointed at plain HTTP, so
trying them against a local claimflow needs a server that speaks TLS itself. uvicorn does
(Python's ``ssl``); this module checks a certificate pair before the server starts, so a wrong
path or a key that does not belong to the certificate is one line on stderr, not a traceback
inside a worker, and makes the demo's local certificate.

The demo's certificate is self-signed and names ``localhost``, ``127.0.0.1`` and ``::1`` (and
the bound host) in its subjectAltName (RFC 6125 §6.4: clients match names there, never the
common name). It is its own trust anchor: a client is told to trust this one file
(``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``, ``curl --cacert``). It is
not a CA (``cA=FALSE``, no ``keyCertSign``): a user who adds it to a trust store trusts this
server and nothing else, even if its key leaks, since it cannot sign certificates for other
names.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from claimflow.errors import ConfigurationError

LOCAL_CERTIFICATE_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=7)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertificatePair:
    """Where uvicorn reads the server's certificate chain and its private key (PEM)."""

    certfile: Path
    keyfile: Path


def check_certificate_pair(certfile: str | None, keyfile: str | None) -> CertificatePair | None:
    """The pair to serve with, or None for plain HTTP; ConfigurationError when it is unusable.

    Loaded into an ``SSLContext`` the way uvicorn will, so a missing file, a file that is not
    PEM, or a key that does not match the certificate is refused before the server starts.
    """
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise ConfigurationError(
            "--ssl-certfile and --ssl-keyfile go together (CLAIMFLOW_SSL_CERTFILE, "
            "CLAIMFLOW_SSL_KEYFILE): give both, or neither for plain HTTP."
        )
    for flag, name in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not Path(name).is_file():
            raise ConfigurationError(f"{flag} names {name!r}, which is not a readable file.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"cannot use {certfile} with {keyfile} ({exc.__class__.__name__}: {exc}): both "
            "must be PEM, and the key must be the certificate's (an encrypted key is not "
            "supported)."
        ) from None
    return CertificatePair(Path(certfile), Path(keyfile))


def local_certificate(directory: Path, host: str) -> CertificatePair:
    """The demo's self-signed certificate for ``host``, made once and kept in ``directory``.

    Reused while it names ``host`` and has more than a week left, so a browser or SDK told to
    trust it once keeps trusting it across restarts; otherwise made anew.
    """
    pair = CertificatePair(directory / "cert.pem", directory / "key.pem")
    names = _names_for(host)
    if pair.certfile.is_file() and pair.keyfile.is_file() and _still_good(pair.certfile, names):
        return pair
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key, names)
    descriptor = os.open(pair.keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pair.certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return pair


def _names_for(host: str) -> tuple[str, ...]:
    """The names the certificate must cover: the local ones, plus a specific bound host."""
    if host in ("", "0.0.0.0", "::") or host in LOCAL_NAMES:  # noqa: S104 - a name, not a bind
        return LOCAL_NAMES
    return (*LOCAL_NAMES, host)


def _alt_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for name in names:
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


def _self_signed(key: ec.EllipticCurvePrivateKey, names: tuple[str, ...]) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "claimflow demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, "claimflow demo (localhost)"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LOCAL_CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _still_good(certfile: Path, names: tuple[str, ...]) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(certfile.read_bytes())
        alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    if certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE:
        return False
    return set(_alt_names(names)) <= set(alt.value)
