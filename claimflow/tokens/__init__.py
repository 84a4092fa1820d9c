"""Token material: signing keys and rotation, claim assembly, the size budget."""

from claimflow.tokens.keys import KeyManager, SigningKey

__all__ = ["KeyManager", "SigningKey"]
