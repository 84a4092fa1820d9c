"""claimflow: an OpenID Connect provider whose tokens carry what the organization has paid for."""

from claimflow.app import create_app
from claimflow.errors import (
    ClaimflowError,
    ManagementAPIError,
    OAuthError,
    WorkflowError,
)
from claimflow.services import Services, build_services
from claimflow.settings import Settings

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
