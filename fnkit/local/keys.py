"""The keys the local Auth signs user tokens with, published as a JWKS.

Supabase signs new projects' tokens with asymmetric JWT signing keys (ES256, with a `kid`) and
publishes the public halves at `/auth/v1/.well-known/jwks.json`; the runtime verifies tokens
against that document. The first key of the ring signs; every key is published, so a rotation
(add a key in front, keep the old one until its tokens expire) works as on Supabase.

`make dev` keeps its key in `.fnkit/auth/signing-key.pem`, so tokens survive a restart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["KeyRing", "SigningKey"]


@dataclass
class SigningKey:
    """One ES256 key and the `kid` its tokens carry."""

    kid: str
    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or secrets.token_hex(8), ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        """The public key as Supabase publishes it (`kty`, `crv`, `x`, `y`, `kid`, `alg`)."""
        import jwt

        public = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"]}


@dataclass
class KeyRing:
    """Signing keys, newest first: the first signs, all are published."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0

    def add_key(self, kid: str) -> SigningKey:
        """Add a key at the end: published at once, signing only once the keys before it go."""
        key = SigningKey.generate(kid)
        self.keys.append(key)
        return key

    def signing_key(self) -> SigningKey:
        if not self.keys:
            raise RuntimeError("the key ring has no signing key")
        return self.keys[0]

    def jwks(self) -> dict[str, Any]:
        """The JWKS document; counts fetches so tests can see the runtime's caching."""
        self.fetches += 1
        return {"keys": [key.jwk() for key in self.keys]}

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """The ring kept in a PEM file (created, private to its owner, on first use)."""
        if path.exists():
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} does not hold an EC private key")
            kid = path.with_suffix(".kid").read_text(encoding="utf-8").strip()
            return cls([SigningKey(kid, private)])
        key = SigningKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
        path.with_suffix(".kid").write_text(key.kid + "\n", encoding="utf-8")
        return cls([key])
