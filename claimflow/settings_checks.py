"""Checks of the settings a typo or a copied example gets wrong, with the fix in the message.

Why here and not at first use: a sync ``postgresql://`` URL or a placeholder secret key fails
deep inside SQLAlchemy or, worse, works and encrypts private keys with a guessable key. Refusing
them when the settings are read gives the operator one line naming the setting and the fix.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
"""The async driver claimflow runs on, per database (SQLAlchemy's ``backend+driver`` names)."""

MIN_SECRET_KEY_LENGTH = 32
"""Characters; ``secrets.token_urlsafe(32)`` (what claimflow generates) gives 43."""

PLACEHOLDER_MARKERS = ("changeme", "replaceme", "placeholder", "yoursecret", "secretkey", "example")
"""Words of the sample values people paste unchanged (``change-me``, ``your-secret-key``...)."""

GENERATE_KEY_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def check_database_url(value: str) -> str:
    """``value`` if claimflow can use it; else ``ValueError`` naming the URL to write instead."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            "cannot be parsed as a database URL: write sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user:password@host:5432/database"
        ) from None
    backend = "postgresql" if url.get_backend_name() in ("postgres", "postgresql") else None
    backend = backend or url.get_backend_name()
    wanted = SUPPORTED_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(
            f"{url.drivername}:// is not supported: use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if url.drivername != wanted:
        fixed = _safe(url.set(drivername=wanted))
        raise ValueError(f"{url.drivername}:// needs claimflow's async driver: write {fixed}")
    return value


def check_secret_key(value: str) -> str:
    """``value`` unless it is short, a sample placeholder, or a run of a few characters."""
    letters = "".join(c for c in value.lower() if c.isalnum())
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"is too short ({len(value)} characters, at least {MIN_SECRET_KEY_LENGTH}): "
            f"generate one with {GENERATE_KEY_HINT}"
        )
    if any(marker in letters for marker in PLACEHOLDER_MARKERS) or len(set(value)) < 8:
        raise ValueError(f"looks like a placeholder: generate a key with {GENERATE_KEY_HINT}")
    return value
