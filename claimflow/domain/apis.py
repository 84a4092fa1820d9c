"""Registered APIs: the audiences tokens may be issued for, and who may ask for them.

Kinde's model ("Register and manage APIs", docs.kinde.com/developer-tools/your-apis/): an API
has an ``audience`` (commonly its URL, RFC 8707's resource indicator), scopes of its own, and
a set of applications authorized to request tokens for it; an M2M application is further granted
some of the API's scopes, which its client-credentials tokens for that API carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ApiScope:
    id: str
    api_id: str
    key: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Api:
    id: str
    name: str
    audience: str
    created_on: datetime
    scopes: tuple[ApiScope, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiAuthorization:
    """An application authorized for an API, and the keys of the API scopes granted to it."""

    api: Api
    client_id: str
    scope_keys: tuple[str, ...] = ()
