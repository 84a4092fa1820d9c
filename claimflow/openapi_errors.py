"""The error statuses each operation of ``/openapi.json`` answers, read from the code serving it.

FastAPI documents an operation's success and a ``422`` we never send (request validation answers
``400`` with Kinde's envelope, ``claimflow/management/errors.py``). A client generated from the
document, or a conformance checker (schemathesis's ``status_code_conformance``), needs the
statuses the server really answers, so they are derived here rather than written per route:

- **Kinde's APIs** (Management API, Account API): each route's errors are ``ManagementAPIError``
  subclasses, and each carries its status (``claimflow/errors.py``). The statuses are read from
  the ``raise`` statements of the route, of its dependencies (the scope guard: 401, 403) and of
  every claimflow function they call, transitively (``ast``, once, when the document is built).
  On top: ``400`` on every operation (a parameter or body the API refuses, or a ``Host`` that is
  not the issuer's), ``413`` where a body is taken (``BodyLimit``) and ``503`` (the store down,
  ``claimflow/unavailable.py``). Every error has Kinde's schema ``error_response``.
- **The OAuth and OIDC endpoints** answer RFC 6749 §5.2 errors, HTML pages and redirects from
  code paths a reader should see at once, so ``PROTOCOL_RESPONSES`` lists them by hand, each with
  the rule it follows; an operation missing from the table gets only the statuses every
  endpoint can answer (400, 503) and fails a test, so a new endpoint cannot go undocumented.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from claimflow.errors import ManagementAPIError
from claimflow.middleware import speaks_kinde_envelope

Body = Literal["envelope", "oauth", "html", "none"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One documented response: why it happens and what its body is."""

    description: str
    body: Body = "oauth"
    headers: tuple[str, ...] = ()


KINDE_STATUSES: Mapping[int, str] = {
    400: "Invalid request: a parameter or body refused, or a Host that is not the issuer's.",
    401: "No bearer token, or an invalid, expired or revoked one (or its application is gone).",
    403: "The token lacks the operation's scope, or may not grant or change this.",
    404: "No such resource.",
    409: "A resource with this key, email or owner already exists.",
    413: "The request body is over the size limit.",
    503: "The store is unavailable; retry after Retry-After seconds.",
}
"""What each status means on Kinde's APIs (the body is always Kinde's envelope there)."""

_TRANSPORT_400 = Outcome("Invalid request, or a Host that is not the issuer's (RFC 6749 §5.2).")
_TOO_LARGE = Outcome("The request body is over the size limit.")
_STORE_DOWN = Outcome("The store is unavailable (temporarily_unavailable); retry later.")
_REDIRECT = Outcome(
    "Back to the client's redirect_uri with a code or an error (RFC 6749 §4.1.2), or to the "
    "next step of sign-in.",
    "none",
    ("Location",),
)
_ERROR_PAGE = Outcome(
    "An error page: the client or redirect_uri cannot be trusted, so the user is told instead "
    "of redirected (RFC 6749 §4.1.2.1), or the form expired.",
    "html",
)
_BEARER_401 = Outcome(
    'No valid access token (RFC 6750 §3: WWW-Authenticate: Bearer error="invalid_token").',
    "oauth",
    ("WWW-Authenticate",),
)
_CLIENT_401 = Outcome(
    "Client authentication failed: invalid_client (RFC 6749 §5.2).", "oauth", ("WWW-Authenticate",)
)

PROTOCOL_RESPONSES: Mapping[tuple[str, str], Mapping[int, Outcome]] = {
    ("get", "/.well-known/openid-configuration"): {400: _TRANSPORT_400},
    ("get", "/.well-known/jwks.json"): {400: _TRANSPORT_400, 503: _STORE_DOWN},
    ("get", "/.well-known/jwks"): {400: _TRANSPORT_400, 503: _STORE_DOWN},
    ("get", "/oauth2/auth"): {302: _REDIRECT, 400: _ERROR_PAGE, 503: _STORE_DOWN},
    ("post", "/oauth2/auth/login"): {
        302: _REDIRECT,
        400: _ERROR_PAGE,
        401: Outcome("Wrong email or password: the login page again.", "html"),
        403: Outcome("A post-authentication workflow denied the sign-in.", "html"),
        413: _TOO_LARGE,
        429: Outcome("Too many failed sign-ins: locked out for Retry-After seconds.", "html"),
        503: _STORE_DOWN,
    },
    ("post", "/oauth2/auth/organization"): {
        302: _REDIRECT,
        400: _ERROR_PAGE,
        413: _TOO_LARGE,
        503: _STORE_DOWN,
    },
    ("post", "/oauth2/token"): {
        400: Outcome(
            "invalid_request, invalid_grant, invalid_scope, invalid_target, "
            "unsupported_grant_type or access_denied (RFC 6749 §5.2, RFC 8707 §2)."
        ),
        401: _CLIENT_401,
        413: _TOO_LARGE,
        503: Outcome(
            "Nothing issued, retry: workflow_failed, token_too_large or temporarily_unavailable."
        ),
    },
    ("get", "/oauth2/userinfo"): {400: _TRANSPORT_400, 401: _BEARER_401, 503: _STORE_DOWN},
    ("post", "/oauth2/userinfo"): {
        400: _TRANSPORT_400,
        401: _BEARER_401,
        413: _TOO_LARGE,
        503: _STORE_DOWN,
    },
    ("get", "/oauth2/v2/user_profile"): {400: _TRANSPORT_400, 401: _BEARER_401, 503: _STORE_DOWN},
    ("post", "/oauth2/introspect"): {
        400: Outcome("invalid_request (RFC 7662 §2.3)."),
        401: _CLIENT_401,
        413: _TOO_LARGE,
        503: _STORE_DOWN,
    },
    ("post", "/oauth2/revoke"): {
        400: Outcome(
            "invalid_request: no token, a repeated or malformed parameter (RFC 7009 §2.1)."
        ),
        401: _CLIENT_401,
        413: _TOO_LARGE,
        503: _STORE_DOWN,
    },
    ("get", "/logout"): {
        302: _REDIRECT,
        400: Outcome(
            "An id_token_hint or post_logout_redirect_uri refused (an error page).", "html"
        ),
        503: _STORE_DOWN,
    },
    ("post", "/logout"): {
        302: _REDIRECT,
        400: Outcome("The confirmation form expired or was forged (an error page).", "html"),
        413: _TOO_LARGE,
        503: _STORE_DOWN,
    },
    ("get", "/schemas/claims"): {400: _TRANSPORT_400},
    ("get", "/schemas/claims/{name}.json"): {
        400: _TRANSPORT_400,
        404: Outcome("No billing claim form of this name."),
    },
    ("get", "/oauth2/billing/{customer_id}"): {
        400: _TRANSPORT_400,
        401: _BEARER_401,
        403: Outcome(
            "insufficient_scope: the token does not cover that customer (RFC 6750 §3.1).",
            "oauth",
            ("WWW-Authenticate",),
        ),
        404: Outcome("No enabled workflow sets the billing claim."),
        503: Outcome("The billing workflow failed, or the store is unavailable; retry later."),
    },
    ("post", "/webhooks/kinde"): {
        400: Outcome("The body is not a webhook JWT.", "envelope"),
        401: Outcome("The webhook failed verification: key, signature, issuer or age.", "envelope"),
        404: Outcome("Kinde's webhooks are not received here (no webhook domain set).", "envelope"),
        413: Outcome("The request body is over the size limit.", "envelope"),
        503: Outcome("Kinde's key set or the store is unreachable; Kinde retries.", "envelope"),
    },
    ("get", "/healthz"): {400: _TRANSPORT_400},
    ("get", "/readyz"): {
        400: _TRANSPORT_400,
        503: Outcome("Not ready: the database, Redis or the signing key is missing.", "none"),
    },
    ("get", "/metrics"): {400: _TRANSPORT_400},
}
"""Error and redirect responses of the OAuth and OIDC endpoints (and the operational ones)."""

UNLISTED: Mapping[int, Outcome] = {400: _TRANSPORT_400, 503: _STORE_DOWN}
"""What an endpoint missing from ``PROTOCOL_RESPONSES`` gets (a test fails until it is listed)."""

ERROR_SCHEMAS: dict[str, Any] = {
    "error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Error code."},
            "message": {"type": "string", "description": "Error message."},
        },
    },
    "error_response": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/components/schemas/error"},
            }
        },
        "description": "Kinde's error envelope.",
    },
    "oauth_error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
        },
        "description": "An OAuth 2.0 error response (RFC 6749 §5.2).",
    },
}
"""Kinde's ``error`` and ``error_response`` (its spec's names) and RFC 6749 §5.2's error."""

# -- deriving a Kinde route's statuses from its code --------------------------------------------


def _resolve(node: ast.expr, namespace: Mapping[str, Any]) -> Any:
    """The object a name or dotted attribute in a function's source refers to, if static."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        if isinstance(base, ModuleType | type):
            return getattr(base, node.attr, None)
    return None


def _ours(target: Any) -> bool:
    return isinstance(target, FunctionType) and target.__module__.startswith("claimflow.")


@functools.cache
def _definitions(filename: str) -> dict[int, ast.AST]:
    """A module's function definitions by first line (the first decorator's, as in ``co_firstlineno``)."""
    try:
        with open(filename, encoding="utf-8") as source:
            module = ast.parse(source.read(), filename)
    except (OSError, SyntaxError):
        return {}
    return {
        min([node.lineno, *(d.lineno for d in node.decorator_list)]): node
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@functools.cache
def _direct(function: FunctionType) -> tuple[frozenset[int], tuple[FunctionType, ...]]:
    """The statuses ``function`` raises itself, and the claimflow functions it calls.

    Read once per function, from its module parsed once: a raise of a ``ManagementAPIError``
    subclass by name, and calls by name or dotted module/class attribute. A call through an
    object (``services.db.connect()``) is not followed; what the store's absence causes is the
    ``503`` every operation lists anyway. An error a caller catches still counts: the document
    may list a status a route cannot reach, never miss one it can.
    """
    tree = _definitions(function.__code__.co_filename).get(function.__code__.co_firstlineno)
    if tree is None:
        return frozenset(), ()
    statuses: set[int] = set()
    callees: list[FunctionType] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            raised = _resolve(node.exc.func, function.__globals__)
            if isinstance(raised, type) and issubclass(raised, ManagementAPIError):
                statuses.add(raised.status_code)
        elif isinstance(node, ast.Call):
            called = _resolve(node.func, function.__globals__)
            if _ours(called):
                callees.append(called)
    return frozenset(statuses), tuple(callees)


def raised_statuses(function: Callable[..., Any], seen: set[Any] | None = None) -> set[int]:
    """Statuses of the ``ManagementAPIError``s ``function`` and what it calls may raise."""
    seen = set() if seen is None else seen
    target = inspect.unwrap(function)
    if not isinstance(target, FunctionType):
        target = vars(type(function)).get("__call__")  # a callable instance (ScopeGuard)
    statuses: set[int] = set()
    pending = [target] if _ours(target) else []
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        raised, callees = _direct(current)
        statuses |= raised
        pending.extend(callees)
    return statuses


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _dependency_calls(dependency)


@dataclass(frozen=True, slots=True)
class Served:
    """What serves one operation: the endpoint function and its dependencies."""

    endpoint: Callable[..., Any]
    dependant: Dependant


def served_operations(routes: list[BaseRoute]) -> dict[tuple[str, str], Served]:
    """``(method, path)`` → what serves it, for every API route (included routers flattened)."""
    served = {}
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path_format and context.methods:
            for method in context.methods:
                served[(method.lower(), context.path_format)] = Served(
                    route.endpoint, route.dependant
                )
    return served


def kinde_statuses(served: Served, operation: Mapping[str, Any]) -> set[int]:
    """The error statuses of one Management or Account API operation."""
    seen: set[Any] = set()
    statuses = raised_statuses(served.endpoint, seen)
    for call in _dependency_calls(served.dependant):
        statuses |= raised_statuses(call, seen)
    statuses |= {400, 503}
    if "requestBody" in operation:
        statuses.add(413)
    return statuses


# -- writing the document -------------------------------------------------------------------------


def _response(outcome: Outcome, body: Body) -> dict[str, Any]:
    response: dict[str, Any] = {"description": outcome.description}
    schema = {"envelope": "error_response", "oauth": "oauth_error"}.get(body)
    if schema is not None:
        ref = {"$ref": f"#/components/schemas/{schema}"}
        response["content"] = {"application/json": {"schema": ref}}
    elif body == "html":
        response["content"] = {"text/html": {"schema": {"type": "string"}}}
    if outcome.headers:
        response["headers"] = {name: {"schema": {"type": "string"}} for name in outcome.headers}
    return response


def _kinde_outcome(status: int) -> Outcome:
    headers = ("WWW-Authenticate",) if status == 401 else ("Retry-After",) if status == 503 else ()
    return Outcome(KINDE_STATUSES.get(status, "Refused."), "envelope", headers)


def document_errors(document: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Replace FastAPI's ``422`` with the statuses each operation really answers."""
    served = served_operations(routes)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if speaks_kinde_envelope(path) and (method, path) not in PROTOCOL_RESPONSES:
                statuses = kinde_statuses(served[(method, path)], operation)
                outcomes = {status: _kinde_outcome(status) for status in statuses}
            else:
                outcomes = dict(PROTOCOL_RESPONSES.get((method, path), UNLISTED))
            for status, outcome in sorted(outcomes.items()):
                responses[str(status)] = _response(outcome, outcome.body)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ERROR_SCHEMAS.items():
        schemas.setdefault(name, schema)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) carry the derived error statuses.

    FastAPI rebuilds its document when routes change and caches it otherwise; each document it
    builds is completed once.
    """
    generate = app.openapi
    completed: list[int] = []

    def openapi() -> dict[str, Any]:
        document = generate()
        if completed != [id(document)]:
            document_errors(document, app.routes)
            completed[:] = [id(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
