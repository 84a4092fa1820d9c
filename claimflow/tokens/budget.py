"""The token size budget: keep encoded JWTs under a configured size (default 4096 bytes).

A token travels in ``Authorization`` headers and cookies, where about 4 KB is the practical
ceiling. Custom claims come with fallback forms (full, compact, reference); we start from every
claim's preferred form and, while the encoded token is over budget, step the claim whose current
form is largest down to its next form. The size is computed exactly without signing: a JWS
compact serialisation is ``b64(header).b64(payload).b64(signature)`` (RFC 7515 §7.1) and the
signature length depends only on the algorithm.

Why the payload is assembled here as bytes: a billing claim is most of a token, and its JSON
does not change between sign-ins. ``EncodedJSON`` carries a value with its compact encoding,
made once (per cache load for the billing workflows); ``fit_payload`` joins the encodings of the
base claims and the chosen forms into exactly the bytes ``json.dumps`` of the whole claim set
would give, so the size is a sum of lengths and the signer needs no second serialisation.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claimflow.errors import TokenTooLarge

SIGNATURE_BYTES = {"RS256": 256, "ES256": 64, "EdDSA": 64}


def _b64_len(raw_len: int) -> int:
    """Length of unpadded base64url of ``raw_len`` bytes."""
    return (4 * raw_len + 2) // 3


def _json_bytes(value: Any) -> bytes:
    # PyJWT serialises with these separators; sizes here match what it signs.
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class EncodedJSON:
    """A claim value and its compact JSON encoding, made once when the value is built.

    The encoding is a snapshot: the value must not be changed afterwards (the billing cache
    shares one instance between sign-ins, so it never is). A NaN or infinity is refused here,
    because no JWT verifier could read it back (RFC 8259 §6).
    """

    __slots__ = ("encoded", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.encoded = json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")

    def __repr__(self) -> str:
        return f"EncodedJSON({self.value!r})"


def encoded_size(header: Mapping[str, Any], claims: Mapping[str, Any], algorithm: str) -> int:
    """The length of the compact JWS that signing ``claims`` with ``algorithm`` produces."""
    return _jws_overhead(header, algorithm) + _b64_len(len(_json_bytes(claims)))


def _jws_overhead(header: Mapping[str, Any], algorithm: str) -> int:
    """Everything of the compact JWS but the payload: header, two dots, signature."""
    return _overhead_of(tuple(header.items()), algorithm)


@functools.lru_cache(maxsize=64)
def _overhead_of(header: tuple[tuple[str, Any], ...], algorithm: str) -> int:
    """``_jws_overhead`` of a header given as items: one per signing key and ``typ``, so it
    is computed once per key rather than on every token."""
    header_len = _b64_len(len(_json_bytes(dict(header))))
    return header_len + 2 + _b64_len(SIGNATURE_BYTES[algorithm])


@functools.lru_cache(maxsize=1024)
def _member_name(name: str) -> bytes:
    """``"name":`` as the payload's JSON writes it (a workflow sets the same names each time)."""
    return json.dumps(name).encode("utf-8") + b":"


class FitMemo:
    """The budget's decisions for one set of custom claims that never changes, kept with it.

    Every warm token of an organization's API key carries the claims of one billing cache entry
    (the workflow engine's settled run), and the budget would step the same forms down to the
    same level each time. The decision depends only on those forms and on lengths: the JWS
    header and signature, ``max_bytes``, the base claims' JSON length and which custom names take
    part, so ``fit_payload`` keys it by exactly these and a hit is what a fresh fit would choose.
    Anything else (a new signing key, a longer ``client_id``, another budget) is fitted afresh.
    The owner's promise: one memo per unchanging claim set; a changed set comes with a new memo,
    as a billing change comes with a new cache entry. Bounded, as base lengths vary."""

    __slots__ = ("_fits",)

    LIMIT = 64

    def __init__(self) -> None:
        self._fits: dict[tuple[Any, ...], tuple[tuple[int, ...], bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._fits)


@dataclass(frozen=True, slots=True)
class FittedClaims:
    """The claims chosen for a token and their JSON payload, byte for byte what gets signed."""

    claims: dict[str, Any]
    payload: bytes
    size: int
    """Length of the compact JWS once signed."""


def fit_payload(
    token: str,
    header: Mapping[str, Any],
    base_claims: Mapping[str, Any],
    custom: Mapping[str, Sequence[Any]],
    max_bytes: int,
    algorithm: str,
    encoded: Mapping[str, Sequence[bytes]] | None = None,
    memo: FitMemo | None = None,
) -> FittedClaims:
    """Base claims plus the richest forms of ``custom`` that keep the token within ``max_bytes``.

    ``encoded`` may give the compact JSON of some claims' forms (as ``EncodedJSON`` makes it);
    the others are encoded here, once. A custom claim named like a base claim is left out: base
    claims always win. Raises ``TokenTooLarge`` when even every claim's last form does not fit.
    ``memo`` keeps the decision for the next token with the same custom claims (``FitMemo``).
    """
    base_json = _json_bytes(dict(base_claims))
    if memo is None:
        return _fit(token, header, base_claims, base_json, custom, max_bytes, algorithm, encoded)[0]
    names = tuple([n for n, forms in custom.items() if forms and n not in base_claims])
    key = (names, _jws_overhead(header, algorithm), max_bytes, len(base_json))
    known = memo._fits.get(key)
    if known is None:
        fitted, levels = _fit(
            token, header, base_claims, base_json, custom, max_bytes, algorithm, encoded
        )
        if len(memo._fits) >= memo.LIMIT:
            memo._fits.clear()
        # What follows the base claims' members in the payload: the same for any base claims
        # of this length (the comma, if any, and the chosen members).
        memo._fits[key] = (levels, fitted.payload[len(base_json) - 1 : -1], fitted.size)
        return fitted
    levels, members, size = known
    claims = dict(base_claims)
    for name, index in zip(names, levels, strict=True):
        claims[name] = custom[name][index]
    return FittedClaims(claims, b"".join((base_json[:-1], members, b"}")), size)


def _fit(
    token: str,
    header: Mapping[str, Any],
    base_claims: Mapping[str, Any],
    base_json: bytes,
    custom: Mapping[str, Sequence[Any]],
    max_bytes: int,
    algorithm: str,
    encoded: Mapping[str, Sequence[bytes]] | None,
) -> tuple[FittedClaims, tuple[int, ...]]:
    """``fit_payload`` made afresh, with the index of the form chosen for each custom claim
    that took part (in ``custom``'s order)."""
    parts: dict[str, tuple[bytes, list[bytes]]] = {}
    for name, forms in custom.items():
        if not forms or name in base_claims:
            continue
        known = (encoded or {}).get(name)
        texts = list(known) if known is not None else [_json_bytes(f) for f in forms]
        parts[name] = (_member_name(name), texts)
    level = dict.fromkeys(parts, 0)
    fixed = len(base_json) + sum(len(key) + 1 for key, _ in parts.values())
    if parts and len(base_json) == 2:
        fixed -= 1  # ``{}``: the first custom member needs no comma

    overhead = _jws_overhead(header, algorithm)

    def jws_size() -> int:
        return overhead + _b64_len(fixed + sum(len(parts[n][1][i]) for n, i in level.items()))

    size = jws_size()
    while size > max_bytes:
        reducible = [n for n, i in level.items() if i + 1 < len(parts[n][1])]
        if not reducible:
            raise TokenTooLarge(token, size, max_bytes)
        largest = max(reducible, key=lambda n: len(parts[n][1][level[n]]))
        level[largest] += 1
        size = jws_size()

    claims = dict(base_claims)
    members = []
    for name, index in level.items():
        claims[name] = custom[name][index]
        members.append(parts[name][0] + parts[name][1][index])
    levels = tuple(level.values())
    if not members:
        return FittedClaims(claims, base_json, size), levels
    joiner = b"," if len(base_json) > 2 else b""
    payload = base_json[:-1] + joiner + b",".join(members) + b"}"
    return FittedClaims(claims, payload, size), levels


def fit_to_budget(
    token: str,
    header: Mapping[str, Any],
    base_claims: Mapping[str, Any],
    custom: Mapping[str, Sequence[Any]],
    max_bytes: int,
    algorithm: str,
) -> dict[str, Any]:
    """The claims of ``fit_payload`` (for callers that sign a dict, or only report sizes)."""
    return fit_payload(token, header, base_claims, custom, max_bytes, algorithm).claims
