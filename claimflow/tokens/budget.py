"""The token size budget: keep encoded JWTs under a configured size (default 4096 bytes).

A token travels in ``Authorization`` headers and cookies, where about 4 KB is the practical
ceiling. Custom claims come with fallback forms (full, compact, reference); we start from every
claim's preferred form and, while the encoded token is over budget, step the claim whose current
form is largest down to its next form. The size is computed exactly without signing: a JWS
compact serialisation is ``b64(header).b64(payload).b64(signature)`` and the signature length
depends only on the algorithm.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from claimflow.errors import TokenTooLarge

SIGNATURE_BYTES = {"RS256": 256, "ES256": 64, "EdDSA": 64}


def _b64_len(raw_len: int) -> int:
    """Length of unpadded base64url of ``raw_len`` bytes."""
    return (4 * raw_len + 2) // 3


def _json_bytes(value: Any) -> bytes:
    # PyJWT serialises with these separators; sizes here match what it signs.
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def encoded_size(header: Mapping[str, Any], claims: Mapping[str, Any], algorithm: str) -> int:
    """The length of the compact JWS that signing ``claims`` with ``algorithm`` produces."""
    header_len = len(base64.urlsafe_b64encode(_json_bytes(header)).rstrip(b"="))
    payload_len = _b64_len(len(_json_bytes(claims)))
    return header_len + 1 + payload_len + 1 + _b64_len(SIGNATURE_BYTES[algorithm])


def fit_to_budget(
    token: str,
    header: Mapping[str, Any],
    base_claims: Mapping[str, Any],
    custom: Mapping[str, tuple[Any, ...]],
    max_bytes: int,
    algorithm: str,
) -> dict[str, Any]:
    """Base claims plus the richest forms of ``custom`` that keep the token within ``max_bytes``.

    Raises ``TokenTooLarge`` when even every claim's last form does not fit.
    """
    level = {name: 0 for name, forms in custom.items() if forms}

    def build() -> dict[str, Any]:
        claims = dict(base_claims)
        for name, index in level.items():
            claims[name] = custom[name][index]
        return claims

    claims = build()
    size = encoded_size(header, claims, algorithm)
    while size > max_bytes:
        reducible = [name for name, index in level.items() if index + 1 < len(custom[name])]
        if not reducible:
            raise TokenTooLarge(token, size, max_bytes)
        largest = max(reducible, key=lambda n: len(_json_bytes(custom[n][level[n]])))
        level[largest] += 1
        claims = build()
        size = encoded_size(header, claims, algorithm)
    return claims
