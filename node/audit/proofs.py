"""Audit proofs from a node directory or an export (``node.audit.export.Source``): that one envelope
is in its origin's signed log, that two signed checkpoints of an origin are consistent, and that
a file of raw readings is the one a signed summary covers. ``federation.proof.check_proof``
checks them with nothing but the root public key."""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

from domain.base import iso
from domain.i18n import Text, _
from domain.sensors.readings import WINDOW_MS, canonical_line
from federation.checkpoint import Checkpoint, parse_checkpoint
from federation.envelope import parse
from federation.errors import VerificationError
from federation.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash
from federation.proof import (
    SUMMARY,
    chain_documents,
    make_consistency,
    make_inclusion,
    make_readings,
)
from node.audit.export import Source
from node.errors import ConfigError
from node.readings import ReadingsStore


def prove_event(source: Source, origin: str, seq: int) -> dict[str, Any]:
    """The inclusion proof of envelope ``seq`` of ``origin`` under the smallest signed
    checkpoint that covers it."""
    held = dict(source.origins()).get(origin, 0)
    if not 1 <= seq <= held:
        has = _("it holds 1..{held}", held=held) if held else _("it holds none of that origin")
        raise ConfigError(
            _(
                "origin {origin} has no envelope {seq} in {path} ({has})",
                origin=origin,
                seq=seq,
                path=source.path,
                has=has,
            )
        )
    notes = _checkpoints(source, origin)
    sizes = sorted(notes)
    at = bisect.bisect_left(sizes, seq)
    if at == len(sizes):
        latest = _("the latest is at size {size}", size=sizes[-1]) if sizes else _("there is none")
        raise ConfigError(
            _(
                "no checkpoint of origin {origin} covers sequence {seq} yet ({latest}); a node"
                " signs one every second while it serves and when it stops",
                origin=origin,
                seq=seq,
                latest=latest,
            )
        )
    cp = notes[sizes[at]]
    leaves = _leaves(source, origin, notes, cp.size)
    raw = next(source.envelopes(origin, seq, seq))
    return make_inclusion(
        origin,
        seq,
        raw,
        cp.text,
        inclusion_proof(seq - 1, leaves),
        chain_documents(source.documents, [origin]),
    )


def prove_consistency(source: Source, origin: str, old_size: int, new_size: int) -> dict[str, Any]:
    """The proof that the signed checkpoint of ``origin`` at ``new_size`` extends the one at
    ``old_size`` (both must be sizes of signed checkpoints)."""
    if old_size > new_size:
        raise ConfigError(
            _(
                "the old size {old} is larger than the new size {new}",
                old=old_size,
                new=new_size,
            )
        )
    notes = _checkpoints(source, origin)
    for size in (old_size, new_size):
        if size not in notes:
            raise ConfigError(
                _(
                    "origin {origin} has no signed checkpoint at size {size} ({nearest})",
                    origin=origin,
                    size=size,
                    nearest=_nearest(notes, size),
                )
            )
    leaves = _leaves(source, origin, notes, new_size)
    return make_consistency(
        origin,
        notes[old_size].text,
        notes[new_size].text,
        consistency_proof(old_size, leaves),
        chain_documents(source.documents, [origin]),
    )


def prove_readings(source: Source, readings: bytes) -> dict[str, Any]:
    """The proof of the signed summary whose ``raw_sha256`` is the SHA-256 of ``readings``
    (a file as ``readings_file`` writes it), found across the source's origins."""
    want = hashlib.sha256(readings).hexdigest()
    needle = want.encode()  # the hash is a string in the envelope: skip the others unparsed
    for origin, _size in source.origins():
        for raw in source.envelopes(origin):
            if needle not in raw:
                continue
            try:
                env = parse(raw)
            except VerificationError:
                continue
            if env.type == SUMMARY and env.payload.get("raw_sha256") == want:
                return make_readings(prove_event(source, origin, env.seq), want)
    raise ConfigError(
        _(
            "no signed summary in {path} covers readings with SHA-256 {sha256}: the file must"
            " hold exactly the covered readings' canonical lines, as readings_file writes them",
            path=source.path,
            sha256=want,
        )
    )


def readings_file(
    store: ReadingsStore, site: str, window_start: int, last_reading_id: int
) -> bytes:
    """The canonical lines of the readings a summary covers: the site's readings of the window
    starting at ``window_start`` up to ``last_reading_id``, in store order."""
    if window_start % WINDOW_MS:
        raise ConfigError(_("{start} is not the start of a 5-minute window", start=window_start))
    rows = [r for r in store.window(site, window_start) if r.id <= last_reading_id]
    if not rows:
        raise ConfigError(
            _(
                "no readings of site {site} in the window from {start} up to id {last}: pruned"
                " after the retention period, or another site or window?",
                site=site,
                start=iso(window_start),
                last=last_reading_id,
            )
        )
    return b"".join(canonical_line(r) for r in rows)


def _checkpoints(source: Source, origin: str) -> dict[int, Checkpoint]:
    notes = {}
    for text in source.checkpoints(origin):
        try:
            cp, _sig = parse_checkpoint(text)
        except VerificationError as e:
            raise ConfigError(
                _(
                    "{path}: a checkpoint of origin {origin}: {error}",
                    path=source.path,
                    origin=origin,
                    error=e,
                )
            ) from None
        notes[cp.size] = cp
    return notes


def _leaves(source: Source, origin: str, notes: dict[int, Checkpoint], size: int) -> list[bytes]:
    """The leaf hashes of ``origin`` up to ``size``, each checkpoint on the way held against
    them: a proof is only made from envelopes that match what was signed."""
    leaves, tree = [], CompactRange()
    for raw in source.envelopes(origin, 1, size):
        leaves.append(leaf_hash(raw))
        tree.append(leaves[-1])
        cp = notes.get(tree.size)
        if cp is not None and cp.root != tree.root():
            raise ConfigError(
                _(
                    "{path}: the checkpoint of origin {origin} at size {size} does not match its"
                    " envelopes: run `anjian audit verify`",
                    path=source.path,
                    origin=origin,
                    size=cp.size,
                )
            )
    if len(leaves) != size:
        raise ConfigError(
            _(
                "{path}: origin {origin} has {count} envelopes up to {size}, a gap",
                path=source.path,
                origin=origin,
                count=len(leaves),
                size=size,
            )
        )
    return leaves


def _nearest(notes: dict[int, Checkpoint], size: int) -> Text:
    sizes = sorted(notes)
    if not sizes:
        return _("it has no signed checkpoint")
    at = bisect.bisect_left(sizes, size)
    near = sizes[max(at - 1, 0) : at + 1]
    if len(near) == 1:
        return _("the nearest is at {size}", size=near[0])
    return _("the nearest are at {first} and {second}", first=near[0], second=near[1])
