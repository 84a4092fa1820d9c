"""Kinde's Account API for flags and properties: ``/account_api/v1/feature_flags`` and
``/account_api/v1/properties``.

The signed-in user's feature flags, each with the value they get in the token's organization
(the same resolution as the ``feature_flags`` claim, ``store/feature_flags.py``, but current as of
the request), as Kinde's SDKs read them with ``forceApi`` (js-utils ``hasFeatureFlags``, the
generated ``FeatureFlagsApi.get_feature_flags`` of kinde-python-sdk): ``{id, name, key, type,
value}`` with ``type`` one of ``string``, ``integer``, ``boolean`` and ``value`` a JSON value of
that type. Properties are the user's own (``context: usr``), ``{id, name, key, value}``, ``value``
null where the user holds none; a private one is left out (Kinde's ``is_private``: "whether the
property can be included in id and access tokens", https://docs.kinde.com/properties/work-with-properties/manage-properties/),
since the browser holding the token must not read by this door what its token may not carry.
Both page like the rest of the Account API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from claimflow.account.caller import SignedInUser
from claimflow.account.paging import AccountPageSize, StartingAfter, account_page
from claimflow.domain import PropertyContext
from claimflow.services import Services
from claimflow.store import feature_flags, properties

router = APIRouter(tags=["Account API"])


@router.get("/account_api/v1/feature_flags", summary="The signed-in user's feature flags")
async def get_feature_flags(
    request: Request,
    caller: SignedInUser,
    page_size: AccountPageSize = None,
    starting_after: StartingAfter = None,
) -> dict[str, Any]:
    services: Services = request.app.state.services
    async with services.db.connect() as conn:
        resolved = await feature_flags.resolved_flags(
            conn, user_id=caller.user_id, org_code=caller.org_code
        )
    page, metadata = account_page(
        resolved, lambda r: r.flag.id, page_size=page_size, starting_after=starting_after
    )
    items = [
        {
            "id": r.flag.id,
            "name": r.flag.name,
            "key": r.flag.key,
            "type": r.flag.type.account_name,
            "value": r.value,
        }
        for r in page
    ]
    return {"data": {"feature_flags": items}, "metadata": metadata}


@router.get("/account_api/v1/properties", summary="The signed-in user's properties")
async def get_properties(
    request: Request,
    caller: SignedInUser,
    page_size: AccountPageSize = None,
    starting_after: StartingAfter = None,
) -> dict[str, Any]:
    services: Services = request.app.state.services
    async with services.db.connect() as conn:
        held = [
            h
            for h in await properties.values_of(conn, PropertyContext.USER, caller.user_id)
            if not h.property.is_private
        ]
    page, metadata = account_page(
        held, lambda h: h.property.id, page_size=page_size, starting_after=starting_after
    )
    items = [
        {"id": h.property.id, "name": h.property.name, "key": h.property.key, "value": h.value}
        for h in page
    ]
    return {"data": {"properties": items}, "metadata": metadata}
