"""The server's side of a run's bindings: each is a capability checked against the declaration.

For a trusted (in-process) run this builds the ``Bindings`` object itself; for a run in a runner
process it answers the runner's binding calls (design §8). Either way the same checks apply: the
binding must be declared, an environment variable must be declared by name
(``WorkflowSettings.env_vars``), Management API calls carry only the declared scopes, ``fetch``
goes only to declared hosts, and every call gets what remains of the run's deadline. Values of
secrets read in the run are redacted from its log lines and error text by the server's logger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from claimflow.errors import BindingNotDeclared, WorkflowRuntimeError
from claimflow.workflows.bindings import (
    Auth,
    Bindings,
    Env,
    EnvironmentVariable,
    Plan,
    TokenClaims,
    WorkflowLogger,
)
from claimflow.workflows.definition import Binding, Workflow
from claimflow.workflows.fetch import Fetch, FetchRequest, ServerFetch
from claimflow.workflows.management_client import (
    METHODS,
    ManagementAPIClient,
    ManagementTransport,
    check_path,
)

if TYPE_CHECKING:
    from claimflow.cache import BillingCache


class StoredValue(Protocol):
    @property
    def value(self) -> str | None: ...
    @property
    def is_secret(self) -> bool: ...


class VariableSource(Protocol):
    """Where variables are read: the deployment's encrypted store, or a test's values."""

    async def get(self, key: str) -> StoredValue | None: ...

    def invalidate(self) -> None: ...


class VariableNotDeclared(WorkflowRuntimeError):
    def __init__(self, workflow_id: str, key: str) -> None:
        super().__init__(
            f"environment variable {key!r} is not declared by workflow {workflow_id!r} "
            "(WorkflowSettings.env_vars)"
        )


class RunCapabilities:
    """What one run may do, and the server-side objects that do it."""

    def __init__(
        self,
        workflow: Workflow,
        logger: WorkflowLogger,
        deadline: float,
        *,
        environment: VariableSource | None,
        management: ManagementTransport | None,
        billing_cache: BillingCache | None,
        http: httpx.AsyncClient | None,
    ) -> None:
        self.workflow = workflow
        self.settings = workflow.settings
        self.logger = logger
        self.deadline = deadline
        """On the event loop's clock (``loop.time()``)."""
        self._environment = environment
        self._management = management
        self._billing_cache = billing_cache
        self._http = http
        self._client: ManagementAPIClient | None = None
        self._forwarded_calls = 0

    @property
    def management_calls(self) -> int:
        """Management API calls of the run, in-process or forwarded from a runner."""
        return self._forwarded_calls + (self._client.calls if self._client is not None else 0)

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def _require(self, binding: Binding) -> None:
        if binding not in self.settings.bindings:
            raise BindingNotDeclared(binding.value)

    def _declares(self, key: str) -> bool:
        """Declared by name, or by a prefix pattern such as ``SUPPORT_TIER_*``."""
        declared = self.settings.env_vars
        return key in declared or any(
            name.endswith("*") and key.startswith(name[:-1]) for name in declared
        )

    async def read_variable(self, key: str) -> EnvironmentVariable | None:
        if not self._declares(key):
            raise VariableNotDeclared(self.workflow.id, str(key))
        if self._environment is None:
            raise WorkflowRuntimeError("environment variables are not available")
        found = await self._environment.get(key)
        if found is None:
            return None
        if found.is_secret and found.value:
            self.logger.add_secret(found.value)
        return EnvironmentVariable(value=found.value, is_secret=found.is_secret)

    async def declared_values(self) -> dict[str, dict[str, Any] | None]:
        """The variables declared by exact name, read now for a runner's ``run`` message: its
        reads of them then cost no round trip. (A ``PREFIX_*`` declaration is read on demand.)
        Secrets among them are redacted from the run's log from the start."""
        if Binding.ENV not in self.settings.bindings or self._environment is None:
            return {}
        values: dict[str, dict[str, Any] | None] = {}
        for key in sorted(self.settings.env_vars):
            if key.endswith("*"):
                continue
            try:
                found = await self.read_variable(key)
            except Exception:  # the store unreadable now: the run asks when it reads
                return {}
            values[key] = (
                None if found is None else {"value": found.value, "is_secret": found.is_secret}
            )
        return values

    def fetcher(self) -> ServerFetch:
        http = self._http

        def client() -> httpx.AsyncClient:
            if http is None:
                raise WorkflowRuntimeError("fetch is not available")
            return http

        return ServerFetch(
            self.settings.fetch_hosts,
            self.logger.info,
            self.remaining,
            client,
        )

    def trusted_bindings(
        self, access: TokenClaims, id_token: TokenClaims, auth: Auth, plan: Plan
    ) -> Bindings:
        """The bindings object of an in-process run: only the declared ones are built.

        ``access`` is the token the run is for: the user's access token, or the M2M token
        (``m2m_token``) on ``m2m:token_generation``."""
        declared = self.settings.bindings
        provided: dict[Binding, object] = {
            Binding.ACCESS_TOKEN: access,
            Binding.ID_TOKEN: id_token,
            Binding.M2M_TOKEN: access,
            Binding.AUTH: auth,
            Binding.PLAN: plan,
        }
        if Binding.MANAGEMENT_API in declared and self._management is not None:
            self._client = ManagementAPIClient(
                self._management, self.logger, self.settings.management_api_scopes, self.deadline
            )
            provided[Binding.MANAGEMENT_API] = self._client
        if Binding.ENV in declared:
            provided[Binding.ENV] = Env(self.read_variable)
        if Binding.FETCH in declared:
            provided[Binding.FETCH] = Fetch(self.fetcher())
        if Binding.BILLING_CACHE in declared and self._billing_cache is not None:
            provided[Binding.BILLING_CACHE] = self._billing_cache
        return Bindings(declared, self.logger, provided)

    async def answer(self, binding: str, args: Mapping[str, Any]) -> Any:
        """Perform one binding call of a runner, after checking it; the answer is JSON."""
        if binding == Binding.ENV.value:
            self._require(Binding.ENV)
            key = args.get("key")
            if not isinstance(key, str):
                raise WorkflowRuntimeError("env: the key must be a string")
            found = await self.read_variable(key)
            return None if found is None else {"value": found.value, "is_secret": found.is_secret}
        if binding == Binding.MANAGEMENT_API.value:
            self._require(Binding.MANAGEMENT_API)
            return await self._management_call(args)
        if binding == Binding.FETCH.value:
            self._require(Binding.FETCH)
            response = await self.fetcher()(FetchRequest.from_wire(args))
            return response.to_wire()
        raise BindingNotDeclared(binding)

    async def _management_call(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if self._management is None:
            raise WorkflowRuntimeError("no Management API is configured for workflows")
        method = args.get("method")
        if method not in METHODS:
            raise WorkflowRuntimeError(f"Management API method {method!r} is not allowed")
        path = check_path(str(args.get("path", "")))
        params = args.get("params") or {}
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise WorkflowRuntimeError("Management API params must map strings to strings")
        timeout = self.remaining()
        if timeout <= 0:
            return {"error": "timeout"}
        self._forwarded_calls += 1
        try:
            response = await self._management.request(
                str(method),
                path,
                params,
                args.get("body"),
                scopes=self.settings.management_api_scopes,
                time_left=timeout,
            )
        except (httpx.TimeoutException, TimeoutError):
            return {"error": "timeout"}
        except httpx.HTTPError as exc:
            return {"error": type(exc).__name__}
        return {"status": response.status_code, "body": response.text}
