"""Password sign-in, throttled per (account, client address), per account and per address.

The throttle (``docs/decisions.md``, "Sign-in throttle"; NIST SP 800-63B §5.2.2): every
password check is first counted, atomically and in the store so every worker sees it, against
three keys — the account *from this address* (``login_max_failures``), the account from
anywhere (``login_account_max_failures``, much higher) and the address over every account
(``login_address_max_failures``). An attempt any key refuses is answered "locked" without
checking the password, so parallel requests cannot buy more checks than the limits; a guesser
from one address is stopped at the pair limit while the owner, from another address, still
gets in. A full key whose last check failed is locked, each time twice as long.

An unknown email is counted, checked against a dummy hash and answered exactly like a wrong
password, and every wrong-password answer is paced to the slowest kind of check
(``failure_pace``), so neither the answer nor its timing tells which emails exist or were
imported. Imported bcrypt hashes are upgraded to argon2id on the first success (design §7,
"Hash by entropy"). The password itself is never logged or stored in clear.

Lazy (drip-feed) migration: when a ``user:existing_password_provided`` workflow is enabled, an
email no user has, or a user without a password, fires it (``password_migration``) instead of
the dummy check — the password is hashed once, which costs what the dummy check did, and the
workflow may check it against the legacy system and create the user with that hash. The
attempt was counted like any other; a refusal is a failure like a wrong password, answered
alike and paced to the slowest kind *including the migration path*, so with the trigger
enabled every wrong-password answer takes about as long as a legacy round trip (the price of
not telling, by timing, which emails claimflow already checks itself).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from claimflow import crypto
from claimflow.domain import User
from claimflow.observability import metrics
from claimflow.oidc.failure_pace import MIGRATION, NO_USER, PACE
from claimflow.oidc.password_migration import (
    PasswordMigration,
    migrate_password,
    migration_enabled,
)
from claimflow.services import Services
from claimflow.settings import Settings
from claimflow.store import oidc_login_attempts, users
from claimflow.store.oidc_login_attempts import AttemptLimit, ThrottlePolicy

MAX_EMAIL_LENGTH = 320
MAX_ADDRESS_LENGTH = 64
IPV6_SUBSCRIBER_PREFIX = 64
"""An IPv6 client is counted by its /64: one subscriber can pick any address inside it."""

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
    is_new_user_record_created: bool = False
    """This sign-in created the user (a lazy migration): Kinde's ``isNewUserRecordCreated``."""


def throttled_address(host: str | None) -> str:
    """The client address as the throttle counts it: IPv4 as is, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_ADDRESS_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_SUBSCRIBER_PREFIX}", strict=False))
    return str(ip)


def attempt_limits(settings: Settings, email: str, host: str | None) -> list[AttemptLimit]:
    """The three keys of one attempt, in the order they are counted (pair first)."""
    account = users.normalize_email(email)[:MAX_EMAIL_LENGTH]
    address = throttled_address(host)
    return [
        AttemptLimit(f"pair:{address} {account}", settings.login_max_failures),
        AttemptLimit(f"account:{account}", settings.login_account_max_failures),
        AttemptLimit(f"address:{address}", settings.login_address_max_failures),
    ]


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        window_seconds=settings.login_lockout_seconds,
        lockout_seconds=settings.login_lockout_seconds,
        max_lockout_seconds=settings.login_lockout_max_seconds,
    )


async def sign_in_with_password(
    services: Services,
    email: str,
    password: str,
    address: str | None,
    *,
    migration: PasswordMigration | None = None,
) -> SignInResult:
    """Check one password under the throttle; ``migration`` (the browser's user agent and the
    application) lets an unknown email fire ``user:existing_password_provided``."""
    settings = services.settings
    limits = attempt_limits(settings, email, address)
    policy = throttle_policy(settings)
    async with services.db.transaction() as conn:
        reopens_at = await oidc_login_attempts.count_attempt(conn, limits, policy)
    if reopens_at is not None:
        log.warning("sign-in refused: throttled until %s (%s)", reopens_at.isoformat(), address)
        metrics.record_sign_in_locked()
        return SignInResult(SignInOutcome.LOCKED, locked_until=reopens_at)

    await PACE.calibrate(services)
    started = time.perf_counter()
    async with services.db.connect() as conn:
        user = await users.find_user_by_email(conn, email)
        stored = await users.get_password_hash(conn, user.id) if user else None

    migrating = (
        (user is None or stored is None) and migration is not None and migration_enabled(services)
    )
    created = False
    if migrating:
        assert migration is not None
        existed = user is not None
        user, stored, ok = await migrate_password(services, migration, email, password, user)
        created = not existed and user is not None
    elif user is None or stored is None:
        await asyncio.to_thread(crypto.burn_password_check, password)
        ok = False
    else:
        ok = await asyncio.to_thread(crypto.verify_password, password, stored)
    if user is None or stored is None or not ok or user.is_suspended:
        async with services.db.transaction() as conn:
            await oidc_login_attempts.record_failure(conn, limits, policy)
            if user is not None:
                await users.record_failed_sign_in(conn, user.id)
        metrics.record_sign_in_failure()
        kind = MIGRATION if migrating else NO_USER if stored is None else crypto.hash_kind(stored)
        await PACE.answer_after(kind, started)
        return SignInResult(SignInOutcome.WRONG_CREDENTIALS)

    upgraded = None
    if crypto.password_needs_rehash(stored):
        upgraded = await asyncio.to_thread(crypto.hash_password, password)
    pair, *shared = limits
    async with services.db.transaction() as conn:
        await oidc_login_attempts.forget(conn, pair.key)
        for limit in shared:
            await oidc_login_attempts.refund(conn, limit.key)
        if upgraded is not None:
            await users.set_password_hash(conn, user.id, upgraded)
        await users.record_sign_in(conn, user.id)
    return SignInResult(SignInOutcome.SIGNED_IN, user=user, is_new_user_record_created=created)
