"""Kinde's ``feature_flags`` access-token claim of a user's tokens, read from the store.

https://docs.kinde.com/build/tokens/about-access-tokens/ : ``{"<key>": {"t": "b"|"i"|"s", "v":
<value>}}``, every flag with the value this user gets in the organization they sign in to (their
own override, else the organization's, else the default; ``domain/feature_flags.py``). Kinde's
SDKs read flags from here (js-utils ``getFlag``, kinde-python-sdk ``feature_flags.get_flag``).
The claim is the provider's (reserved: no workflow may set it) and its size is bounded when flags
are written, so it never pushes a token over its budget. Without flags there is no claim.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain.feature_flags import feature_flags_claim
from claimflow.store import feature_flags


async def feature_flags_claim_of(
    conn: AsyncConnection, *, user_id: str, org_code: str | None
) -> dict[str, Any]:
    """The claim's value (empty when no flag is defined): one query."""
    resolved = await feature_flags.resolved_flags(conn, user_id=user_id, org_code=org_code)
    return feature_flags_claim(resolved)
