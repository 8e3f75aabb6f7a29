"""The envelope (docs/architecture.md §4): one signed, chained record per event an origin recorded.

An envelope is the canonical msgpack map ``{"body": <bytes>, "sig": <bytes>}``: the body is
itself canonical msgpack of every field (origin, sequence, previous hash, time, type,
aggregate and version, actor, payload, suite, key id), and the signature is over exactly those
body bytes, carried verbatim — nothing is re-encoded before verifying. The chain hash (``prev``
of the next envelope) and the Merkle leaf cover the whole envelope, signature included."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgpack

from domain.i18n import Text, _
from federation.canonical import decode, encode
from federation.errors import VerificationError
from federation.merkle import leaf_hash
from federation.suite import SUITES, SigningKey

LAYOUT = 1
GENESIS = bytes(32)  # ``prev`` of an origin's first envelope
FIELDS = {
    "v",
    "origin",
    "seq",
    "prev",
    "at",
    "type",
    "aggregate",
    "version",
    "actor",
    "payload",
    "suite",
    "key",
}


@dataclass(frozen=True)
class Envelope:
    origin: str
    seq: int
    prev: bytes
    at: int
    type: str
    aggregate: str
    version: int
    actor: dict[str, str]
    payload: dict[str, Any]
    suite: str
    key: str
    sig: bytes
    raw: bytes

    @cached_property
    def hash(self) -> bytes:
        return hashlib.sha256(self.raw).digest()

    @cached_property
    def leaf(self) -> bytes:
        """Its leaf in its origin's Merkle tree."""
        return leaf_hash(self.raw)

    def signed_bytes(self) -> bytes:
        """The body bytes the signature is over, verbatim from the envelope."""
        return bytes(decode(self.raw)["body"])


def seal(
    key: SigningKey,
    *,
    origin: str,
    seq: int,
    prev: bytes,
    at: int,
    type: str,
    aggregate: str,
    version: int,
    actor: dict[str, str],
    payload: dict[str, Any],
    presorted: bool = False,
) -> bytes:
    """The canonical bytes of a new signed envelope. ``presorted``: ``actor`` and ``payload``
    come with their maps already sorted and no floats (from JSON, see ``sorted_map``), so the
    body is packed as it stands, without the canonical encoder's checks (the recorder's hot
    path; a test checks the bytes are the same)."""
    body = {  # keys in canonical (sorted) order
        "actor": actor,
        "aggregate": aggregate,
        "at": at,
        "key": key.key_id,
        "origin": origin,
        "payload": payload,
        "prev": prev,
        "seq": seq,
        "suite": key.suite,
        "type": type,
        "v": LAYOUT,
        "version": version,
    }
    signed: bytes = msgpack.packb(body, use_bin_type=True) if presorted else encode(body)
    return encode_pair(signed, key.sign(signed))


def seal_sorted(key: SigningKey, **fields: Any) -> bytes:
    """``seal`` with ``presorted``: for the recorder's hot path."""
    return seal(key, presorted=True, **fields)


def sorted_map(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for json.loads: maps with their keys in canonical order."""
    return dict(sorted(pairs))


def no_float(text: str) -> Any:
    """``parse_float`` for json.loads: signed payloads carry no floats."""
    raise ValueError(
        _("a float ({text}) cannot be signed: measurements are scaled integers", text=text)
    )


def encode_pair(body: bytes, sig: bytes) -> bytes:
    """``{"body": body, "sig": sig}``, canonically (the keys are already in order)."""
    data: bytes = msgpack.packb({"body": body, "sig": sig}, use_bin_type=True)
    return data


def _fail(message: Text) -> VerificationError:
    return VerificationError("malformed_envelope", message)


def parse(raw: bytes) -> Envelope:
    """Strictly decode an envelope (canonical bytes, exact fields and types); no signature
    check here (that needs the key, see federation.verify)."""
    outer = decode(raw)
    if (
        not isinstance(outer, dict)
        or set(outer) != {"body", "sig"}
        or not all(isinstance(outer[k], bytes) for k in ("body", "sig"))
    ):
        raise _fail(_("an envelope is {{body: bytes, sig: bytes}}"))
    body = decode(outer["body"])
    if not isinstance(body, dict) or set(body) != FIELDS:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise _fail(_("fields are {got}, expected {expected}", got=got, expected=sorted(FIELDS)))
    if body["v"] != LAYOUT:
        raise _fail(_("layout {layout!r} is not {expected}", layout=body["v"], expected=LAYOUT))
    expect = {
        "origin": str,
        "seq": int,
        "prev": bytes,
        "at": int,
        "type": str,
        "aggregate": str,
        "version": int,
        "actor": dict,
        "payload": dict,
        "suite": str,
        "key": str,
    }
    for field, kind in expect.items():
        if not isinstance(body[field], kind) or isinstance(body[field], bool):
            raise _fail(
                _(
                    "{field} is {kind}, not {expected}",
                    field=field,
                    kind=type(body[field]).__name__,
                    expected=kind.__name__,
                )
            )
    if body["seq"] < 1 or body["version"] < 1 or len(body["prev"]) != 32:
        raise _fail(_("seq and version start at 1; prev is 32 bytes"))
    actor = body["actor"]
    if set(actor) != {"user", "node"} or not all(isinstance(v, str) for v in actor.values()):
        raise _fail(_("actor is {{user: str, node: str}}"))
    if actor["node"] != body["origin"]:
        raise _fail(
            _(
                "actor node {node!r} is not the origin {origin!r}",
                node=actor["node"],
                origin=body["origin"],
            )
        )
    if body["suite"] not in SUITES:
        raise VerificationError(
            "unknown_suite", _("signature suite {suite!r} is not known", suite=body["suite"])
        )
    return Envelope(**{k: body[k] for k in expect}, sig=outer["sig"], raw=raw)


def check_signature(env: Envelope, public: bytes) -> None:
    if not SUITES[env.suite].verify(public, env.signed_bytes(), env.sig):
        raise VerificationError(
            "bad_signature",
            _(
                "{origin}:{seq} is not signed by key {key}",
                origin=env.origin,
                seq=env.seq,
                key=env.key,
            ),
        )
