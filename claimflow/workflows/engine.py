"""The workflow engine: runs the enabled workflows of a trigger and merges their claims.

This module is the seam the token endpoint calls (``run_tokens_generation``); the registry,
bindings, runner and run log live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from claimflow.workflows.event import TokensGenerationEvent

ClaimForms = tuple[Any, ...]
"""A custom claim's values, preferred first: e.g. (full, compact, reference) for org_billing.

The token size budget (``claimflow.tokens.budget``) takes the first form of every claim and steps
the largest claims down to their next form until the token fits."""


@dataclass(frozen=True, slots=True)
class TokenCustomClaims:
    """Custom claims the workflows set, per token, each with its fallback forms."""

    access_token: dict[str, ClaimForms] = field(default_factory=dict)
    id_token: dict[str, ClaimForms] = field(default_factory=dict)


class WorkflowEngine:
    """Runs ``user:tokens_generation`` workflows; with none enabled, tokens get no custom claims."""

    async def run_tokens_generation(self, event: TokensGenerationEvent) -> TokenCustomClaims:
        return TokenCustomClaims()
