"""Audit proofs (docs/architecture.md §4): self-contained JSON documents that one envelope is in its
origin's signed log, that a later signed checkpoint of an origin extends an earlier one, or that
a file of raw readings is the one a signed 5-minute summary covers. Each carries the key
documents that chain its signing keys to the national root, so ``check_proof`` needs nothing
but the root public key. Bytes are base64, hashes hex, checkpoints their signed-note text::

    {"proof": "inclusion", "origin", "seq", "envelope", "checkpoint", "path", "documents"}
    {"proof": "readings", <the inclusion fields>, "readings_sha256"}
    {"proof": "consistency", "origin", "old", "new", "path", "documents"}

The checkpoint of an inclusion proof is one of size >= seq; the path is the RFC 9162 audit path
of leaf seq - 1 in the tree of that size (the consistency path, from the old size to the new).
A proof is as complete as its documents: a revocation left out of them is not seen."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from domain.base import iso
from domain.i18n import Text, _
from federation.checkpoint import DASH, Checkpoint, log_name, note_key_id, parse_checkpoint
from federation.checkpoint import verify_checkpoint as verify_note
from federation.envelope import check_signature, parse
from federation.errors import VerificationError
from federation.keys import ROOT, Document, build_trust, parse_document
from federation.merkle import leaf_hash, verify_consistency, verify_inclusion
from federation.verify import Trust

SUMMARY = "sensor.summary_recorded/1"  # domain.sensors.site.SummaryRecorded (a stable wire name)
INCLUSION = frozenset({"proof", "origin", "seq", "envelope", "checkpoint", "path", "documents"})
FIELDS = {
    "inclusion": INCLUSION,
    "readings": INCLUSION | {"readings_sha256"},
    "consistency": frozenset({"proof", "origin", "old", "new", "path", "documents"}),
}
SUMMARY_FIELDS = (
    "window_start",
    "window_end",
    "reading_count",
    "first_reading_id",
    "last_reading_id",
)
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_inclusion(
    origin: str,
    seq: int,
    envelope: bytes,
    checkpoint: str,
    path: Sequence[bytes],
    documents: Iterable[bytes],
) -> dict[str, Any]:
    return {
        "proof": "inclusion",
        "origin": origin,
        "seq": seq,
        "envelope": _b64(envelope),
        "checkpoint": checkpoint,
        "path": [h.hex() for h in path],
        "documents": [_b64(d) for d in documents],
    }


def make_readings(inclusion: dict[str, Any], readings_sha256: str) -> dict[str, Any]:
    """The inclusion proof of a summary envelope, as the proof of the readings it covers."""
    return {**inclusion, "proof": "readings", "readings_sha256": readings_sha256}


def make_consistency(
    origin: str, old: str, new: str, path: Sequence[bytes], documents: Iterable[bytes]
) -> dict[str, Any]:
    return {
        "proof": "consistency",
        "origin": origin,
        "old": old,
        "new": new,
        "path": [h.hex() for h in path],
        "documents": [_b64(d) for d in documents],
    }


def chain_documents(documents: Iterable[bytes], origins: Iterable[str]) -> list[bytes]:
    """The key documents about ``origins`` and, in turn, about their certifiers up to the root
    (certifications and revocations alike), in their given order."""
    parsed: list[Document] = []
    for raw in dict.fromkeys(documents):
        try:
            parsed.append(parse_document(raw))
        except VerificationError:
            continue
    wanted, chosen = set(origins), set()
    grew = True
    while grew:
        grew = False
        for doc in parsed:
            subject = doc.body["subject"]["origin"]
            if doc.raw not in chosen and isinstance(subject, str) and subject in wanted:
                chosen.add(doc.raw)
                if doc.certifier != ROOT:
                    wanted.add(doc.certifier)
                grew = True
    return [d.raw for d in parsed if d.raw in chosen]


def check_proof(proof: object, root: bytes, readings: bytes | None = None) -> dict[str, Any]:
    """What ``proof`` proves, judged with nothing but the ``root`` public key (and, for a
    readings proof, the readings file if given); else VerificationError naming what fails."""
    if not isinstance(proof, dict):
        raise _malformed(_("a proof is a JSON object, not {kind}", kind=type(proof).__name__))
    kind = proof.get("proof")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise _malformed(
            _("'proof' is {kind!r}, not one of {kinds}", kind=kind, kinds=sorted(FIELDS))
        )
    missing, extra = FIELDS[kind] - set(proof), set(proof) - FIELDS[kind]
    if missing or extra:
        wrong = [_("no {name!r}", name=name) for name in sorted(missing)]
        wrong += [_("an unexpected {name!r}", name=name) for name in sorted(map(str, extra))]
        raise _malformed(_("the {kind} proof has {fields}", kind=kind, fields=wrong))
    if readings is not None and kind != "readings":
        raise VerificationError(
            "not_a_readings_proof",
            _("a readings file was given with a {kind} proof", kind=kind),
        )
    if kind == "consistency":
        return _consistency(proof, root)
    return _inclusion(proof, root, readings)


def _inclusion(proof: dict[str, Any], root: bytes, readings: bytes | None) -> dict[str, Any]:
    origin, seq = _text(proof, "origin"), _count(proof, "seq")
    raw, note = _blob(proof["envelope"], "envelope"), _text(proof, "checkpoint")
    path, trust = _hashes(proof), _trust(proof, root)
    claimed = None
    if proof["proof"] == "readings":
        claimed = _hex_hash(proof["readings_sha256"], "readings_sha256")
    env = parse(raw)
    if env.origin != origin:
        raise VerificationError(
            "wrong_origin",
            _(
                "the envelope is of origin {found}, the proof says {origin}",
                found=env.origin,
                origin=origin,
            ),
        )
    if env.seq != seq:
        raise VerificationError(
            "wrong_sequence",
            _("the envelope is sequence {found}, the proof says {seq}", found=env.seq, seq=seq),
        )
    check_signature(env, trust.key_for(origin, env.key, seq))
    cp, signers = _checkpoint(note, origin, trust)
    if seq > cp.size:
        raise VerificationError(
            "not_covered",
            _(
                "the checkpoint at size {size} does not cover sequence {seq}",
                size=cp.size,
                seq=seq,
            ),
        )
    verify_inclusion(seq - 1, cp.size, leaf_hash(raw), path, cp.root)
    report: dict[str, Any] = {
        "ok": True,
        "proof": proof["proof"],
        "origin": origin,
        "seq": seq,
        "type": env.type,
        "aggregate": env.aggregate,
        "version": env.version,
        "actor": env.actor,
        "at": env.at,
        "recorded_at": _iso(env.at),
        "key": env.key,
        "envelope_sha256": env.hash.hex(),
        "checkpoint": _described(cp, signers),
    }
    if claimed is not None:
        report["readings"] = _readings(env.type, env.payload, claimed, readings)
    return report


def _readings(
    kind: str, payload: dict[str, Any], claimed: str, readings: bytes | None
) -> dict[str, Any]:
    """The summary's account of the readings, once its hash is the claimed one (and the
    file's, if given)."""
    if kind != SUMMARY:
        raise VerificationError(
            "not_a_summary",
            _("the envelope is a {kind}, not a {summary}", kind=kind, summary=SUMMARY),
        )
    signed = payload.get("raw_sha256")
    if signed != claimed:
        raise VerificationError(
            "readings_mismatch",
            _(
                "the proof names readings {claimed}; the summary covers {signed}",
                claimed=claimed,
                signed=signed,
            ),
        )
    if readings is not None:
        actual = hashlib.sha256(readings).hexdigest()
        if actual != signed:
            raise VerificationError(
                "readings_mismatch",
                _(
                    "the readings file's SHA-256 is {actual}; the signed summary covers {signed}",
                    actual=actual,
                    signed=signed,
                ),
            )
    summary = {k: payload[k] for k in SUMMARY_FIELDS if type(payload.get(k)) is int}
    return {"sha256": signed, "checked": readings is not None, **summary}


def _consistency(proof: dict[str, Any], root: bytes) -> dict[str, Any]:
    origin, old_note, new_note = _text(proof, "origin"), _text(proof, "old"), _text(proof, "new")
    path, trust = _hashes(proof), _trust(proof, root)
    old, old_signers = _checkpoint(old_note, origin, trust)
    new, new_signers = _checkpoint(new_note, origin, trust)
    verify_consistency(old.size, new.size, path, old.root, new.root)
    return {
        "ok": True,
        "proof": "consistency",
        "origin": origin,
        "old": _described(old, old_signers),
        "new": _described(new, new_signers),
    }


def _checkpoint(text: str, origin: str, trust: Trust) -> tuple[Checkpoint, list[str]]:
    """The checkpoint, and the ids of the keys that signed it: keys of ``origin`` valid at its
    size (as ``federation.verify`` judges a checkpoint within a log)."""
    cp, lines = parse_checkpoint(text)
    again = "".join(f"{DASH} {n} {_b64(kid + sig)}\n" for n, kid, sig in lines)
    if text != f"{cp.body}\n{again}":  # base64 with stray bits decodes, yet is another text
        raise VerificationError("bad_checkpoint", _("the note is not in its one canonical form"))
    if cp.origin != origin:
        raise VerificationError(
            "wrong_origin",
            _(
                "the checkpoint is of origin {found}, the proof says {origin}",
                found=cp.origin,
                origin=origin,
            ),
        )
    name = log_name(origin)
    kids = {kid for signer, kid, _sig in lines if signer == name}
    grants = [g for g in trust.keys_of(origin) if note_key_id(name, g.public) in kids]
    if not grants:
        raise VerificationError(
            "unknown_key",
            _(
                "the checkpoint of {origin} at size {size} is signed by no key certified for it",
                origin=origin,
                size=cp.size,
            ),
        )
    signed = []
    for g in grants:
        try:
            verify_note(text, g.public, g.suite)
        except VerificationError:
            continue
        signed.append(g)
    if not signed:
        raise VerificationError(
            "bad_checkpoint_signature",
            _(
                "the checkpoint of {origin} at size {size} does not verify",
                origin=origin,
                size=cp.size,
            ),
        )
    valid = [
        g.key_id
        for g in signed
        if g.from_seq <= cp.size and (g.until_seq is None or cp.size <= g.until_seq)
    ]
    if not valid:
        bounds = ", ".join(f"{g.key_id} {g.from_seq}..{g.until_seq or ''}" for g in signed)
        raise VerificationError(
            "revoked_key",
            _(
                "the checkpoint of {origin} at size {size} is signed by keys not valid at that"
                " size ({bounds})",
                origin=origin,
                size=cp.size,
                bounds=bounds,
            ),
        )
    return cp, sorted(set(valid))


def _described(cp: Checkpoint, signers: list[str]) -> dict[str, Any]:
    return {"size": cp.size, "root": cp.root.hex(), "keys": signers}


def _iso(ms: int) -> str | None:
    """China time, as an auditor reads it; None for a time no calendar holds (the report keeps
    the milliseconds in ``at``)."""
    try:
        return iso(ms)
    except OverflowError:
        return None


# -- reading the proof's fields: anything unexpected is a malformed proof --------------------


def _malformed(message: Text) -> VerificationError:
    return VerificationError("malformed_proof", message)


def _text(proof: dict[str, Any], name: str) -> str:
    value = proof[name]
    if not isinstance(value, str):
        raise _malformed(_("{name} is {kind}, not a string", name=name, kind=type(value).__name__))
    return value


def _count(proof: dict[str, Any], name: str) -> int:
    value = proof[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _malformed(_("{name} is {value!r}, not a positive integer", name=name, value=value))
    return value


def _blob(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise _malformed(
            _("{name} is {kind}, not a base64 string", name=name, kind=type(value).__name__)
        )
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(_("{name} is not base64", name=name)) from None
    if _b64(data) != value:  # stray bits in the last character: one text per value
        raise _malformed(_("{name} is not in canonical base64", name=name))
    return data


def _hex_hash(value: object, name: str) -> str:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise _malformed(_("{name} is not a SHA-256 hash in lowercase hex", name=name))
    return value


def _list(proof: dict[str, Any], name: str) -> list[object]:
    value = proof[name]
    if not isinstance(value, list):
        raise _malformed(_("{name} is {kind}, not a list", name=name, kind=type(value).__name__))
    return value


def _hashes(proof: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(_hex_hash(h, f"path[{i}]")) for i, h in enumerate(_list(proof, "path"))]


def _trust(proof: dict[str, Any], root: bytes) -> Trust:
    docs = [_blob(d, f"documents[{i}]") for i, d in enumerate(_list(proof, "documents"))]
    try:
        trust, _problems = build_trust(root, docs)  # a document that does not chain adds nothing
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _malformed(
            _("a key document has fields of the wrong type ({error})", error=repr(e))
        ) from None
    return trust
