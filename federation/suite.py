"""Signature suites. The envelope names its suite, so SM2/SM3 can join Ed25519 later without
changing the envelope layout: a suite only signs, verifies and names keys."""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.i18n import _
from federation.errors import FederationError


class Suite(Protocol):
    name: str

    def generate(self) -> bytes: ...  # a new private key (raw)

    def public(self, private: bytes) -> bytes: ...

    def sign(self, private: bytes, data: bytes) -> bytes: ...

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool: ...


class Ed25519:
    name = "ed25519"

    def generate(self) -> bytes:
        return Ed25519PrivateKey.generate().private_bytes_raw()

    def public(self, private: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()

    def sign(self, private: bytes, data: bytes) -> bytes:
        return _ed25519_private(private).sign(data)

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool:
        if len(public) != 32 or len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        except InvalidSignature:
            return False
        return True


@functools.lru_cache(maxsize=16)
def _ed25519_private(private: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(private)


SUITES: dict[str, Suite] = {"ed25519": Ed25519()}


def key_id(public: bytes) -> str:
    """A key's short name in envelopes: the first 8 bytes of SHA-256 of the public key, hex."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    suite: str
    private: bytes
    public: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return SUITES[self.suite].sign(self.private, data)

    @classmethod
    def generate(cls, suite: str = "ed25519") -> SigningKey:
        private = SUITES[suite].generate()
        return cls(suite, private, SUITES[suite].public(private))


def save_key(key: SigningKey, path: Path) -> None:
    """PKCS#8 PEM, readable by its owner only (0600), never overwritten."""
    if key.suite != "ed25519":
        raise FederationError(_("no file format for {suite} keys yet", suite=key.suite))
    pem = Ed25519PrivateKey.from_private_bytes(key.private).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def load_key(path: Path) -> SigningKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise FederationError(
            _("{path}: not a readable private key ({error})", path=path, error=str(e))
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise FederationError(_("{path}: not an Ed25519 key", path=path))
    if path.stat().st_mode & 0o077:
        raise FederationError(
            _("{path}: the key must be readable by its owner only (chmod 600)", path=path)
        )
    return SigningKey("ed25519", loaded.private_bytes_raw(), loaded.public_key().public_bytes_raw())


def public_pem(public: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public(path: Path) -> bytes:
    try:
        loaded = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as e:
        raise FederationError(
            _("{path}: not a readable public key ({error})", path=path, error=str(e))
        ) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise FederationError(_("{path}: not an Ed25519 public key", path=path))
    return loaded.public_bytes_raw()
