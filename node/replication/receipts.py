"""Receipts of accident reports that reached this node from below (docs/architecture.md §6,
"Receipts").

The federation importer calls ``record_receipts`` after it applies a run of envelopes, with the
accident reports among them: for each report of another origin that this node has no receipt
of yet, the node records its own receipt (signed, in its own log, so it replicates upward), all
in one transaction. The backup centre records none: it replays the national log and must reach
the national view's state exactly."""

from __future__ import annotations

import json
from uuid import UUID

from domain.codes import Tier
from domain.receipt import Receipt, RecordReceipt, receipt_id
from node.errors import Conflict
from node.service import Node, parse

FEDERATION_USER = "federation"  # the actor of what the node records on applying envelopes

# (accident aggregate id, reporting origin, its envelope sequence, the report's recorded_at ms)
Report = tuple[str, str, int, int]


def record_receipts(node: Node, reports: list[Report]) -> int:
    """Record this node's receipt of each report it has none of yet; return how many were
    recorded. Reports of this node's own origin are skipped; so is everything at a backup node.
    Safe to repeat: a report already received records nothing. Invalid (a malformed id or
    number) if a report cannot be read, and then nothing is recorded."""
    if node.config.node.tier == Tier.BACKUP:
        return 0
    try:
        return _record(node, reports)
    except Conflict:  # another process recorded one of these receipts meanwhile: look again
        return _record(node, reports)


def _record(node: Node, reports: list[Report]) -> int:
    origin = node.config.node.origin
    ctx = node.context(FEDERATION_USER)
    fresh: dict[UUID, Receipt] = {}
    for accident_id, reporting_origin, seq, recorded_at in reports:
        if reporting_origin == origin:
            continue
        command = parse(
            RecordReceipt,
            json.dumps(
                {
                    "accident_id": accident_id,
                    "reporting_origin": reporting_origin,
                    "reporting_seq": seq,
                    "report_recorded_at": recorded_at,
                }
            ),
        )
        rid = receipt_id(origin, command.accident_id)
        if rid in fresh or node.log.version_of(rid):
            continue
        fresh[rid] = Receipt.record(command, ctx)
    if fresh:
        node._append(list(fresh.values()))
    return len(fresh)
