"""Token material: signing keys and rotation, claim assembly, the size budget."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claimflow.tokens.keys import KeyManager, SigningKey

__all__ = ["KeyManager", "SigningKey"]


def __getattr__(name: str) -> Any:
    """PEP 562: keys (and the store under them) load on first use, so the claim-size budget and
    the reserved names import without the database layer (a workflow runner needs only those)."""
    if name in __all__:
        from claimflow.tokens import keys

        return getattr(keys, name)
    raise AttributeError(f"module 'claimflow.tokens' has no attribute {name!r}")
