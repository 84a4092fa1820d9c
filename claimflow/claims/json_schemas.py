"""The JSON Schemas (draft 2020-12) of the billing claim forms, shipped with the package.

``org_billing.full``, ``billingDetails.full``, ``billing.compact`` and ``billing.reference``; the
issuer publishes them at ``/schemas/claims/{name}.json`` so services can validate what they read.
They are package data, read once on first use.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def claim_schemas() -> dict[str, dict[str, Any]]:
    """Every claim form's schema by name (the file name without ``.json``)."""
    folder = files("claimflow.claims") / "schemas"
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


def claim_schema(name: str) -> dict[str, Any] | None:
    """The schema called ``name`` (e.g. ``billing.compact``), or ``None`` when there is none."""
    return claim_schemas().get(name)
