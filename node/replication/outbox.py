"""This node's log as a queue to one stream: what the stream holds per origin, and the next
batch after it; and the positions a parent tells its children it has applied."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.i18n import Text, _
from federation.transport import (
    Connection,
    Message,
    TransportError,
    checkpoint_id,
    envelope_id,
)
from node.replication.part import IDLE
from node.store import EventLog

logger = logging.getLogger("anjian.federation")


# -- reading the log to publish it ------------------------------------------------------------
def tree_sizes(log: EventLog) -> dict[str, int]:
    """Per origin held in this node's log, how many of its envelopes are applied."""
    return {str(r["origin"]): int(r["size"]) for r in log.query("SELECT origin, size FROM merkle")}


def checkpoint_sizes(log: EventLog) -> dict[str, int]:
    rows = log.query("SELECT origin, MAX(size) AS size FROM checkpoints GROUP BY origin")
    return {str(r["origin"]): int(r["size"]) for r in rows}


def applied_positions(log: EventLog) -> dict[str, tuple[int, int]]:
    """What a parent tells a child: per origin, the envelopes applied and the checkpoint kept."""
    cps = checkpoint_sizes(log)
    return {origin: (size, cps.get(origin, 0)) for origin, size in tree_sizes(log).items()}


@dataclass
class Outbox:
    """This node's log as a queue to one stream: per-origin positions the stream holds, and the
    next batch after them (envelopes in sequence, then every checkpoint they reach: proofs and
    the backup centre need each one)."""

    subject: Callable[[str, str], str]  # (kind, origin) -> subject
    max_bytes: int = 1_000_000  # the largest message the stream takes
    sent: dict[str, int] = field(default_factory=dict)
    sent_cp: dict[str, int] = field(default_factory=dict)
    # origins that cannot go on: an envelope too large for the stream, never retried
    blocked: dict[str, Text] = field(default_factory=dict)

    def next_batch(self, log: EventLog, limit: int) -> list[tuple[Message, str, int]]:
        """At most ``limit`` messages: per origin, the envelopes after those the stream holds
        and the checkpoints they reach (so a receiver fetching ``limit`` at a time gets the
        checkpoints with their envelopes, not one fetch later)."""
        batch: list[tuple[Message, str, int]] = []
        for origin, size in sorted(tree_sizes(log).items()):
            room = limit - len(batch)
            if room <= 0:
                break
            if origin in self.blocked:
                continue
            after = self.sent.get(origin, 0)
            notes = [
                (int(r["size"]), str(r["note"]))
                for r in log.query(
                    "SELECT size, note FROM checkpoints WHERE origin = ? AND size > ?"
                    " AND size <= ? ORDER BY size LIMIT ?",
                    (origin, self.sent_cp.get(origin, 0), min(size, after + room), room),
                )
            ]
            count = min(size - after, room)
            reached = sum(1 for n, _note in notes if n <= after + count)
            if count + reached > room:  # fewer envelopes (one at least), fewer checkpoints
                count = max(room - reached, min(size - after, 1))
            if count > 0:
                rows = log.query(
                    "SELECT seq, raw FROM envelopes WHERE origin = ? AND seq > ?"
                    " ORDER BY seq LIMIT ?",
                    (origin, after, count),
                )
                for r in rows:
                    seq = int(r["seq"])
                    if len(r["raw"]) > self.max_bytes:
                        self.blocked[origin] = _(
                            "envelope {origin}:{seq} is {size} bytes, more than the {limit} the"
                            " stream takes: {origin} stops here",
                            origin=origin,
                            seq=seq,
                            size=len(r["raw"]),
                            limit=self.max_bytes,
                        )
                        logger.error(self.blocked[origin])
                        break
                    message = Message(
                        self.subject("env", origin),
                        envelope_id(origin, seq, bytes(r["raw"])),
                        bytes(r["raw"]),
                    )
                    batch.append((message, origin, seq))
                after = batch[-1][2] if batch and batch[-1][1] == origin else after
            for n, note in notes:  # in order: one left for the next batch leaves the rest
                if n > after or len(batch) >= limit:
                    break
                data = note.encode()
                message = Message(self.subject("cp", origin), checkpoint_id(origin, n, data), data)
                batch.append((message, origin, -n))
        return batch

    async def publish(self, nc: Connection, batch: list[tuple[Message, str, int]]) -> None:
        """Publish a batch and advance past what the server acknowledged; raise if not all
        was (the connection is started again); with nothing to publish, wait a moment."""
        if not batch:
            await asyncio.sleep(IDLE)
            return
        done = await nc.publish([m for m, _origin, _seq in batch])
        self.acknowledged(batch[:done])
        if done < len(batch):
            raise TransportError(_("{count} publishes not acknowledged", count=len(batch) - done))

    def acknowledged(self, batch: list[tuple[Message, str, int]]) -> None:
        for _message, origin, seq in batch:
            if seq > 0:
                self.sent[origin] = max(self.sent.get(origin, 0), seq)
            else:
                self.sent_cp[origin] = max(self.sent_cp.get(origin, 0), -seq)
