"""What comes down from the tiers above (docs/architecture.md §6 "Down"): the envelopes a
child takes from its parent's downward stream, verified each on its own signature before
anything of them is kept."""

from __future__ import annotations

import contextlib
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.codes import in_subtree
from federation.envelope import check_signature, parse
from federation.errors import VerificationError
from node.replication.importer import Importer
from node.signedlog import storable, stored_event

DOWN_PREFIXES = ("licence.",)


def take_from_above(importer: Importer, items: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Verify and keep downward envelopes (docs/architecture.md §6 "Down"). Each envelope stands
    on its own signature: the downward stream carries a selection of each tier's log, so there is no
    chain to follow. One whose signer is not known yet is kept unverified and tried again."""
    node = importer.node
    own = node.config.node
    summary: dict[str, Any] = {"kept": 0, "quarantined": []}
    for subject, data in items:
        division = subject.rsplit(".", 1)[-1]
        if division != "all" and not in_subtree(own.region, division):
            continue  # another area's licence: not for this node
        try:
            env = parse(data)
        except VerificationError as e:
            importer.quarantine("?", 0, e, data, summary)
            continue
        node.log.write(
            "INSERT INTO downward (origin, seq, type, raw, division, verified)"
            " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (origin, seq) DO NOTHING",
            (env.origin, env.seq, env.type, data, division),
        )
    for _ in range(3):  # a certification may let a held signer through, and so on
        if not _verify_from_above(importer, summary):
            break
    return summary


def _verify_from_above(importer: Importer, summary: dict[str, Any]) -> int:
    node = importer.node
    own = node.config.node
    trust = importer.trust()
    verified = 0
    for r in node.log.query("SELECT origin, seq, raw FROM downward WHERE verified = 0"):
        env = parse(bytes(r["raw"]))
        try:
            region = trust.regions.get(env.origin)
            if env.origin == own.origin or (
                region is not None and not in_subtree(region, own.region)
            ):
                raise VerificationError(
                    "not_from_above", f"{env.origin} is not a tier above {own.origin}"
                )
            check_signature(env, trust.key_for(env.origin, env.key, env.seq))
            storable(env)
        except VerificationError as e:
            if e.reason == "unknown_key":
                continue
            node.log.write(
                "DELETE FROM downward WHERE origin = ? AND seq = ?", (env.origin, env.seq)
            )
            importer.quarantine(env.origin, env.seq, e, env.raw, summary)
            continue
        if env.type.startswith(DOWN_PREFIXES):  # licences: into the log, for the registers
            with contextlib.suppress(IntegrityError):  # kept before a crash, not yet marked
                node.log.app.recorder.insert_events([stored_event(env)], from_above=True)
        node.log.write(  # numbered in the order verified: the relay follows that order
            "UPDATE downward SET verified = (SELECT COALESCE(MAX(verified), 0) + 1 FROM downward)"
            " WHERE origin = ? AND seq = ?",
            (env.origin, env.seq),
        )
        verified += 1
        summary["kept"] += 1
    return verified
