"""Checkpoints in the C2SP signed-note format: ``<origin>\\n<size>\\n<base64 root>\\n``, a blank
line, then ``— <key name> <base64(key id[4] || signature)>`` per signature. For Ed25519 the key
id is SHA-256(name || 0x0A || 0x01 || public key)[:4]."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from domain.i18n import Text, _
from federation.errors import VerificationError
from federation.suite import SUITES, SigningKey

DASH = "\u2014"
ED25519_ALG = b"\x01"


def note_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public).digest()[:4]


def log_name(origin: str) -> str:
    """The checkpoint origin line (the log's identity) of a node's log."""
    return f"anjian/{origin}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str  # the node's origin id
    size: int
    root: bytes
    text: str  # the whole signed note, verbatim

    @property
    def body(self) -> str:
        return f"{log_name(self.origin)}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def sign_checkpoint(key: SigningKey, origin: str, size: int, root: bytes) -> Checkpoint:
    body = f"{log_name(origin)}\n{size}\n{base64.b64encode(root).decode()}\n"
    name = log_name(origin)
    sig = key.sign(body.encode())
    line = f"{DASH} {name} {base64.b64encode(note_key_id(name, key.public) + sig).decode()}\n"
    return Checkpoint(origin, size, root, body + "\n" + line)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _fail(message: Text) -> VerificationError:
    return VerificationError("bad_checkpoint", message)


def parse_checkpoint(text: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """The checkpoint and its signature lines (name, key id, signature), strictly parsed."""
    body, sep, sigs = text.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise _fail(_("not a signed note: no blank line before the signatures"))
    lines = body.split("\n")
    if len(lines) != 3 or not lines[0].startswith("anjian/"):
        raise _fail(_("the note body is not <origin>, <size>, <root>"))
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        raise _fail(_("size or root is malformed")) from None
    # one text per statement: stray bits in the last base64 character would decode alike
    if str(size) != lines[1] or size < 0 or len(root) != 32 or _b64(root) != lines[2]:
        raise _fail(_("size or root is malformed"))
    signatures = []
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise _fail(_("malformed signature line {line!r}", line=line))
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise _fail(_("signature is not base64")) from None
        if len(blob) < 5 or _b64(blob) != parts[2]:
            raise _fail(_("signature too short"))
        signatures.append((parts[1], blob[:4], blob[4:]))
    cp = Checkpoint(lines[0].removeprefix("anjian/"), size, root, text)
    return cp, signatures


def verify_checkpoint(text: str, public: bytes, suite: str = "ed25519") -> Checkpoint:
    """The checkpoint if some signature line is by ``public`` over its body; else an error."""
    cp, signatures = parse_checkpoint(text)
    name = log_name(cp.origin)
    wanted = note_key_id(name, public)
    for signer, kid, sig in signatures:
        if signer == name and kid == wanted and SUITES[suite].verify(public, cp.body.encode(), sig):
            return cp
    raise VerificationError(
        "bad_checkpoint_signature",
        _(
            "checkpoint of {origin} at size {size} is not signed by the key",
            origin=cp.origin,
            size=cp.size,
        ),
    )
