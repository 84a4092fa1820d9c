"""What every Management API route shares: input types that refuse hostile values, and the
wire format real Kinde clients depend on (design §7).

Codes and ids are restricted to ``[A-Za-z0-9_.-]`` so they are safe in a URL path and a query
string without escaping surprises; free text refuses control characters and lone surrogates
(PostgreSQL rejects NUL bytes, and an unencodable string must be a 400, not a 500).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from claimflow.errors import InvalidRequest

CODE_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
"""Codes and ids: plan, feature and organization codes, user, customer and agreement ids."""

MAX_PAGE_SIZE = 500
"""Kinde's documented maximum ``page_size`` (api-rate-limits page)."""

DEFAULT_PAGE_SIZE = 10
MAX_AMOUNT = 10**15
"""Money and limits are BigInteger columns; refuse what could overflow them on PostgreSQL."""


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


def is_email(value: str) -> bool:
    """Shape only (one ``@``, a dotted domain, printable, no spaces); delivery proves the rest."""
    local, at, domain = value.partition("@")
    return bool(
        at and local and "." in domain and "@" not in domain and value.isprintable()
    ) and not any(c.isspace() for c in value)


def _email(value: str) -> str:
    if not is_email(value):
        raise ValueError("is not an email address")
    return value


Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=64)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_printable),
]
OptionalText = Annotated[str, StringConstraints(max_length=255), AfterValidator(_printable)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=320), AfterValidator(_email)
]
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
StrictModel = ConfigDict(strict=True, str_max_length=10_000)

CodeQuery = Annotated[str, Query(pattern=CODE_PATTERN, max_length=64)]
CodePath = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]
PageSize = Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)]
OptionalCodeQuery = Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)]


def iso(value: datetime | None) -> str | None:
    """An RFC 3339 date-time with an explicit offset (``Z`` for UTC), as Kinde's SDKs expect."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    """Drop absent values: Kinde's schemas declare most fields non-nullable, so omit, not null."""
    return {key: value for key, value in values.items() if value is not None}


def expansions(expand: str | None, allowed: Sequence[str]) -> frozenset[str]:
    """Parse Kinde's comma-separated ``expand`` and refuse values the operation does not know."""
    if not expand:
        return frozenset()
    wanted = frozenset(part.strip() for part in expand.split(",") if part.strip())
    unknown = wanted - set(allowed)
    if unknown:
        raise InvalidRequest(
            f"expand accepts {', '.join(allowed)}; got {', '.join(sorted(unknown))}.",
            "EXPAND_INVALID",
        )
    return wanted


Item = TypeVar("Item")


def cursor_page(
    items: Sequence[Item],
    key: Callable[[Item], str],
    *,
    page_size: int | None,
    starting_after: str | None,
    ending_before: str | None,
) -> tuple[list[Item], bool]:
    """Kinde's billing paging: a page after or before an item id, and whether more exist.

    ``starting_after`` gives the items after that id; ``ending_before`` the items just before
    it; ``has_more`` says whether more exist in the direction of travel. An unknown cursor is a
    400, not an empty page, so a client never mistakes a typo for "no more data".
    """
    if starting_after is not None and ending_before is not None:
        raise InvalidRequest("Use starting_after or ending_before, not both.", "PAGINATION_INVALID")
    size = page_size or DEFAULT_PAGE_SIZE
    ids = [key(item) for item in items]
    if ending_before is not None:
        if ending_before not in ids:
            raise InvalidRequest("ending_before is not an id in this list.", "PAGINATION_INVALID")
        end = ids.index(ending_before)
        start = max(0, end - size)
        return list(items[start:end]), start > 0
    start = 0
    if starting_after is not None:
        if starting_after not in ids:
            raise InvalidRequest("starting_after is not an id in this list.", "PAGINATION_INVALID")
        start = ids.index(starting_after) + 1
    page = list(items[start : start + size])
    return page, start + size < len(items)


def next_token_page(
    rows: Sequence[Item], size: int, key: Callable[[Item], str]
) -> tuple[Sequence[Item], dict[str, str]]:
    """Kinde's ``next_token`` paging, given ``size + 1`` rows read after the cursor.

    The extra row only shows that more exist; ``next_token`` is then the key of the page's last
    item, where the next request continues. Returns the page and the ``next_token`` member of
    the body (empty on the last page).
    """
    page = rows[:size]
    return page, ({"next_token": key(page[-1])} if len(rows) > size else {})


OK = {"code": "OK", "message": "Success"}
"""Kinde's ``success_response``."""
