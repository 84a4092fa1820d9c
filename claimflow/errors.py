"""The one exception hierarchy of claimflow.

    ClaimflowError
    ├── OAuthError            an RFC 6749 §5.2 error (``error``, ``error_description``, status)
    ├── ManagementAPIError    Kinde's ``{"errors": [{"code", "message"}]}`` with an HTTP status
    │   ├── NotFound          404: an unknown code or id
    │   ├── Conflict          409: a duplicate code, email or owner
    │   ├── InvalidRequest    400: a value the domain refuses
    │   ├── Unauthorized      401: no or a bad credential (also a Kinde webhook that fails
    │   │                     verification: signature, key, issuer, age)
    │   └── UpstreamUnavailable  503: a service we depend on (Kinde's JWKS) cannot be reached
    ├── WorkflowError         a token-generation workflow failed; carries workflow and run ids
    │   └── WorkflowAccessDenied  a workflow called ``auth.deny_access(reason)`` or denied a
    │                             plan change (``plan.deny_selection`` / ``deny_cancellation``)
    ├── WorkflowConfigError   the enabled workflows cannot run together (found at start-up)
    ├── WorkflowRuntimeError  raised inside one workflow run; the runner turns it into the run's error
    │   ├── ReservedClaim         a workflow set a claim the provider owns
    │   ├── BindingNotDeclared    a workflow used a binding its settings do not declare
    │   └── ManagementAPICallFailed  a Management API call failed (status, timeout, bad body)
    │       └── ManagementAPINotFound  404: the organization or user does not exist there
    ├── TokenTooLarge         even the smallest claim forms do not fit the token size budget
    ├── InvalidBillingClaim   (claimflow.claims) a billing claim, or what it is built from, is malformed
    ├── ConfigurationError    a setting, the config file or the environment is unusable; the
    │                         message says what to fix (the CLI prints it without a traceback)
    │   └── SecretKeyMismatch  CLAIMFLOW_SECRET_KEY cannot decrypt what the database stores
    ├── ResourceAccessDenied  (claimflow.resource) an API refuses a token: 401/403 per RFC 6750
    └── JWKSUnavailable       (claimflow.resource) the issuer's key set cannot be fetched

The HTTP layers translate these in one place each (``management/errors.py``, ``oidc/errors.py``);
nothing else catches a broad ``Exception``.
"""

from __future__ import annotations


class ClaimflowError(Exception):
    """Root of every error claimflow raises on purpose."""


class OAuthError(ClaimflowError):
    """An OAuth 2.0 error response (RFC 6749 §4.1.2.1 and §5.2)."""

    def __init__(self, error: str, description: str = "", status_code: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status_code = status_code


class ManagementAPIError(ClaimflowError):
    """A Management API error with Kinde's ``{code, message}`` body."""

    status_code = 400
    default_code = "BAD_REQUEST"
    errors: tuple[tuple[str, str], ...] = ()
    """Several ``(code, message)`` entries for one answer (a plan denial's reasons); when empty,
    the envelope holds the one ``code`` and ``message``."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidRequest(ManagementAPIError):
    status_code = 400
    default_code = "INVALID_REQUEST"


class NotFound(ManagementAPIError):
    status_code = 404
    default_code = "NOT_FOUND"


class Conflict(ManagementAPIError):
    status_code = 409
    default_code = "CONFLICT"


class Unauthorized(ManagementAPIError):
    status_code = 401
    default_code = "UNAUTHORIZED"


class Forbidden(ManagementAPIError):
    status_code = 403
    default_code = "FORBIDDEN"


class UpstreamUnavailable(ManagementAPIError):
    """503: a dependency is down; the caller should retry (Kinde retries its webhooks)."""

    status_code = 503
    default_code = "SERVICE_UNAVAILABLE"


class WorkflowError(ClaimflowError):
    """A workflow failed under the ``stop`` policy, so no token may be issued."""

    def __init__(self, workflow_id: str, run_id: str, message: str) -> None:
        super().__init__(f"workflow {workflow_id} (run {run_id}) failed: {message}")
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.message = message


class WorkflowAccessDenied(WorkflowError):
    """A workflow refused the sign-in (Kinde's ``kinde.auth.denyAccess``) or a plan change
    (``kinde.plan.denySelection`` / ``denyCancellation``); the caller sees ``reason`` (all of
    ``reasons`` where it can show several) and the ``suggestions`` a plan denial gave."""

    def __init__(
        self,
        workflow_id: str,
        run_id: str,
        reason: str,
        reasons: tuple[str, ...] = (),
        suggestions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(workflow_id, run_id, reason)
        self.reason = reason
        self.reasons = reasons or (reason,)
        self.suggestions = suggestions


class WorkflowConfigError(ClaimflowError):
    """The workflow configuration is inconsistent: unknown id, reserved or colliding claims."""


class WorkflowRuntimeError(ClaimflowError):
    """Something a workflow did wrong, or met, during one run; its failure policy decides."""


class ReservedClaim(WorkflowRuntimeError):
    """A workflow tried to set a claim the provider owns (design §7)."""

    def __init__(self, token: str, name: str) -> None:
        super().__init__(f"the claim {name!r} is reserved on the {token} and cannot be set")
        self.token = token
        self.name = name


class BindingNotDeclared(WorkflowRuntimeError):
    """A workflow used a binding it did not declare (Kinde: a runtime error)."""

    def __init__(self, binding: str) -> None:
        super().__init__(f"the binding {binding!r} is not declared in the workflow settings")
        self.binding = binding


class ManagementAPICallFailed(WorkflowRuntimeError):
    """A Management API call from a workflow failed; ``status`` is None without a response."""

    def __init__(self, endpoint: str, message: str, status: int | None = None) -> None:
        where = f"{endpoint} ({status})" if status is not None else endpoint
        super().__init__(f"Management API {where}: {message}")
        self.endpoint = endpoint
        self.status = status


class ManagementAPINotFound(ManagementAPICallFailed):
    """404 from the Management API: design §7 treats it as "nothing to add" for orgs and users."""


class TokenTooLarge(ClaimflowError):
    """The token cannot be brought under its size budget even with the smallest claim forms."""

    def __init__(self, token: str, size: int, budget: int) -> None:
        super().__init__(f"{token} would be {size} bytes, over its budget of {budget}")
        self.token = token
        self.size = size
        self.budget = budget


class InvalidBillingClaim(ClaimflowError):
    """A billing claim (or the Management API answer it is built from) is malformed.

    ``part`` names the member at fault (``entitlements``, ``agreements``, ``features``, ...), so
    a workflow can say which Management API call answered badly and a resource server which
    claim member made the token invalid.
    """

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message


class ConfigurationError(ClaimflowError):
    """A deployment setting cannot work; ``str(exc)`` is one or two lines saying what to fix."""


class SecretKeyMismatch(ConfigurationError, ValueError):
    """The secret key is not the one the stored private keys and secrets were encrypted with."""
