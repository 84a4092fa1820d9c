"""FastAPI and Starlette glue: dependencies that enforce a token, a plan feature, a limit.

    api = ResourceServer(TokenVerifier(issuer, audience="https://api.example.com"))
    api.install(app)                       # 401/403 as RFC 6750 JSON with WWW-Authenticate

    @app.get("/sso", dependencies=[Depends(api.require_feature("sso"))])
    @app.post("/seats", dependencies=[Depends(api.require_limit("seats", used=count_seats))])
    @app.get("/reports", dependencies=[Depends(api.require_permission("read:reports"))])
    async def handler(token: Annotated[VerifiedToken, Depends(api.token)]): ...

Starlette apps call ``await api.authenticate(request)`` and ``api.install(app)`` the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from claimflow.claims import BillingClaim, FeatureLimit
from claimflow.resource.billing import BillingResolver
from claimflow.resource.errors import ResourceAccessDenied, insufficient, missing_token
from claimflow.resource.verifier import TokenVerifier, VerifiedToken


def access_denied_response(exc: ResourceAccessDenied) -> JSONResponse:
    return JSONResponse(
        exc.body(),
        status_code=exc.status_code,
        headers={**exc.headers_for(), "Cache-Control": "no-store"},
    )


async def _handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ResourceAccessDenied)
    return access_denied_response(exc)


class ResourceServer:
    """Enforces claimflow tokens in an API; one instance per API (issuer + audience)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        realm: str = "api",
        resolver: BillingResolver | None = None,
    ) -> None:
        self.verifier = verifier
        self.realm = realm
        self.resolver = resolver or BillingResolver(verifier.issuer, http=verifier.http)

    def install(self, app: Starlette) -> None:
        """Answer every ``ResourceAccessDenied`` with its status, JSON body and header."""
        app.add_exception_handler(ResourceAccessDenied, _handler)

    async def aclose(self) -> None:
        await self.verifier.aclose()
        await self.resolver.aclose()

    async def authenticate(self, request: Request) -> VerifiedToken:
        """The request's verified bearer token (RFC 6750 §2.1: the Authorization header only)."""
        header = request.headers.get("authorization")
        if not header:
            raise missing_token(self.realm)
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip() or " " in credentials.strip():
            raise ResourceAccessDenied(
                400, "invalid_request", "Use 'Authorization: Bearer <token>'.", realm=self.realm
            )
        try:
            return await self.verifier.verify(credentials.strip())
        except ResourceAccessDenied as exc:
            exc.realm = self.realm
            raise

    async def token(self, request: Request) -> VerifiedToken:
        """Dependency: the verified token (cached per request, so stacked checks verify once)."""
        cached = getattr(request.state, "claimflow_token", None)
        if isinstance(cached, VerifiedToken):
            return cached
        verified = await self.authenticate(request)
        request.state.claimflow_token = verified
        return verified

    async def billing(self, request: Request) -> BillingClaim:
        """Dependency: the token's billing, resolved to its features (reference forms fetched)."""
        verified = await self.token(request)
        claim = verified.billing
        if claim is None:
            raise insufficient(
                "The token carries no billing: sign in to an organization with a plan.",
                self.realm,
            )
        return await self.resolver.resolve(claim, verified.raw)

    def require_feature(self, code: str) -> Callable[[Request], Awaitable[BillingClaim]]:
        """Dependency: 403 unless the billing includes feature ``code``."""

        async def dependency(request: Request) -> BillingClaim:
            claim = await self.billing(request)
            if not claim.has_feature(code):
                raise insufficient(
                    f"The plan does not include the feature '{code}'.",
                    self.realm,
                    feature=code,
                    plans=list(claim.plans),
                )
            return claim

        return dependency

    def limit_of(self, code: str) -> Callable[[Request], Awaitable[FeatureLimit]]:
        """Dependency: the feature's limits (``maximum None`` = unlimited); 403 if not entitled."""
        require = self.require_feature(code)

        async def dependency(request: Request) -> FeatureLimit:
            claim = await require(request)
            limit = claim.limit_of(code)
            assert limit is not None
            return limit

        return dependency

    def require_limit(
        self, code: str, *, used: Callable[..., Any]
    ) -> Callable[..., Awaitable[FeatureLimit]]:
        """Dependency: 403 unless one more unit of ``code`` fits under the plan's maximum.

        ``used`` is itself a FastAPI dependency (it may take the request, the token, a database
        session...) returning how many units are in use now.
        """
        from fastapi import Depends  # FastAPI only for the apps that use this dependency

        limit_dependency = self.limit_of(code)
        realm = self.realm

        async def dependency(
            # Defaults, not Annotated: with postponed annotations FastAPI could not resolve
            # these closure variables from a string annotation.
            limit: FeatureLimit = Depends(limit_dependency),  # noqa: B008
            in_use: int = Depends(used),
        ) -> FeatureLimit:
            if limit.maximum is not None and in_use >= limit.maximum:
                raise insufficient(
                    f"The plan allows {limit.maximum} of '{code}' and {in_use} are in use.",
                    realm,
                    feature=code,
                    limit=limit.maximum,
                    used=in_use,
                )
            return limit

        return dependency

    def require_permission(self, permission: str) -> Callable[[Request], Awaitable[VerifiedToken]]:
        """Dependency: 403 unless the token carries ``permission`` for its organization."""

        async def dependency(request: Request) -> VerifiedToken:
            verified = await self.token(request)
            if permission not in verified.permissions:
                raise insufficient(
                    f"The token lacks the permission '{permission}'.",
                    self.realm,
                    permission=permission,
                )
            return verified

        return dependency


__all__ = ["ResourceServer", "access_denied_response"]
