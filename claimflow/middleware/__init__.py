"""The ASGI layers around the application, each a small class with one job (``app.py`` lists
them in order, outermost first)."""

from claimflow.middleware._responses import speaks_kinde_envelope
from claimflow.middleware.body_limit import BodyLimit
from claimflow.middleware.cors import Cors
from claimflow.middleware.direct_routes import DirectRoutes
from claimflow.middleware.host_check import HostCheck
from claimflow.middleware.response_headers import DefaultResponseHeaders

__all__ = [
    "BodyLimit",
    "Cors",
    "DefaultResponseHeaders",
    "DirectRoutes",
    "HostCheck",
    "speaks_kinde_envelope",
]
