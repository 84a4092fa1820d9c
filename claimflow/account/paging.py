"""The Account API's paging: ``page_size`` and ``starting_after`` in, ``metadata`` out.

Kinde's Account API answers ``{"data": {...}, "metadata": {"has_more",
"next_page_starting_after"}}`` and its clients page on by passing ``next_page_starting_after`` back
as ``starting_after`` until ``has_more`` is false (Kinde's js-utils ``callAccountApiPaginated``,
kinde-python-sdk ``Entitlements.get_all_entitlements``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

from claimflow.errors import InvalidRequest
from claimflow.management.wire import CODE_PATTERN, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

Item = TypeVar("Item")

AccountPageSize = Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)]
StartingAfter = Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)]


def account_page(
    items: Sequence[Item],
    key: Callable[[Item], str],
    *,
    page_size: int | None,
    starting_after: str | None,
) -> tuple[list[Item], dict[str, Any]]:
    """One page after the item ``starting_after`` and its ``metadata``.

    An id that is not in the list is a 400, so a client never mistakes a stale cursor for the end.
    """
    size = page_size or DEFAULT_PAGE_SIZE
    ids = [key(item) for item in items]
    start = 0
    if starting_after is not None:
        if starting_after not in ids:
            raise InvalidRequest("starting_after is not an id in this list.", "PAGINATION_INVALID")
        start = ids.index(starting_after) + 1
    page = list(items[start : start + size])
    has_more = start + size < len(items)
    metadata: dict[str, Any] = {"has_more": has_more}
    if has_more:
        metadata["next_page_starting_after"] = key(page[-1])
    return page, metadata
