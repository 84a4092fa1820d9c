"""Hashing and encryption at rest, chosen by the entropy of what is protected (design §7).

- User passwords are low-entropy: argon2id; bcrypt hashes imported from another system are
  accepted and upgraded to argon2id on the next successful sign-in.
- Client secrets, refresh tokens, codes and session ids are high-entropy values we generate:
  a SHA-256 digest compared in constant time is enough and keeps the token endpoint fast.
- Private signing keys and secret environment variables are encrypted with a Fernet key derived
  from ``CLAIMFLOW_SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from claimflow.errors import SecretKeyMismatch

_argon2 = PasswordHasher()


def hash_password(password: str) -> str:
    return _argon2.hash(password)


def is_bcrypt_hash(value: str) -> bool:
    return value.startswith(("$2a$", "$2b$", "$2y$"))


def verify_password(password: str, stored_hash: str) -> bool:
    """Check a password against an argon2id or an imported bcrypt hash."""
    if is_bcrypt_hash(stored_hash):
        try:
            return bcrypt.checkpw(password.encode("utf-8")[:72], stored_hash.encode("ascii"))
        except ValueError:
            return False
    try:
        return _argon2.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return is_bcrypt_hash(stored_hash) or _argon2.check_needs_rehash(stored_hash)


_DUMMY_HASH = _argon2.hash("claimflow-timing-equaliser")


def burn_password_check(password: str) -> None:
    """Spend the time of a real check, so an unknown email is not told apart by timing."""
    verify_password(password, _DUMMY_HASH)


def hash_kind(stored_hash: str) -> str:
    """What a check of ``stored_hash`` costs, as a label: its algorithm and cost parameters.

    ``bcrypt:12`` for a bcrypt hash of cost 12, ``$argon2id$v=19$m=65536,t=3,p=4`` for
    argon2 (the PHC string up to the salt); hashes of one kind take the same time to check.
    """
    if is_bcrypt_hash(stored_hash):
        return "bcrypt:" + stored_hash[4:6]
    if stored_hash.startswith("$argon2"):
        return "$".join(stored_hash.split("$")[:4])
    return "unknown"


ARGON2_KIND = hash_kind(_DUMMY_HASH)
"""The kind of every hash ``hash_password`` makes today."""


def time_dummy_check(kind: str) -> float | None:
    """Seconds one wrong-password check of ``kind`` takes here, or None for a kind we cannot
    make (a dummy bcrypt hash of the cost is made first, which costs the same once more)."""
    if kind.startswith("bcrypt:") and kind[7:].isdigit() and 4 <= int(kind[7:]) <= 16:
        dummy = bcrypt.hashpw(b"claimflow-timing-equaliser", bcrypt.gensalt(int(kind[7:])))
        stored = dummy.decode("ascii")
    elif kind == ARGON2_KIND:
        stored = _DUMMY_HASH
    else:
        return None
    started = time.perf_counter()
    verify_password("not-the-password", stored)
    return time.perf_counter() - started


def digest_secret(value: str) -> str:
    """SHA-256 hex digest of a high-entropy secret we generated."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest_secret(value), stored_digest)


class SecretBox:
    """Encrypts small values at rest with a key derived from the deployment's secret key."""

    def __init__(self, secret_key: str) -> None:
        derived = hashlib.sha256(b"claimflow-at-rest\x00" + secret_key.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise SecretKeyMismatch(
                "CLAIMFLOW_SECRET_KEY cannot decrypt the keys and secrets this database stores: "
                "set it to the key the database was created with (see .claimflow-secret)."
            ) from exc
