"""What a running workflow may touch: Kinde's bindings, in snake_case (design §4).

A workflow declares the bindings it uses; asking ``Bindings`` for one it did not declare raises
``BindingNotDeclared``, as Kinde's runtime does. Each run gets fresh bindings, so the claims and
log lines of one run never leak into another. The same classes serve both modes (design §8): in a
runner process, the environment, Management API and fetch bindings forward each call to the
server, which checks the declaration and performs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from claimflow.errors import BindingNotDeclared, ReservedClaim, WorkflowRuntimeError
from claimflow.tokens.budget import EncodedJSON
from claimflow.tokens.reserved import BUILTIN_CLAIMS, builtin_claim_owner, is_reserved
from claimflow.workflows.definition import Binding

if TYPE_CHECKING:
    from claimflow.cache import BillingCache
    from claimflow.workflows.fetch import Fetch
    from claimflow.workflows.management_client import ManagementAPIClient

REDACTED = "[REDACTED]"
_LEVELS = frozenset({"debug", "info", "warning", "error"})


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

    def line(self, level: str, message: str) -> None:
        """A line of any of the four levels (a runner's lines arrive this way)."""
        self._log(level if level in _LEVELS else "info", message)

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
        self,
        token: str,
        reserved: frozenset[str],
        encodings: dict[int, bytes] | None = None,
        declared_claims: frozenset[str] | None = None,
    ) -> None:
        self.token = token
        self._reserved = reserved
        self._declared_claims = declared_claims
        """The claims the workflow declares: a billing claim (``org_billing``,
        ``billingDetails``) may be set only by a workflow that declares it, and the registry lets
        one enabled workflow declare it. ``None`` in a runner: the server checks again."""
        self._claims: dict[str, tuple[Any, ...]] = {}
        self._encoded: dict[str, tuple[bytes, ...]] = {}
        self._encodings = encodings if encodings is not None else {}
        """JSON of values already encoded in this run, by id (one value often goes in both
        tokens); the values are held by the claims, so their ids stay theirs for the run."""

    def set_custom_claim(self, name: str, value: Any, fallbacks: Sequence[Any] = ()) -> None:
        """Set ``name``; ``fallbacks`` are smaller forms the size budget may use instead, in order."""
        if not isinstance(name, str) or not name or len(name) > 256:
            raise WorkflowRuntimeError(f"a claim name must be a non-empty string, got {name!r}")
        if is_reserved(name, self._reserved):
            raise ReservedClaim(self.token, name)
        builtin_owner = builtin_claim_owner(name)
        if builtin_owner is not None and (
            name not in BUILTIN_CLAIMS
            or (self._declared_claims is not None and name not in self._declared_claims)
        ):
            raise WorkflowRuntimeError(
                f"claim {name!r} is a billing claim (set by the built-in workflow "
                f"{builtin_owner!r}); only a workflow that declares it in its claims may set it"
            )
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


class Plan:
    """``kinde.plan``: refuse the plan change this run is about, with reasons the caller sees.

    Kinde's ``denySelection(reason, suggestions)`` and ``denyCancellation(reason)``
    (https://docs.kinde.com/workflows/bindings/plan-binding/), in snake_case. Each call adds a
    reason, so one workflow can give every reason at once; the Management API answers 403 with
    one error per reason and changes nothing. Each method belongs to its trigger: denying a
    cancellation from a plan-selection workflow is an error of the run.
    """

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.reasons: list[str] = []
        self.suggestions: list[str] = []

    def _deny(self, expected: str, method: str, reason: str) -> None:
        if self.trigger != expected:
            raise WorkflowRuntimeError(f"plan.{method} is for {expected}, not {self.trigger}")
        self.reasons.append(str(reason) or "Refused by a workflow.")

    def deny_selection(self, reason: str, suggestions: Sequence[str] = ()) -> None:
        """Refuse the requested plan; ``suggestions`` name plans the caller could choose."""
        self._deny("user:plan_selection", "deny_selection", reason)
        self.suggestions.extend(str(s) for s in suggestions)

    def deny_cancellation(self, reason: str) -> None:
        self._deny("user:plan_cancellation_request", "deny_cancellation", reason)


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    """Kinde's ``{value, isSecret}``."""

    value: str | None
    is_secret: bool


VariableLookup = Callable[[str], Awaitable[EnvironmentVariable | None]]
"""Reads one declared variable: in-process from the store, in a runner by asking the server."""


class Env:
    """``kinde.env``: the environment variables and secrets the workflow declared by name.

    The lookup checks the declaration (``WorkflowSettings.env_vars``) on the server's side, so a
    workflow cannot read another workflow's secret by asking for its name.
    """

    def __init__(self, lookup: VariableLookup) -> None:
        self._lookup = lookup

    async def get_environment_variable(self, key: str) -> EnvironmentVariable | None:
        return await self._lookup(key)


class Bindings:
    """The bindings of one run. Only the declared ones were built; asking for another raises
    ``BindingNotDeclared`` (Kinde's rule), and there is no field to reach around the check."""

    __slots__ = ("_declared", "_logger", "_provided")

    def __init__(
        self,
        declared: frozenset[Binding],
        logger: WorkflowLogger,
        provided: Mapping[Binding, object],
    ) -> None:
        self._declared = declared
        self._logger = logger
        self._provided = {b: v for b, v in provided.items() if b in declared}

    @property
    def declared(self) -> frozenset[Binding]:
        return self._declared

    def has(self, binding: Binding) -> bool:
        """Declared and available here (the billing cache exists only in the server)."""
        return binding in self._declared and self._provided.get(binding) is not None

    def _get(self, binding: Binding) -> Any:
        if binding not in self._declared:
            raise BindingNotDeclared(binding.value)
        value = self._provided.get(binding)
        if value is None:
            raise WorkflowRuntimeError(f"binding {binding.value!r} is not available here")
        return value

    @property
    def access_token(self) -> TokenClaims:
        claims: TokenClaims = self._get(Binding.ACCESS_TOKEN)
        return claims

    @property
    def id_token(self) -> TokenClaims:
        claims: TokenClaims = self._get(Binding.ID_TOKEN)
        return claims

    @property
    def m2m_token(self) -> TokenClaims:
        claims: TokenClaims = self._get(Binding.M2M_TOKEN)
        return claims

    @property
    def plan(self) -> Plan:
        plan: Plan = self._get(Binding.PLAN)
        return plan

    @property
    def auth(self) -> Auth:
        auth: Auth = self._get(Binding.AUTH)
        return auth

    @property
    def logger(self) -> WorkflowLogger:
        # Kinde gives ``console`` to every workflow; the run log must always be writable.
        return self._logger

    @property
    def management_api(self) -> ManagementAPIClient:
        client: ManagementAPIClient = self._get(Binding.MANAGEMENT_API)
        return client

    @property
    def env(self) -> Env:
        env: Env = self._get(Binding.ENV)
        return env

    @property
    def fetch(self) -> Fetch:
        fetch: Fetch = self._get(Binding.FETCH)
        return fetch

    @property
    def billing_cache(self) -> BillingCache:
        """The server's billing cache: for trusted workflows only (it lives in the server)."""
        cache: BillingCache = self._get(Binding.BILLING_CACHE)
        return cache
