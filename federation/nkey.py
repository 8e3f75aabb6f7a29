"""NATS identities: nkey user key pairs (an Ed25519 key in NATS's own encoding, "S..." seeds and
"U..." public keys). A node authenticates to a tier's nats-server with one, answering the
server's nonce; it is a key of its own, never the node's signing key, so nothing the server
chooses is ever signed with the key that signs envelopes and checkpoints."""

from __future__ import annotations

import base64
import binascii
import os

import nkeys  # type: ignore[import-untyped]

from domain.i18n import _
from federation.errors import FederationError


def generate_seed() -> bytes:
    """A new nkey user seed ("SU...")."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_of(seed: bytes) -> str:
    """The user public key ("U...") of a seed; FederationError if it is not a user seed."""
    try:
        pair = nkeys.from_seed(bytearray(seed.strip()))
        public = bytes(pair.public_key).decode()
    except (nkeys.NkeysError, ValueError, TypeError, binascii.Error) as e:
        raise FederationError(_("not an nkey seed ({error})", error=type(e).__name__)) from None
    if not public.startswith("U"):
        raise FederationError(_("not an nkey user seed (a user seed begins SU)"))
    return public


def check_public(text: object) -> str:
    """``text`` if it is an nkey user public key ("U" and 55 more base32 characters, with a
    valid checksum); FederationError saying why not."""
    if not isinstance(text, str) or len(text) != 56 or not text.startswith("U"):
        raise FederationError(
            _("not a NATS user public key (U... 56 characters): {text!r:.80}", text=text)
        )
    try:
        raw = base64.b32decode(text)
    except ValueError:
        raise FederationError(
            _("not a NATS user public key (base32): {text!r:.80}", text=text)
        ) from None
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if body[0] != nkeys.PREFIX_BYTE_USER or nkeys.crc16(bytearray(body)) != crc:
        raise FederationError(_("not a NATS user public key (checksum): {text!r:.80}", text=text))
    return text
