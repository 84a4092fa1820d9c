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
- **Hit without waiting** (``hit_now``): the in-process cache can tell a current, fresh entry
  synchronously when the request already read the key's version (``BillingVersionSource.known``),
  so a warm built-in run needs no task and no deadline (``Workflow.run_now``). It decides
  exactly as ``get_or_load`` does; anything it cannot tell without I/O is left to that.

``InProcessBillingCache`` is the embedded default. ``RedisBillingCache`` (``CLAIMFLOW_REDIS_URL``)
keeps values and per-customer invalidation generations in Redis, so every worker sees an
invalidation the moment it is written (versioned entries, no pub/sub to miss); a short Redis lock
extends the single flight across workers. Its keys live under the deployment's
``CLAIMFLOW_REDIS_PREFIX`` (``Settings.redis_key_prefix``), so deployments sharing a Redis keep
apart.

**Current as of the request** (design §9): with a version source (``BillingVersionSource``, the
store's per-subject billing versions, bumped in the transaction of every billing change), a
lookup first reads the key's current version and serves an entry only if it was loaded at that
version or later; a load records the version read *before* it started, so a load that raced a
change is reloaded by the next lookup. Concurrent lookups share a load only if they read the same
version. The cache key is the version's subject (``org:<code>``, ``user:<id>``). This holds on
every worker, with or without Redis, because the version lives in the database every worker
shares; ``invalidate`` is then only an accelerator and the factory does not wire it.

**Redis is an accelerator, never the only copy**: when a Redis call fails or times out
(``socket_timeout``), the Redis cache logs it once per interval, stops asking Redis for
``REDIS_RETRY_SECONDS`` and loads from the store meanwhile; after that one lookup probes Redis
again. Connections are health-checked and a call that finds a dead pooled connection is retried
once on a new one, so a Redis that restarted costs no failed request.

Without a version source (billing read from another deployment's Management API), ``invalidate``
on Redis is best effort: with Redis down it logs the ``RedisError`` and returns, and the TTL is
the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from claimflow.observability import metrics
from claimflow.throttled_log import ThrottledLog

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
    version: int | None = None

    def is_current(self, version: int | None) -> bool:
        return _at_least(self.version, version)


def _at_least(loaded_at: int | None, version: int | None) -> bool:
    """An entry loaded at ``loaded_at`` is current for ``version`` (always, without versions)."""
    return version is None or (loaded_at is not None and loaded_at >= version)


class BillingVersionSource(Protocol):
    """The current billing version of a subject (see ``claimflow.store.billing_versions``)."""

    async def current(self, subject: str) -> int: ...

    def known(self, subject: str) -> int | None:
        """The subject's version if it is known without I/O (read with this request), else
        ``None``: what lets a warm lookup finish without waiting for anything (``hit_now``)."""
        ...

    async def aclose(self) -> None: ...


class BillingCache(Protocol):
    loads: int

    async def get_or_load(
        self,
        key: str,
        load: Loader,
        logger: WorkflowLogger | None = None,
        prepare: Prepare | None = None,
    ) -> Any: ...

    def hit_now(self, key: str) -> Any: ...

    async def invalidate(self, customer_ids: Iterable[str]) -> None: ...

    async def aclose(self) -> None: ...


class _SingleFlightCache:
    """Fresh hit, else one shared load per key; the storage is the subclass's."""

    def __init__(
        self,
        ttl_seconds: float,
        serve_stale: bool,
        stale_max_age_seconds: float,
        versions: BillingVersionSource | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.serve_stale = serve_stale
        self.stale_max_age_seconds = stale_max_age_seconds
        self.versions = versions
        self.loads = 0
        self._flights: dict[tuple[str, int | None], asyncio.Future[tuple[Any, float | None]]] = {}

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        """The entry of ``key`` with its value prepared, fresh or not."""
        raise NotImplementedError

    def _lookup_now(self, key: str) -> _Entry | None:
        """``_lookup`` when the storage answers without I/O; ``None`` when it cannot."""
        return None

    async def _epoch(self) -> int:
        raise NotImplementedError

    async def _store(
        self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int, version: int | None
    ) -> None:
        raise NotImplementedError

    async def _load_once(
        self, key: str, load: Loader, prepare: Prepare, version: int | None
    ) -> Any:
        """Hook for a cross-worker single flight; the default just loads."""
        return await self._load_and_store(key, load, prepare, version)

    async def _load_and_store(
        self, key: str, load: Loader, prepare: Prepare, version: int | None
    ) -> Any:
        epoch = await self._epoch()
        self.loads += 1
        metrics.record_billing_cache("load")
        loaded = await load()
        if loaded.value is None:
            # "Nothing to add" is not cached: a customer created a second later must show up.
            return None
        prepared = prepare(loaded.value)
        await self._store(key, loaded, prepared, epoch, version)
        return prepared

    def hit_now(self, key: str) -> Any:
        """The prepared value of ``key`` if this can be told without waiting for anything: the
        entry is in this process, fresh, and current for a version already known (``known``).
        ``None`` otherwise, and the caller then calls ``get_or_load``, which decides the same
        way after its reads (so a value served here is one ``get_or_load`` would serve)."""
        version = None
        if self.versions is not None:
            version = self.versions.known(key)
            if version is None:
                return None
        entry = self._lookup_now(key)
        if entry is None or not entry.fresh or not entry.is_current(version):
            return None
        metrics.record_billing_cache("hit")
        return entry.value

    async def get_or_load(
        self,
        key: str,
        load: Loader,
        logger: WorkflowLogger | None = None,
        prepare: Prepare | None = None,
    ) -> Any:
        """The (prepared) value of ``key``. One key is always used with one ``prepare``."""
        prepare = prepare or _identity
        version = None if self.versions is None else await self.versions.current(key)
        entry = await self._lookup(key, prepare)
        if entry is not None and entry.fresh and entry.is_current(version):
            metrics.record_billing_cache("hit")
            return entry.value
        metrics.record_billing_cache("miss")
        flight_key = (key, version)
        flight = self._flights.get(flight_key)
        if flight is None:
            # The load runs as its own task: a caller that hits its time limit and is cancelled
            # does not cancel the load the other callers of this key are waiting for.
            flight = asyncio.ensure_future(self._fly(key, load, prepare, entry, version))
            self._flights[flight_key] = flight
            flight.add_done_callback(lambda _f: self._flights.pop(flight_key, None))
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
        self, key: str, load: Loader, prepare: Prepare, entry: _Entry | None, version: int | None
    ) -> tuple[Any, float | None]:
        try:
            return await self._load_once(key, load, prepare, version), None
        except Exception:
            # Serve-stale decides on any failure of the billing source; the error is re-raised
            # unchanged when there is nothing recent enough to fall back on. An entry older
            # than a known billing change is never served: that would be the stale plan.
            if (
                self.serve_stale
                and entry is not None
                and entry.is_current(version)
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
    version: int | None


class InProcessBillingCache(_SingleFlightCache):
    """The embedded cache: a bounded dict in this process."""

    def __init__(
        self,
        ttl_seconds: float,
        serve_stale: bool = False,
        stale_max_age_seconds: float = 3600.0,
        max_entries: int = 100_000,
        versions: BillingVersionSource | None = None,
    ) -> None:
        super().__init__(ttl_seconds, serve_stale, stale_max_age_seconds, versions)
        self._entries: OrderedDict[str, _Stored] = OrderedDict()
        self._invalidated_at: dict[str, int] = {}
        self._epoch_counter = 0
        self._max_entries = max_entries

    async def _epoch(self) -> int:
        return self._epoch_counter

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        return self._lookup_now(key)

    def _lookup_now(self, key: str) -> _Entry | None:
        stored = self._entries.get(key)
        if stored is None:
            return None
        age = time.monotonic() - stored.stored_at
        valid = all(self._invalidated_at.get(c, -1) < stored.epoch for c in stored.customer_ids)
        return _Entry(stored.value, age, valid and age < self.ttl_seconds, stored.version)

    async def _store(
        self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int, version: int | None
    ) -> None:
        if any(self._invalidated_at.get(c, -1) >= epoch_at_start for c in loaded.customer_ids):
            return
        current = self._entries.get(key)
        if current is not None and not _at_least(version, current.version):
            return  # a load that read an older version finished after a newer one
        self._entries[key] = _Stored(
            prepared, loaded.customer_ids, time.monotonic(), self._epoch_counter, version
        )
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def invalidate(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._invalidated_at[customer_id] = self._epoch_counter
            self._epoch_counter += 1
        # Entries stored from now on carry a newer epoch than any invalidation above.

    async def aclose(self) -> None:
        self._entries.clear()
        if self.versions is not None:
            await self.versions.aclose()


class RedisBillingCache(_SingleFlightCache):
    """Values and invalidation generations in Redis, shared by every worker.

    Keys (all under ``prefix``): ``entry:<key>`` = JSON ``{value, customers, at, gens, version}``;
    ``gen:<customer>`` = the epoch of the customer's last invalidation; ``epoch`` = a counter.
    An entry is valid while each of its customers' generations equals the one it was stored
    with (and, with a version source, while it is current). ``lock:<key>`` (``SET NX PX``) makes
    other workers wait for the first one's load. Every Redis failure falls back to the store.
    """

    LOCK_WAIT_SECONDS = 5.0
    POLL_SECONDS = 0.01
    REDIS_RETRY_SECONDS = 2.0
    """How long a worker that saw Redis fail loads from the store before asking Redis again."""

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: float,
        serve_stale: bool = False,
        stale_max_age_seconds: float = 3600.0,
        prefix: str = "claimflow:billing",
        versions: BillingVersionSource | None = None,
    ) -> None:
        super().__init__(ttl_seconds, serve_stale, stale_max_age_seconds, versions)
        self._redis = redis
        self._prefix = prefix
        self.invalidation_errors = 0
        self.redis_failures = 0
        self._redis_down_until = 0.0
        self._failures = ThrottledLog(log)

    @classmethod
    def from_url(cls, url: str, timeout_seconds: float = 1.0, **kwargs: Any) -> RedisBillingCache:
        """A client whose calls give up after ``timeout_seconds`` (a paused Redis must not
        hold a sign-in past its workflow deadline), that health-checks idle connections and
        retries a call once on a fresh connection when the pooled one turns out dead."""
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # A sign-in burst must queue for a connection, not fail with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=max(5.0, timeout_seconds),
            socket_timeout=timeout_seconds,
            socket_connect_timeout=max(5.0, timeout_seconds),
            health_check_interval=5,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            retry_on_error=[RedisConnectionError],
        )
        return cls(Redis(connection_pool=pool), **kwargs)

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _redis_failed(self, during: str, exc: Exception) -> None:
        self.redis_failures += 1
        self._redis_down_until = time.monotonic() + self.REDIS_RETRY_SECONDS
        self._failures.error(
            "redis",
            "billing cache: Redis failed during %s (%s: %s); loading billing from the store "
            "until it answers again",
            during,
            type(exc).__name__,
            exc,
        )

    def _redis_answered(self) -> None:
        if self._failures.recovered("redis"):
            log.warning("billing cache: Redis answers again; caching billing in Redis")

    async def _epoch(self) -> int:
        if not self.redis_available:
            return 0
        try:
            raw = await self._redis.get(self._k("epoch"))
        except RedisError as exc:
            self._redis_failed("a lookup", exc)
            return 0
        return int(raw or 0)

    async def _lookup(self, key: str, prepare: Prepare) -> _Entry | None:
        if not self.redis_available:
            return None
        try:
            raw = await self._redis.get(self._k("entry", key))
            if raw is None:
                self._redis_answered()
                return None
            stored = json.loads(raw)
            customers: list[str] = stored["customers"]
            current = (
                await self._redis.mget([self._k("gen", c) for c in customers]) if customers else []
            )
        except RedisError as exc:
            self._redis_failed("a lookup", exc)
            return None
        self._redis_answered()
        valid = [int(g or 0) for g in current] == stored["gens"]
        age = time.time() - float(stored["at"])
        return _Entry(
            prepare(stored["value"]), age, valid and age < self.ttl_seconds, stored.get("version")
        )

    async def _store(
        self, key: str, loaded: Loaded, prepared: Any, epoch_at_start: int, version: int | None
    ) -> None:
        if not self.redis_available:
            return
        customers = sorted(loaded.customer_ids)
        try:
            gens = (
                [
                    int(g or 0)
                    for g in await self._redis.mget([self._k("gen", c) for c in customers])
                ]
                if customers
                else []
            )
            if any(g > epoch_at_start for g in gens):
                return
            keep = max(self.ttl_seconds, self.stale_max_age_seconds if self.serve_stale else 0)
            payload = {
                "value": loaded.value,
                "customers": customers,
                "at": time.time(),
                "gens": gens,
                "version": version,
            }
            await self._redis.set(
                self._k("entry", key), json.dumps(payload), px=max(1, int(keep * 1000))
            )
        except RedisError as exc:
            self._redis_failed("a store", exc)

    async def _load_once(
        self, key: str, load: Loader, prepare: Prepare, version: int | None
    ) -> Any:
        if not self.redis_available:
            return await self._load_and_store(key, load, prepare, version)
        lock = self._k("lock", key)
        try:
            locked = await self._redis.set(
                lock, "1", nx=True, px=int(self.LOCK_WAIT_SECONDS * 1000)
            )
        except RedisError as exc:
            self._redis_failed("a lock", exc)
            return await self._load_and_store(key, load, prepare, version)
        if locked:
            try:
                return await self._load_and_store(key, load, prepare, version)
            finally:
                with contextlib.suppress(RedisError):
                    await self._redis.delete(lock)
        deadline = time.monotonic() + self.LOCK_WAIT_SECONDS
        try:
            while time.monotonic() < deadline and await self._redis.exists(lock):
                await asyncio.sleep(self.POLL_SECONDS)
                entry = await self._lookup(key, prepare)
                if entry is not None and entry.fresh and entry.is_current(version):
                    return entry.value
        except RedisError as exc:
            self._redis_failed("a lock wait", exc)
        return await self._load_and_store(key, load, prepare, version)

    _BUMP = "local e = redis.call('INCR', KEYS[1]); redis.call('SET', KEYS[2], e); return e"

    async def invalidate(self, customer_ids: Iterable[str]) -> None:
        """Bump the customers' generations; with Redis down, log and leave it to the TTL."""
        customers = sorted(customer_ids)
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
        if self.versions is not None:
            await self.versions.aclose()


def build_billing_cache(
    redis_url: str | None,
    ttl_seconds: float,
    serve_stale: bool,
    stale_max_age_seconds: float,
    redis_prefix: str = "claimflow",
    versions: BillingVersionSource | None = None,
    redis_timeout_seconds: float = 1.0,
) -> InProcessBillingCache | RedisBillingCache:
    """Redis when ``redis_url`` is set (keys under ``<redis_prefix>:billing``), else in-process."""
    if redis_url:
        return RedisBillingCache.from_url(
            redis_url,
            timeout_seconds=redis_timeout_seconds,
            ttl_seconds=ttl_seconds,
            serve_stale=serve_stale,
            stale_max_age_seconds=stale_max_age_seconds,
            prefix=f"{redis_prefix}:billing",
            versions=versions,
        )
    return InProcessBillingCache(ttl_seconds, serve_stale, stale_max_age_seconds, versions=versions)
