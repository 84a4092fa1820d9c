"""claimflow: an OpenID Connect provider whose tokens carry what the organization has paid for.

The package root is lazy (PEP 562 ``__getattr__``): ``create_app``, ``Services``,
``build_services`` and ``Settings`` are imported on first use, so ``import claimflow.resource``
or ``import claimflow.claims`` in an API that only verifies tokens loads none of the server
(no FastAPI, SQLAlchemy or Redis).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from claimflow.errors import (
    ClaimflowError,
    ManagementAPIError,
    OAuthError,
    WorkflowError,
)

if TYPE_CHECKING:
    from claimflow.app import create_app
    from claimflow.services import Services, build_services
    from claimflow.settings import Settings

_LAZY = {
    "Services": "claimflow.services",
    "Settings": "claimflow.settings",
    "build_services": "claimflow.services",
    "create_app": "claimflow.app",
}
"""Public names that live in the server's modules: each is imported when first asked for."""

__all__ = [
    "ClaimflowError",
    "ManagementAPIError",
    "OAuthError",
    "Services",
    "Settings",
    "WorkflowError",
    "build_services",
    "create_app",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claimflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
