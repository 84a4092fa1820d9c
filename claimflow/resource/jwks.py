"""The issuer's JSON Web Key Set, fetched over HTTP and cached (RFC 7517, RFC 7515 §4.1.4).

Keys rotate (``claimflow keys rotate``): a token may name a ``kid`` this cache has not seen yet.
The cache then refetches the set at once — but at most once per ``min_refetch_seconds`` (1 s), so a
stream of tokens with made-up ``kid`` values cannot turn the resource server into a load
generator against the issuer. Concurrent misses share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from claimflow.errors import ClaimflowError
from claimflow.resource.errors import invalid_token


class JWKSUnavailable(ClaimflowError):
    """The key set could not be fetched or parsed (the verifier answers 503)."""


class JWKSCache:
    """Public keys of one issuer by ``kid``, fetched with httpx and kept for ``ttl_seconds``."""

    def __init__(
        self,
        jwks_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        ttl_seconds: float = 300.0,
        min_refetch_seconds: float = 1.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.jwks_url = jwks_url
        self._http = http
        self._owns_http = http is None
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0
        """Fetch attempts so far (successful or not)."""

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _fetch(self) -> None:
        self.fetch_count += 1
        try:
            response = await self._client().get(
                self.jwks_url, headers={"Accept": "application/json"}
            )
            response.raise_for_status()
            document: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JWKSUnavailable(f"cannot fetch {self.jwks_url}: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JWKSUnavailable(f"{self.jwks_url} is not a JSON Web Key Set")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type this PyJWT cannot use is skipped, not fatal
        self._keys = keys
        self._fetched_at = time.monotonic()

    def _since(self, moment: float | None) -> float:
        return float("inf") if moment is None else time.monotonic() - moment

    def _wants_fetch(self, kid: str) -> bool:
        if self._since(self._attempted_at) < self._min_refetch:
            return False  # just tried (or failed): no stampede, no retry storm against the issuer
        return self._since(self._fetched_at) > self._ttl or kid not in self._keys

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key ``kid``; refetches when stale or unknown. Raises 401 ``invalid_token``.

        When the issuer is unreachable the last good key set keeps serving (keys change rarely,
        and a retired key stays published long after rotation); with no key set at all, the
        caller gets ``JWKSUnavailable``.
        """
        if self._wants_fetch(kid):
            attempt_seen = self._attempted_at
            async with self._lock:
                if self._attempted_at == attempt_seen:  # nobody fetched while we waited
                    self._attempted_at = time.monotonic()
                    try:
                        await self._fetch()
                    except JWKSUnavailable:
                        if not self._keys:
                            raise
        if not self._keys:
            raise JWKSUnavailable(f"no key set from {self.jwks_url} yet")
        found = self._keys.get(kid)
        if found is None:
            raise invalid_token("The token is signed with an unknown key.")
        return found
