"""Kinde's feature flags and properties: types, values, override levels, the token claim.

A flag has a type (Kinde's Management API says ``str``, ``int`` or ``bool``), a default value and
the deepest level it may be overridden at (``allow_override_level``: ``env``, ``org`` or ``usr``;
each level allows those above it, so ``usr`` also allows an organization override). Values cross
Kinde's API as strings (``default_value``, ``?value=``) and are parsed here, once, by the flag's
type; a value that does not parse is refused at write time, never at sign-in.

The access token's ``feature_flags`` claim uses Kinde's short codes "to keep the token size down"
(https://docs.kinde.com/build/tokens/about-access-tokens/): ``{"<key>": {"t": "b"|"i"|"s", "v":
<value>}}``. A user's value is their own override, else their organization's, else the default.
Because the claim is a base claim that the size budget cannot shrink, its largest possible size is
bounded when flags and overrides are written (``worst_case_claim_bytes``), not found at sign-in.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class FlagType(enum.StrEnum):
    """The Management API's names of a flag's type."""

    STRING = "str"
    INTEGER = "int"
    BOOLEAN = "bool"

    @property
    def claim_code(self) -> str:
        """The token claim's ``t``: Kinde's one-letter codes."""
        return {"str": "s", "int": "i", "bool": "b"}[self.value]

    @property
    def account_name(self) -> str:
        """The Account API's ``type`` (js-utils ``TokenFeatureFlag``: string/integer/boolean)."""
        return {"str": "string", "int": "integer", "bool": "boolean"}[self.value]


class OverrideLevel(enum.StrEnum):
    """Where a flag may be overridden; each level includes the ones before it."""

    ENVIRONMENT = "env"
    ORGANIZATION = "org"
    USER = "usr"

    def allows(self, level: OverrideLevel) -> bool:
        order = list(OverrideLevel)
        return order.index(level) <= order.index(self)


FlagValue = str | int | bool

MAX_INTEGER = 2**53 - 1
"""Integers a JavaScript client reads back exactly (js-utils decodes the token with JSON.parse)."""

MAX_STRING_VALUE = 255

FEATURE_FLAGS_CLAIM_MAX_BYTES = 1024
"""The largest ``feature_flags`` claim (compact JSON) any token may carry. About a quarter of the
default 4096-byte access-token budget: flags are few and small, and the billing claim must keep
room to stay in its full form."""


def parse_value(flag_type: FlagType, raw: str) -> FlagValue:
    """A flag value from Kinde's string form; ``ValueError`` with the reason when it is not one.

    Booleans are ``true``/``false`` (any case), integers base-10 within ±2^53-1, strings up to
    255 printable characters.
    """
    if flag_type is FlagType.BOOLEAN:
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError("a bool flag's value is 'true' or 'false'")
        return lowered == "true"
    if flag_type is FlagType.INTEGER:
        text = raw.strip()
        if not text.lstrip("+-").isdigit() or not text.isascii() or len(text) > 20:
            raise ValueError("an int flag's value is a base-10 integer")
        number = int(text)
        if abs(number) > MAX_INTEGER:
            raise ValueError(f"an int flag's value is within ±{MAX_INTEGER}")
        return number
    if len(raw) > MAX_STRING_VALUE or not raw.isprintable():
        raise ValueError(f"a str flag's value is at most {MAX_STRING_VALUE} printable characters")
    return raw


def value_text(value: FlagValue) -> str:
    """Kinde's string form of a value (the Management API's ``value``/``default_value``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class FeatureFlag:
    id: str
    key: str
    name: str
    type: FlagType
    default_value: FlagValue
    allow_override_level: OverrideLevel
    description: str | None = None
    created_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResolvedFlag:
    """A flag as one user sees it: its value after the overrides that apply."""

    flag: FeatureFlag
    value: FlagValue

    def claim_entry(self) -> dict[str, FlagValue]:
        return {"t": self.flag.type.claim_code, "v": self.value}


def resolve(
    flag: FeatureFlag, org_value: FlagValue | None, user_value: FlagValue | None
) -> ResolvedFlag:
    """User override, else organization override, else the default — each only where allowed."""
    level = flag.allow_override_level
    if user_value is not None and level.allows(OverrideLevel.USER):
        return ResolvedFlag(flag, user_value)
    if org_value is not None and level.allows(OverrideLevel.ORGANIZATION):
        return ResolvedFlag(flag, org_value)
    return ResolvedFlag(flag, flag.default_value)


def feature_flags_claim(resolved: Iterable[ResolvedFlag]) -> dict[str, dict[str, FlagValue]]:
    """Kinde's ``feature_flags`` claim, in key order."""
    return {r.flag.key: r.claim_entry() for r in sorted(resolved, key=lambda r: r.flag.key)}


def claim_bytes(claim: dict[str, dict[str, FlagValue]]) -> int:
    return len(json.dumps(claim, separators=(",", ":")).encode("utf-8"))


def worst_case_claim_bytes(candidates: Iterable[tuple[FeatureFlag, FlagValue]]) -> int:
    """The size of the largest claim any user could get, given every value a flag can take.

    ``candidates`` are each flag's default and every override stored for it; the worst case
    picks, per flag, the value whose entry encodes longest.
    """
    longest: dict[str, ResolvedFlag] = {}
    for flag, value in candidates:
        option = ResolvedFlag(flag, value)
        current = longest.get(flag.key)
        if current is None or _entry_len(option) > _entry_len(current):
            longest[flag.key] = option
    return claim_bytes(feature_flags_claim(longest.values()))


def _entry_len(resolved: ResolvedFlag) -> int:
    return len(json.dumps(resolved.claim_entry(), separators=(",", ":")).encode("utf-8"))


class PropertyContext(enum.StrEnum):
    """What a Kinde property describes: a user, an organization or an application."""

    USER = "usr"
    ORGANIZATION = "org"
    APPLICATION = "app"


class PropertyType(enum.StrEnum):
    SINGLE_LINE_TEXT = "single_line_text"
    MULTI_LINE_TEXT = "multi_line_text"


@dataclass(frozen=True, slots=True)
class Property:
    """A property of Kinde's catalogue; users or organizations hold values of it by ``key``."""

    id: str
    key: str
    name: str
    type: PropertyType
    context: PropertyContext
    is_private: bool
    description: str | None = None
    category_id: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyValue:
    property: Property
    value: str | None
