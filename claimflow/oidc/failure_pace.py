"""Every wrong-password answer takes as long as the slowest kind of password check.

A wrong password for an unknown email, for an argon2id user and for a user imported with a
bcrypt hash would otherwise answer in three different times (bcrypt at cost 12 is about twice
argon2id's defaults), and the time alone would tell which emails have accounts and which were
imported (OWASP ASVS V2.2 / WSTG-IDNT-04, account enumeration). Re-hashing cannot help: the
cost of an imported hash is fixed until its owner signs in.

So this process keeps, per kind of check (``crypto.hash_kind``, or ``"no-user"``), the recent
durations of the whole wrong-password path (the lookup, the check, the bookkeeping), and pads
each wrong-password answer with a sleep up to the largest of their 90th percentiles. The sleep
costs no CPU, unlike checking a second dummy hash of the other kind would. Before the first
sign-in the process times one dummy check of argon2id and of every bcrypt cost found in the
store, so the first probe of an imported account is padded too; a bcrypt cost first seen later
(a hash set through the Management API) is learned at its first check.
``bench/signin_timing.py`` measures the result.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque

from claimflow import crypto
from claimflow.services import Services
from claimflow.store import users

NO_USER = "no-user"
"""The kind of an unknown email (or a user without a password): a dummy argon2id check."""
MIGRATION = "migration"
"""The kind of an unknown email when a ``user:existing_password_provided`` workflow runs: the
hash, the workflow (a legacy round trip) and the bookkeeping. Its 90th percentile becomes
every wrong-password answer's pace, so no answer tells a migrated email from another."""

SAMPLES_PER_KIND = 64


class FailurePace:
    """Recent wrong-password durations per kind, and the pad that makes them all alike."""

    def __init__(self, samples_per_kind: int = SAMPLES_PER_KIND) -> None:
        self._samples_per_kind = samples_per_kind
        self._durations: dict[str, deque[float]] = {}
        self._calibrated = False
        self._calibrating: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def record(self, kind: str, seconds: float) -> None:
        samples = self._durations.setdefault(kind, deque(maxlen=self._samples_per_kind))
        samples.append(seconds)

    def target_seconds(self) -> float:
        """The largest 90th-percentile duration over the kinds seen so far (0 before any).

        A high percentile rather than the median: nine answers in ten of *every* kind, the
        slowest included, then end at the same moment, so the machine's noise (a busy CPU makes
        one check vary by more than the kinds differ) is not left to tell them apart.
        """
        return max((_percentile_90(d) for d in self._durations.values() if d), default=0.0)

    async def calibrate(self, services: Services) -> None:
        """Once per process: time a dummy check of each kind of hash the store holds."""
        if self._calibrated:
            return
        async with self._lock():
            if self._calibrated:
                return
            async with services.db.connect() as conn:
                prefixes = await users.bcrypt_hash_prefixes(conn)
            kinds = {crypto.ARGON2_KIND} | {crypto.hash_kind(prefix) for prefix in prefixes}
            for kind in sorted(kinds):
                seconds = await asyncio.to_thread(crypto.time_dummy_check, kind)
                if seconds is not None:
                    self.record(kind, seconds)
                    if kind == crypto.ARGON2_KIND:
                        self.record(NO_USER, seconds)
            self._calibrated = True

    def _lock(self) -> asyncio.Lock:
        """The calibration lock of the running event loop (a test process runs several)."""
        loop = asyncio.get_running_loop()
        if self._calibrating is None or self._calibrating[0] is not loop:
            self._calibrating = (loop, asyncio.Lock())
        return self._calibrating[1]

    async def answer_after(self, kind: str, started: float) -> None:
        """Record the wrong-password path that began at ``started``; sleep out the difference."""
        elapsed = time.perf_counter() - started
        self.record(kind, elapsed)
        remaining = self.target_seconds() - elapsed
        if remaining > 0:
            await asyncio.sleep(remaining)


def _percentile_90(samples: deque[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


PACE = FailurePace()
"""One per process: the durations are a fact about this machine's CPU, shared by every app."""
