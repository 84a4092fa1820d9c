"""Password sign-in with a brute-force throttle per account and per client address.

Failures are counted in the store (``store.oidc_login_attempts``) so every worker sees them; a
locked key is refused before the password is even checked. An unknown email costs the time of a
real check and reads exactly like a wrong password, so neither the answer nor its timing tells
which accounts exist. Imported bcrypt hashes are upgraded to argon2id on the first success
(design §7, "Hash by entropy"). The password itself is never logged or stored in clear.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from claimflow import crypto
from claimflow.domain import User
from claimflow.observability import metrics
from claimflow.services import Services
from claimflow.store import oidc_login_attempts, users

MAX_EMAIL_LENGTH = 320

log = logging.getLogger("claimflow.oidc")


class SignInOutcome(enum.Enum):
    SIGNED_IN = "signed_in"
    WRONG_CREDENTIALS = "wrong_credentials"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class SignInResult:
    outcome: SignInOutcome
    user: User | None = None
    locked_until: datetime | None = None


def throttle_keys(email: str, address: str | None) -> list[str]:
    keys = ["account:" + users.normalize_email(email)[:MAX_EMAIL_LENGTH]]
    if address:
        keys.append("address:" + address)
    return keys


async def sign_in_with_password(
    services: Services, email: str, password: str, address: str | None
) -> SignInResult:
    settings = services.settings
    keys = throttle_keys(email, address)
    async with services.db.connect() as conn:
        locked = await oidc_login_attempts.locked_until(conn, keys)
        if locked is not None:
            log.warning("sign-in refused: throttled until %s (%s)", locked.isoformat(), address)
            metrics.record_sign_in_locked()
            return SignInResult(SignInOutcome.LOCKED, locked_until=locked)
        user = await users.find_user_by_email(conn, email)
        stored = await users.get_password_hash(conn, user.id) if user else None

    if user is None or stored is None:
        await asyncio.to_thread(crypto.burn_password_check, password)
        ok = False
    else:
        ok = await asyncio.to_thread(crypto.verify_password, password, stored)
    if user is None or stored is None or not ok or user.is_suspended:
        async with services.db.transaction() as conn:
            for key in keys:
                await oidc_login_attempts.record_failure(
                    conn,
                    key,
                    max_failures=settings.login_max_failures,
                    window_seconds=settings.login_lockout_seconds,
                )
            if user is not None:
                await users.record_failed_sign_in(conn, user.id)
        metrics.record_sign_in_failure()
        return SignInResult(SignInOutcome.WRONG_CREDENTIALS)

    upgraded = None
    if crypto.password_needs_rehash(stored):
        upgraded = await asyncio.to_thread(crypto.hash_password, password)
    async with services.db.transaction() as conn:
        await oidc_login_attempts.clear(conn, keys[0])
        if upgraded is not None:
            await users.set_password_hash(conn, user.id, upgraded)
        await users.record_sign_in(conn, user.id)
    return SignInResult(SignInOutcome.SIGNED_IN, user=user)
