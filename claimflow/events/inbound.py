"""Kinde's webhooks in: a billing change on a remote Kinde reaches the billing cache at once.

When the workflows read billing from a remote Kinde (``CLAIMFLOW_MANAGEMENT_API_URL``), the
cache has no billing versions to check (design §9) and an entry lives until its TTL. Kinde
sends a webhook for each billing change (``customer.agreement_created``,
``customer.agreement_cancelled``, ``customer.plan_changed``, ...); ``POST /webhooks/kinde``
verifies it and publishes the customer it names on ``BillingChanges``, which the cache
subscribes to, so the next token issued carries the new plan.

Verification follows Kinde's own decoder (``@kinde/webhooks`` ``decodeWebhook(token,
domain)``): the body is a JWT signed with the business's keys, checked against
``<domain>/.well-known/jwks.json``. We are stricter where it costs a real Kinde nothing:

- only asymmetric algorithms, and the one the key names (RFC 8725 §3.1: no ``none``, no HMAC
  keyed with a public key);
- ``exp`` and ``iat`` are checked when present, and an ``iat`` older than
  ``kinde_webhook_max_age_seconds`` is refused (a captured webhook cannot be replayed forever);
- ``iss``, when present, must be the configured domain;
- an unknown ``kid`` refetches the key set (Kinde rotated its keys) at most once per
  ``refetch_cooldown_seconds``, so forged tokens cannot make us hammer Kinde;
- an ``event_id`` seen in the last ``max_age`` is acknowledged without acting again (Kinde
  delivers at least once); it is remembered only after its token verified, so a forgery cannot
  claim a real event's id first.

The key set is cached for ``kinde_webhook_jwks_ttl_seconds``. Kinde unreachable is a 503, which
Kinde retries; a token that fails verification is a 401 and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from claimflow.errors import InvalidRequest, Unauthorized, UpstreamUnavailable

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_LEEWAY_SECONDS = 60
MAX_TOKEN_BYTES = 64 * 1024


@dataclass(frozen=True)
class KindeWebhook:
    """A verified webhook: Kinde's envelope and the billing customers its data names."""

    event_id: str
    type: str
    customer_ids: frozenset[str]


def customer_ids_of(data: object) -> frozenset[str]:
    """The billing customer ids a webhook's ``data`` names, wherever Kinde puts them.

    Kinde's billing events name the customer as ``customer_id``, under ``customer`` or
    ``agreement``, or as an organization's or user's ``billing``; each place is read, and
    anything that is not a non-empty string is ignored.
    """
    if not isinstance(data, Mapping):
        return frozenset()
    found: set[str] = set()

    def take(container: object, *names: str) -> None:
        if isinstance(container, Mapping):
            for name in names:
                value = container.get(name)
                if isinstance(value, str) and value:
                    found.add(value)

    take(data, "customer_id", "billing_customer_id")
    take(data.get("customer"), "id", "customer_id")
    take(data.get("agreement"), "customer_id")
    take(data.get("billing"), "customer_id", "billing_customer_id")
    for owner in ("organization", "user"):
        holder = data.get(owner)
        if isinstance(holder, Mapping):
            take(holder.get("billing"), "customer_id", "billing_customer_id")
    return frozenset(found)


class KindeJWKS:
    """The signing keys of a Kinde domain, fetched over HTTP and cached."""

    def __init__(
        self,
        domain: str,
        ttl_seconds: float,
        timeout_seconds: float = 5.0,
        refetch_cooldown_seconds: float = 30.0,
    ) -> None:
        self.url = domain.rstrip("/") + "/.well-known/jwks.json"
        self.ttl_seconds = ttl_seconds
        self.refetch_cooldown_seconds = refetch_cooldown_seconds
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``; the set is refetched when stale, or once per cooldown when
        ``kid`` is unknown (a rotation)."""
        async with self._lock:
            now = time.monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            stale = age is None or age >= self.ttl_seconds
            rotated = age is not None and age >= self.refetch_cooldown_seconds
            if stale or (kid not in self._keys and rotated):
                await self._fetch()
            return self._keys.get(kid)

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamUnavailable(
                f"Kinde's key set at {self.url} cannot be read ({exc.__class__.__name__}); "
                "retry later.",
                "KINDE_JWKS_UNAVAILABLE",
            ) from None
        keys: dict[str, jwt.PyJWK] = {}
        for entry in body.get("keys", []) if isinstance(body, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("kty") not in ("RSA", "EC", "OKP") or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    async def aclose(self) -> None:
        await self._http.aclose()


class RecentEvents:
    """Event ids acted on in the last ``max_age_seconds`` (bounded; the oldest go first)."""

    def __init__(self, max_age_seconds: float, max_entries: int = 100_000) -> None:
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """True the first time ``event_id`` is offered within the window; it is remembered."""
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) < now - self.max_age_seconds:
            self._seen.popitem(last=False)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True


class KindeWebhookVerifier:
    """Checks a Kinde webhook JWT as the module docstring says; raises 400/401/503 errors."""

    def __init__(self, domain: str, jwks: KindeJWKS, max_age_seconds: float) -> None:
        self.domain = domain.rstrip("/")
        self.jwks = jwks
        self.max_age_seconds = max_age_seconds

    async def verify(self, token: str) -> KindeWebhook:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidRequest("The webhook is larger than 64 KiB.", "MALFORMED_WEBHOOK")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidRequest("The body is not a JWT.", "MALFORMED_WEBHOOK") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise Unauthorized(f"Algorithm {algorithm!r} is not accepted.", "INVALID_ALGORITHM")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The webhook names no key (kid).", "UNKNOWN_KEY")
        key = await self.jwks.key(kid)
        if key is None:
            raise Unauthorized(f"Kinde publishes no key {kid!r}.", "UNKNOWN_KEY")
        if key.algorithm_name != algorithm:
            raise Unauthorized(f"Key {kid!r} does not sign with {algorithm}.", "INVALID_ALGORITHM")
        claims = self._decode(token, key, algorithm)
        issuer = claims.get("iss")
        if issuer is not None and (
            not isinstance(issuer, str) or issuer.rstrip("/") != self.domain
        ):
            raise Unauthorized("The webhook was issued by another domain.", "WRONG_ISSUER")
        issued_at = claims.get("iat")
        if isinstance(issued_at, int | float) and time.time() - issued_at > self.max_age_seconds:
            raise Unauthorized("The webhook is too old to act on.", "EXPIRED_WEBHOOK")
        event_id, event_type = claims.get("event_id"), claims.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise InvalidRequest("The webhook carries no event_id or type.", "MALFORMED_WEBHOOK")
        return KindeWebhook(event_id, event_type, customer_ids_of(claims.get("data")))

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={"verify_aud": False},
                leeway=CLOCK_LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The webhook has expired.", "EXPIRED_WEBHOOK") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized(
                "The webhook's signature is not valid.", "INVALID_SIGNATURE"
            ) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The webhook is not valid ({exc}).", "INVALID_WEBHOOK") from None
        return claims


class KindeWebhookReceiver:
    """What ``POST /webhooks/kinde`` needs: the verifier and the ids already acted on."""

    def __init__(
        self,
        domain: str,
        jwks_ttl_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.jwks = KindeJWKS(domain, jwks_ttl_seconds, timeout_seconds)
        self.verifier = KindeWebhookVerifier(domain, self.jwks, max_age_seconds)
        self.recent = RecentEvents(max_age_seconds)

    async def aclose(self) -> None:
        await self.jwks.aclose()
