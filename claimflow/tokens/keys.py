"""Signing keys: generation, encryption at rest, rotation, JWKS, signing and verification.

Keys live in the store so every worker of a scale-out deployment signs with the same active key
and publishes the same JWKS. ``rotate`` adds a new active key and retires the previous one: a
retired key no longer signs but stays published until every token it signed has expired
(``expires_on`` = retirement + the longest token lifetime), as RFC 7517 key rollover needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import SecretBox
from claimflow.store import Database
from claimflow.store import tables as t
from claimflow.store._rows import as_utc, utcnow

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

SUPPORTED_ALGORITHMS = ("RS256", "ES256", "EdDSA")

RELOAD_RETRY_SECONDS = 5.0
"""After a failed background reload (store down), how long until a request starts another."""

log = logging.getLogger("claimflow.tokens")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]
    created_on: datetime
    retired_on: datetime | None
    expires_on: datetime | None


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {algorithm!r}")


def published_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The key as the JWKS shows it: ``use: sig`` and no ``key_ops``.

    RFC 7517 §4.3: ``use`` and ``key_ops`` SHOULD NOT be used together, and strict relying
    parties (idpyoidc / cryptojwt) refuse a key set that has both. PyJWT adds ``key_ops`` to RSA
    keys, and keys stored by earlier versions still carry it, so it is dropped on the way out.
    """
    return {k: v for k, v in jwk.items() if k != "key_ops"} | {"use": "sig"}


def public_jwk(private_key: PrivateKey, algorithm: str, kid: str) -> dict[str, Any]:
    algo = get_default_algorithms()[algorithm]
    jwk: dict[str, Any] = json.loads(algo.to_jwk(private_key.public_key()))
    return published_jwk(jwk | {"kid": kid, "alg": algorithm})


async def _longest_application_ttl(conn: AsyncConnection) -> int:
    """The longest per-application JWT lifetime, so a retired key outlives its tokens."""
    apps = t.applications.c
    row = (
        await conn.execute(
            select(func.max(apps.access_token_ttl_seconds), func.max(apps.id_token_ttl_seconds))
        )
    ).one()
    return max(int(value or 0) for value in row)


class KeyManager:
    """The deployment's signing keys, cached in memory and refreshed from the store.

    Every ``REFRESH_SECONDS`` the keys are reloaded (another worker may have rotated) by a
    background task, never on a request's path: the request that notices the age starts the
    reload and signs with the keys it has, which stay valid (a key retired elsewhere is still
    published until its tokens expire). An unknown ``kid`` on verification and a rotation here
    still reload at once.
    """

    REFRESH_SECONDS = 30.0

    def __init__(self, db: Database, box: SecretBox, algorithm: str, max_token_ttl: int) -> None:
        self._db = db
        self._box = box
        self._algorithm = algorithm
        self._max_token_ttl = max_token_ttl
        self._keys: list[SigningKey] = []
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._reload: asyncio.Task[None] | None = None

    async def _load(self) -> list[SigningKey]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.signing_keys).order_by(t.signing_keys.c.created_on.desc())
                )
            ).all()
        keys = []
        for row in rows:
            pem = self._box.decrypt(row.private_key_encrypted)
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(
                private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
            )
            keys.append(
                SigningKey(
                    kid=row.kid,
                    algorithm=row.algorithm,
                    private_key=private,
                    public_jwk=dict(row.public_jwk),
                    created_on=as_utc(row.created_on) or utcnow(),
                    retired_on=as_utc(row.retired_on),
                    expires_on=as_utc(row.expires_on),
                )
            )
        return keys

    async def _keys_now(self, force: bool = False) -> list[SigningKey]:
        if force or not self._keys:
            async with self._lock:
                self._keys = await self._load()
                self._loaded_at = time.monotonic()
        elif time.monotonic() - self._loaded_at > self.REFRESH_SECONDS and self._reload is None:
            self._reload = asyncio.create_task(self._reload_in_background())
        return self._keys

    async def _reload_in_background(self) -> None:
        try:
            async with self._lock:
                self._keys = await self._load()
                self._loaded_at = time.monotonic()
        except Exception as exc:  # the keys in memory keep signing; the next request retries
            log.warning("reloading the signing keys failed (%s); keeping the loaded ones", exc)
            self._loaded_at = time.monotonic() - self.REFRESH_SECONDS + RELOAD_RETRY_SECONDS
        finally:
            self._reload = None

    async def aclose(self) -> None:
        """Stop a background reload (shutdown)."""
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload

    async def _insert_key(self, algorithm: str) -> SigningKey:
        kid = secrets.token_hex(8)
        private = generate_private_key(algorithm)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        jwk = public_jwk(private, algorithm, kid)
        now = utcnow()
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(t.signing_keys).values(
                    kid=kid,
                    algorithm=algorithm,
                    private_key_encrypted=self._box.encrypt(pem),
                    public_jwk=jwk,
                    created_on=now,
                )
            )
        return SigningKey(kid, algorithm, private, jwk, now, None, None)

    async def ensure_active_key(self) -> SigningKey:
        """The key that signs now; creates the first one on a fresh database."""
        for key in await self._keys_now():
            if key.retired_on is None:
                return key
        for key in await self._keys_now(force=True):
            if key.retired_on is None:
                return key
        await self._insert_key(self._algorithm)
        keys = await self._keys_now(force=True)
        return next(k for k in keys if k.retired_on is None)

    async def rotate(self, algorithm: str | None = None) -> SigningKey:
        """Add a new active key; retire the others, published until their tokens expire."""
        now = utcnow()
        async with self._db.transaction() as conn:
            retention = max(self._max_token_ttl, await _longest_application_ttl(conn))
            await conn.execute(
                update(t.signing_keys)
                .where(t.signing_keys.c.retired_on.is_(None))
                .values(retired_on=now, expires_on=now + timedelta(seconds=retention))
            )
        key = await self._insert_key(algorithm or self._algorithm)
        await self._keys_now(force=True)
        return key

    async def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set: the active key and retired keys whose tokens may be valid."""
        await self.ensure_active_key()
        now = utcnow()
        keys = [
            published_jwk(k.public_jwk)
            for k in await self._keys_now()
            if k.expires_on is None or k.expires_on > now
        ]
        return {"keys": keys}

    async def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        key = await self.ensure_active_key()
        return jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ}
        )

    async def verify(
        self,
        token: str,
        *,
        audience: str | list[str] | None = None,
        issuer: str | None = None,
        allow_expired: bool = False,
    ) -> dict[str, Any]:
        """Decode and verify a token we signed; raises ``jwt.PyJWTError`` when it is not valid.

        ``allow_expired`` is for hints, not credentials: an ``id_token_hint`` names a user and
        may be expired (RP-Initiated Logout 1.0 §2).
        """
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = await self._published_key(kid)
        if key is None:
            raise jwt.InvalidKeyError("unknown kid")
        options = {
            "verify_aud": audience is not None,
            "verify_exp": not allow_expired,
            "require": ["exp", "iat", "iss"],
        }
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[key.algorithm],
            audience=audience,
            issuer=issuer,
            options=options,  # type: ignore[arg-type]
        )
        return claims

    async def _published_key(self, kid: Any) -> SigningKey | None:
        if not isinstance(kid, str):
            return None
        now = utcnow()
        for force in (False, True):
            for key in await self._keys_now(force=force):
                if key.kid == kid and (key.expires_on is None or key.expires_on > now):
                    return key
        return None
