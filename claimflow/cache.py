"""The billing cache: per-customer billing lookups shared by sign-ins, dropped on change.

Why: without it every sign-in costs three Management API calls (design §1's last weakness).
Semantics every implementation keeps:

- **TTL** (``billing_cache_ttl_seconds``): a value is fresh that long at most.
- **Invalidation by customer**: ``invalidate(customer_ids)`` (subscribed to
  ``services.billing_changes``) makes every entry that depends on those customers stale at once.
  A lookup that was already running when the change happened does not store its result, so a
  change can never be papered over by an in-flight read (checked with an invalidation epoch).
- **Single flight**: concurrent lookups of one key share one load.
- **Serve stale** (``billing_serve_stale``): when a load fails, the last good value is returned
  if it is at most ``billing_stale_max_age_seconds`` old, and the caller's log says so.
- **Prepared values**: a caller may pass ``prepare`` to turn the stored JSON into what it uses
  (the billing workflows: claim forms with their JSON encoding). The in-process cache prepares a
  value once per load and hands the prepared value to every hit, which keeps a warm sign-in free
  of per-request work; Redis holds JSON, so it prepares each value it reads.

``InProcessBillingCache`` is the embedded default. ``RedisBillingCache`` (``CLAIMFLOW_REDIS_URL``)
keeps values and per-customer invalidation generations in Redis, so every worker sees an
invalidation the moment it is written (versioned entries, no pub/sub to miss); a short Redis lock
extends the single flight across workers. Its keys live under the deployment's
``CLAIMFLOW_REDIS_PREFIX`` (``Settings.redis_key_prefix``), so deployments sharing a Redis keep
apart.

**When Redis is down at invalidation time**: ``invalidate`` runs after the Management API write
has committed, so failing there would answer 500 for a write that succeeded. It logs the
``RedisError`` and returns; the TTL is then the backstop, and an entry of the changed customer
may be served until it expires (at most ``billing_cache_ttl_seconds``). A Redis that is down
cannot serve that entry either, so in practice it is stale only if Redis comes back within the
TTL having missed the invalidation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from claimflow.observability import metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from claimflow.workflows.bindings import WorkflowLogger


@dataclass(frozen=True, slots=True)
class Loaded:
    """A load's result: the JSON value and the customer ids it depends on."""

    value: Any
    customer_ids: frozenset[str]


log = logging.getLogger("claimflow.cache")

Loader = Callable[[], Awaitable[Loaded]]
Prepare = Callable[[Any], Any]
"""Turns a loaded (JSON) value into what the caller uses; never called with ``None``."""


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    age_seconds: float
    fresh: bool


class BillingCache(Protocol):
    loads: int

    async def get_or_load(
        self,
        key: str,
        load: Loader,
        logger: WorkflowLogger | None = None,
        prepare: Prepare | None = None,
    ) -> Any: ...

    async def invalidate(self, customer_ids: Iterable[str]) -> None: ...

    async def aclose(self) -> None: ...


class _SingleFlightCache:
    """Fresh hit, else one shared load per key; the storage is the subclass's."""

    def __init__(self, ttl_seconds: float, serve_stale: bool, stale_max_age_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.serve_stale = serve_stale
        self.stale_max_age_seconds = stale_max_age_seconds
        self.loads = 0
        self._flights: dict[str, asyncio.Future[tuple[Any, float | None]]] = {}

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        """The entry of ``key`` with its value prepared, fresh or not."""
        raise NotImplementedError

    async def _epoch(self) -> int:
        raise NotImplementedError

    async def _store(self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int) -> None:
        raise NotImplementedError

    async def _load_once(self, key: str, load: Loader, prepare: Prepare) -> Any:
        """Hook for a cross-worker single flight; the default just loads."""
        return await self._load_and_store(key, load, prepare)

    async def _load_and_store(self, key: str, load: Loader, prepare: Prepare) -> Any:
        epoch = await self._epoch()
        self.loads += 1
        metrics.record_billing_cache("load")
        loaded = await load()
        if loaded.value is None:
            # "Nothing to add" is not cached: a customer created a second later must show up.
            return None
        prepared = prepare(loaded.value)
        await self._store(key, loaded, prepared, epoch)
        return prepared

    async def get_or_load(
        self,
        key: str,
        load: Loader,
        logger: WorkflowLogger | None = None,
        prepare: Prepare | None = None,
    ) -> Any:
        """The (prepared) value of ``key``. One key is always used with one ``prepare``."""
        prepare = prepare or _identity
        entry = await self._lookup(key, prepare)
        if entry is not None and entry.fresh:
            metrics.record_billing_cache("hit")
            return entry.value
        metrics.record_billing_cache("miss")
        flight = self._flights.get(key)
        if flight is None:
            # The load runs as its own task: a caller that hits its time limit and is cancelled
            # does not cancel the load the other callers of this key are waiting for.
            flight = asyncio.ensure_future(self._fly(key, load, prepare, entry))
            self._flights[key] = flight
            flight.add_done_callback(lambda _f: self._flights.pop(key, None))
        value, stale_age = await asyncio.shield(flight)
        if stale_age is not None:
            metrics.record_billing_cache("stale_serve")
        if stale_age is not None and logger is not None:
            logger.warning(
                f"billing source failed; served the last good value for {key} "
                f"({stale_age:.0f} s old)"
            )
        return value

    async def _fly(
        self, key: str, load: Loader, prepare: Prepare, entry: _Entry | None
    ) -> tuple[Any, float | None]:
        try:
            return await self._load_once(key, load, prepare), None
        except Exception:
            # Serve-stale decides on any failure of the billing source; the error is re-raised
            # unchanged when there is nothing recent enough to fall back on.
            if (
                self.serve_stale
                and entry is not None
                and entry.age_seconds <= self.stale_max_age_seconds
            ):
                return entry.value, entry.age_seconds
            raise


@dataclass(slots=True)
class _Stored:
    value: Any
    customer_ids: frozenset[str]
    stored_at: float
    epoch: int


class InProcessBillingCache(_SingleFlightCache):
    """The embedded cache: a bounded dict in this process."""

    def __init__(
        self,
        ttl_seconds: float,
        serve_stale: bool = False,
        stale_max_age_seconds: float = 3600.0,
        max_entries: int = 100_000,
    ) -> None:
        super().__init__(ttl_seconds, serve_stale, stale_max_age_seconds)
        self._entries: OrderedDict[str, _Stored] = OrderedDict()
        self._invalidated_at: dict[str, int] = {}
        self._epoch_counter = 0
        self._max_entries = max_entries

    async def _epoch(self) -> int:
        return self._epoch_counter

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        stored = self._entries.get(key)
        if stored is None:
            return None
        age = time.monotonic() - stored.stored_at
        valid = all(self._invalidated_at.get(c, -1) < stored.epoch for c in stored.customer_ids)
        return _Entry(stored.value, age, valid and age < self.ttl_seconds)

    async def _store(self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int) -> None:
        if any(self._invalidated_at.get(c, -1) >= epoch_at_start for c in loaded.customer_ids):
            return
        self._entries[key] = _Stored(
            prepared, loaded.customer_ids, time.monotonic(), self._epoch_counter
        )
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def invalidate(self, customer_ids: Iterable[str]) -> None:
        customer_ids = list(customer_ids)
        metrics.record_billing_cache("invalidation", len(customer_ids))
        for customer_id in customer_ids:
            self._invalidated_at[customer_id] = self._epoch_counter
            self._epoch_counter += 1
        # Entries stored from now on carry a newer epoch than any invalidation above.

    async def aclose(self) -> None:
        self._entries.clear()


class RedisBillingCache(_SingleFlightCache):
    """Values and invalidation generations in Redis, shared by every worker.

    Keys (all under ``prefix``): ``entry:<key>`` = JSON ``{value, customers, at, gens}``;
    ``gen:<customer>`` = the epoch of the customer's last invalidation; ``epoch`` = a counter.
    An entry is valid while each of its customers' generations equals the one it was stored
    with. ``lock:<key>`` (``SET NX PX``) makes other workers wait for the first one's load.
    """

    LOCK_WAIT_SECONDS = 5.0
    POLL_SECONDS = 0.01

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: float,
        serve_stale: bool = False,
        stale_max_age_seconds: float = 3600.0,
        prefix: str = "claimflow:billing",
    ) -> None:
        super().__init__(ttl_seconds, serve_stale, stale_max_age_seconds)
        self._redis = redis
        self._prefix = prefix
        self.invalidation_errors = 0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisBillingCache:
        from redis.asyncio import BlockingConnectionPool, Redis

        # A sign-in burst must queue for a connection, not fail with "Too many connections".
        pool = BlockingConnectionPool.from_url(url, max_connections=64, timeout=5)
        return cls(Redis(connection_pool=pool), **kwargs)

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def _epoch(self) -> int:
        raw = await self._redis.get(self._k("epoch"))
        return int(raw or 0)

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        raw = await self._redis.get(self._k("entry", key))
        if raw is None:
            return None
        stored = json.loads(raw)
        customers: list[str] = stored["customers"]
        current = (
            await self._redis.mget([self._k("gen", c) for c in customers]) if customers else []
        )
        valid = [int(g or 0) for g in current] == stored["gens"]
        age = time.time() - float(stored["at"])
        return _Entry(prepare(stored["value"]), age, valid and age < self.ttl_seconds)

    async def _store(self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int) -> None:
        customers = sorted(loaded.customer_ids)
        gens = (
            [int(g or 0) for g in await self._redis.mget([self._k("gen", c) for c in customers])]
            if customers
            else []
        )
        if any(g > epoch_at_start for g in gens):
            return
        keep = max(self.ttl_seconds, self.stale_max_age_seconds if self.serve_stale else 0)
        payload = {"value": loaded.value, "customers": customers, "at": time.time(), "gens": gens}
        await self._redis.set(
            self._k("entry", key), json.dumps(payload), px=max(1, int(keep * 1000))
        )

    async def _load_once(self, key: str, load: Loader, prepare: Prepare) -> Any:
        lock = self._k("lock", key)
        if await self._redis.set(lock, "1", nx=True, px=int(self.LOCK_WAIT_SECONDS * 1000)):
            try:
                return await self._load_and_store(key, load, prepare)
            finally:
                await self._redis.delete(lock)
        deadline = time.monotonic() + self.LOCK_WAIT_SECONDS
        while time.monotonic() < deadline and await self._redis.exists(lock):
            await asyncio.sleep(self.POLL_SECONDS)
            entry = await self._lookup(key, prepare)
            if entry is not None and entry.fresh:
                return entry.value
        return await self._load_and_store(key, load, prepare)

    _BUMP = "local e = redis.call('INCR', KEYS[1]); redis.call('SET', KEYS[2], e); return e"

    async def invalidate(self, customer_ids: Iterable[str]) -> None:
        """Bump the customers' generations; with Redis down, log and leave it to the TTL."""
        customers = sorted(customer_ids)
        metrics.record_billing_cache("invalidation", len(customers))
        try:
            for customer_id in customers:
                # One script, so two concurrent invalidations cannot leave a generation going back.
                await self._redis.eval(self._BUMP, 2, self._k("epoch"), self._k("gen", customer_id))
        except RedisError as exc:
            self.invalidation_errors += 1
            log.error(
                "billing cache invalidation of %s failed (%s: %s); cached billing of these "
                "customers may be served until it expires (TTL %g s)",
                ", ".join(customers),
                type(exc).__name__,
                exc,
                self.ttl_seconds,
            )

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_billing_cache(
    redis_url: str | None,
    ttl_seconds: float,
    serve_stale: bool,
    stale_max_age_seconds: float,
    redis_prefix: str = "claimflow",
) -> InProcessBillingCache | RedisBillingCache:
    """Redis when ``redis_url`` is set (keys under ``<redis_prefix>:billing``), else in-process."""
    if redis_url:
        return RedisBillingCache.from_url(
            redis_url,
            ttl_seconds=ttl_seconds,
            serve_stale=serve_stale,
            stale_max_age_seconds=stale_max_age_seconds,
            prefix=f"{redis_prefix}:billing",
        )
    return InProcessBillingCache(ttl_seconds, serve_stale, stale_max_age_seconds)
