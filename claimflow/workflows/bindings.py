"""What a running workflow may touch: Kinde's bindings, in snake_case (design §4).

A workflow declares the bindings it uses; asking ``Bindings`` for one it did not declare raises
``BindingNotDeclared``, as Kinde's runtime does. Each run gets fresh bindings, so the claims and
log lines of one run never leak into another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from claimflow.errors import BindingNotDeclared, ReservedClaim, WorkflowRuntimeError
from claimflow.tokens.budget import EncodedJSON
from claimflow.workflows.definition import Binding

if TYPE_CHECKING:
    from claimflow.cache import BillingCache
    from claimflow.workflows.environment import EnvironmentVariables
    from claimflow.workflows.management_client import ManagementAPIClient

REDACTED = "[REDACTED]"


class WorkflowLogger:
    """A logger whose lines land in the run log; values of secrets read in the run are redacted."""

    def __init__(self) -> None:
        self.lines: list[dict[str, str]] = []
        self._secrets: set[str] = set()

    def add_secret(self, value: str) -> None:
        if value:
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def _log(self, level: str, message: str) -> None:
        self.lines.append(
            {
                "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": level,
                "message": self.redact(str(message)),
            }
        )

    def debug(self, message: str) -> None:
        self._log("debug", message)

    def info(self, message: str) -> None:
        self._log("info", message)

    def warning(self, message: str) -> None:
        self._log("warning", message)

    def error(self, message: str) -> None:
        self._log("error", message)


def _encode(name: str, value: Any) -> bytes:
    """A claim value's compact JSON; a NaN or an object would break every verifier."""
    try:
        return EncodedJSON(value).encoded
    except (TypeError, ValueError) as exc:
        raise WorkflowRuntimeError(f"the value of claim {name!r} is not JSON: {exc}") from exc


class TokenClaims:
    """``kinde.accessToken`` / ``kinde.idToken``: the custom claims one token will carry.

    A value may be given as ``EncodedJSON`` (the billing workflows give their cached forms so):
    its encoding made once is reused, by the size budget and the signer too, instead of
    serialising the same claim again on every sign-in.
    """

    def __init__(
        self, token: str, reserved: frozenset[str], encodings: dict[int, bytes] | None = None
    ) -> None:
        self.token = token
        self._reserved = reserved
        self._claims: dict[str, tuple[Any, ...]] = {}
        self._encoded: dict[str, tuple[bytes, ...]] = {}
        self._encodings = encodings if encodings is not None else {}
        """JSON of values already encoded in this run, by id (one value often goes in both
        tokens); the values are held by the claims, so their ids stay theirs for the run."""

    def set_custom_claim(self, name: str, value: Any, fallbacks: Sequence[Any] = ()) -> None:
        """Set ``name``; ``fallbacks`` are smaller forms the size budget may use instead, in order."""
        if not isinstance(name, str) or not name or len(name) > 256:
            raise WorkflowRuntimeError(f"a claim name must be a non-empty string, got {name!r}")
        if name in self._reserved:
            raise ReservedClaim(self.token, name)
        values = []
        encoded = []
        for form in (value, *fallbacks):
            if isinstance(form, EncodedJSON):
                values.append(form.value)
                encoded.append(form.encoded)
                continue
            text = self._encodings.get(id(form))
            if text is None:
                text = self._encodings[id(form)] = _encode(name, form)
            values.append(form)
            encoded.append(text)
        self._claims[name] = tuple(values)
        self._encoded[name] = tuple(encoded)

    def names(self) -> frozenset[str]:
        """The names of the claims set so far."""
        return frozenset(self._claims)

    def get_custom_claims(self) -> dict[str, Any]:
        return {name: forms[0] for name, forms in self._claims.items()}

    @property
    def forms(self) -> dict[str, tuple[Any, ...]]:
        return dict(self._claims)

    @property
    def encoded(self) -> dict[str, tuple[bytes, ...]]:
        """The compact JSON of each claim's forms, in the order of ``forms``."""
        return dict(self._encoded)


class Auth:
    """``kinde.auth``: ``deny_access(reason)`` refuses the sign-in with a reason the user sees."""

    def __init__(self) -> None:
        self.denied_reason: str | None = None

    def deny_access(self, reason: str) -> None:
        self.denied_reason = str(reason) or "Access denied by a workflow."


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    """Kinde's ``{value, isSecret}``."""

    value: str | None
    is_secret: bool


class Env:
    """``kinde.env``: environment variables and secrets; reading a secret redacts it in logs."""

    def __init__(self, variables: EnvironmentVariables, logger: WorkflowLogger) -> None:
        self._variables = variables
        self._logger = logger

    async def get_environment_variable(self, key: str) -> EnvironmentVariable | None:
        found = await self._variables.get(key)
        if found is None:
            return None
        if found.is_secret and found.value:
            self._logger.add_secret(found.value)
        return EnvironmentVariable(value=found.value, is_secret=found.is_secret)


@dataclass
class Bindings:
    """The bindings of one run; only the declared ones are reachable."""

    declared: frozenset[Binding]
    logger_binding: WorkflowLogger
    access_token_binding: TokenClaims
    id_token_binding: TokenClaims
    auth_binding: Auth
    management_api_binding: ManagementAPIClient | None = None
    env_binding: Env | None = None
    billing_cache_binding: BillingCache | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def _require(self, binding: Binding) -> None:
        if binding not in self.declared:
            raise BindingNotDeclared(binding.value)

    @property
    def access_token(self) -> TokenClaims:
        self._require(Binding.ACCESS_TOKEN)
        return self.access_token_binding

    @property
    def id_token(self) -> TokenClaims:
        self._require(Binding.ID_TOKEN)
        return self.id_token_binding

    @property
    def auth(self) -> Auth:
        self._require(Binding.AUTH)
        return self.auth_binding

    @property
    def logger(self) -> WorkflowLogger:
        # Kinde gives ``console`` to every workflow; the run log must always be writable.
        return self.logger_binding

    @property
    def management_api(self) -> ManagementAPIClient:
        self._require(Binding.MANAGEMENT_API)
        if self.management_api_binding is None:
            raise WorkflowRuntimeError("no Management API is configured for workflows")
        return self.management_api_binding

    @property
    def env(self) -> Env:
        self._require(Binding.ENV)
        if self.env_binding is None:
            raise WorkflowRuntimeError("environment variables are not available")
        return self.env_binding

    @property
    def billing_cache(self) -> BillingCache:
        self._require(Binding.BILLING_CACHE)
        if self.billing_cache_binding is None:
            raise WorkflowRuntimeError("no billing cache is configured")
        return self.billing_cache_binding
