"""What comes down from the tiers above (docs/architecture.md §6 "Down"): the envelopes a
child takes from its parent's downward stream, verified each on its own signature before
anything of them is kept."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.codes import in_subtree
from domain.i18n import _
from federation.envelope import Envelope, check_signature, parse
from federation.errors import VerificationError
from node.replication.importer import Importer
from node.signedlog import storable, stored_event

log = logging.getLogger("anjian.federation")

DOWN_PREFIXES = ("licence.",)


def take_from_above(importer: Importer, items: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Verify and keep downward envelopes (docs/architecture.md §6 "Down"). Each envelope stands
    on its own signature: the downward stream carries a selection of each tier's log, so there
    is no chain to follow. Nothing unverified is kept where later decisions look: an envelope
    whose signer is not known yet waits in ``downward_pending`` (bounded, several candidates
    per position side by side) and is tried again, so a forged envelope can never take the
    place of the genuine one at its position."""
    node = importer.node
    own = node.config.node
    limits = node.config.federation
    summary: dict[str, Any] = {"kept": 0, "quarantined": [], "dropped": 0}
    arrived: list[tuple[Envelope, str]] = []
    for subject, data in items:
        division = subject.rsplit(".", 1)[-1]
        if division != "all" and not in_subtree(own.region, division):
            continue  # another area's licence: not for this node
        try:
            if len(data) > limits.max_envelope:
                raise VerificationError(
                    "oversized",
                    _(
                        "{size} bytes, over the limit of {limit}",
                        size=len(data),
                        limit=limits.max_envelope,
                    ),
                )
            arrived.append((parse(data), division))
        except VerificationError as e:
            importer.quarantine("?", 0, e, data, summary)
    waiting = _verify(importer, arrived, summary)
    for _round in range(3):  # a certification may let a held signer through, and so on
        if importer.trust_version == importer.swept_above:
            break
        importer.swept_above = importer.trust_version
        waiting = _verify(importer, waiting, summary)
        _verify(importer, _pending(node), summary, stored=True)
    _hold(node, waiting, summary)
    return summary


def _pending(node: Any) -> list[tuple[Envelope, str]]:
    rows = node.log.query("SELECT raw, division FROM downward_pending ORDER BY origin, seq")
    return [(parse(bytes(r["raw"])), str(r["division"])) for r in rows]


def _hold(node: Any, waiting: list[tuple[Envelope, str]], summary: dict[str, Any]) -> None:
    """Keep envelopes whose signer is not known yet, up to ``hold_unknown`` in all; beyond it
    they are dropped and counted (the tier above publishes them again to a new child, and a
    stream redelivers nothing it has not been acknowledged for: see the status's counter)."""
    if not waiting:
        return
    room = node.config.federation.hold_unknown - int(
        node.log.query("SELECT COUNT(*) AS n FROM downward_pending")[0]["n"]
    )
    kept = waiting[: max(room, 0)]
    node.log.write_many(
        "INSERT INTO downward_pending (origin, seq, hash, raw, division) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (origin, seq, hash) DO NOTHING",
        [(env.origin, env.seq, env.hash, env.raw, division) for env, division in kept],
    )
    if len(waiting) > len(kept):
        summary["dropped"] += len(waiting) - len(kept)
        log.warning(
            _(
                "dropped {count} envelopes from above whose signer is unknown: {held} already wait",
                count=len(waiting) - len(kept),
                held=node.config.federation.hold_unknown,
            )
        )


def _verify(
    importer: Importer,
    envelopes: list[tuple[Envelope, str]],
    summary: dict[str, Any],
    stored: bool = False,
) -> list[tuple[Envelope, str]]:
    """Keep each envelope that verifies; quarantine each that cannot; return those whose signer
    is not known yet. ``stored``: some come from ``downward_pending`` (removed once settled)."""
    node = importer.node
    own = node.config.node
    trust = importer.trust()
    waiting: list[tuple[Envelope, str]] = []
    for env, division in envelopes:
        try:
            region = trust.regions.get(env.origin)
            if env.origin == own.origin or (
                region is not None and not in_subtree(region, own.region)
            ):
                raise VerificationError(
                    "not_from_above",
                    _(
                        "{origin} is not a tier above {own}",
                        origin=env.origin,
                        own=own.origin,
                    ),
                )
            check_signature(env, trust.key_for(env.origin, env.key, env.seq))
            storable(env)
            _keep(importer, env, division, region, summary)
        except VerificationError as e:
            if e.reason == "unknown_key":
                waiting.append((env, division))
                continue
            importer.quarantine(env.origin, env.seq, e, env.raw, summary)
        if stored:
            node.log.write(
                "DELETE FROM downward_pending WHERE origin = ? AND seq = ? AND hash = ?",
                (env.origin, env.seq, env.hash),
            )
    return waiting


def _keep(
    importer: Importer, env: Envelope, division: str, region: str | None, summary: dict[str, Any]
) -> None:
    """A verified envelope: kept once; a second, different one signed for the same position is
    the tier above signing twice, quarantined as such."""
    node = importer.node
    rows = node.log.query(
        "SELECT raw FROM downward WHERE origin = ? AND seq = ?", (env.origin, env.seq)
    )
    if rows:
        if bytes(rows[0]["raw"]) != env.raw:
            raise VerificationError(
                "duplicate_sequence",
                _(
                    "another envelope is already kept at {origin}:{seq}",
                    origin=env.origin,
                    seq=env.seq,
                ),
            )
        return  # the same again (a redelivery)
    if env.type.startswith(DOWN_PREFIXES):  # licences: into the log, for the registers
        # held to what its origin may write, as an envelope from below is
        importer.admission.check(env, region, {})
        with contextlib.suppress(IntegrityError):  # kept before a crash, not yet marked
            node.log.app.recorder.insert_events([stored_event(env)], from_above=True)
        importer.admission.stored([env])
    node.log.write(  # numbered in the order verified: the relay follows that order
        "INSERT INTO downward (origin, seq, type, raw, division, verified)"
        " SELECT ?, ?, ?, ?, ?, COALESCE(MAX(verified), 0) + 1 FROM downward",
        (env.origin, env.seq, env.type, env.raw, division),
    )
    summary["kept"] += 1
