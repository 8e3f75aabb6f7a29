"""The downward stream: what a subtree must know (certifications, rotations, revocations, and
licences of its area), published by each tier on its own NATS and taken by its children, each
reading only its own: the key documents, and the licences of its area (its subjects)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

from domain.i18n import _
from federation.envelope import parse
from federation.transport import (
    DOWN,
    DOWN_ALL,
    Connection,
    ConsumerSpec,
    Delivery,
    Message,
    Transport,
    TransportError,
    down_area,
    down_durables,
    down_subject,
    envelope_id,
)
from node.replication.above import DOWN_PREFIXES, take_from_above
from node.replication.importer import Importer
from node.replication.part import ACK_WAIT, IDLE, Call, Part, ack
from node.service import Node
from node.store import EventLog

log = logging.getLogger("anjian.federation")

DOWN_TYPES = ("keys.document_recorded/1",)  # what a subtree must know, with licences


# -- down: what a subtree must know ----------------------------------------------------------
def down_batch(node: Node, limit: int) -> tuple[list[Message], dict[str, int]]:
    """The next envelopes for the downward stream: this node's own key documents and licence
    events (with the licence's division in the subject, so each child reads its area's), then
    everything that came down from above, relayed as it came. Returns the messages and the
    scan positions to remember once they are published."""
    log = node.log
    me = node.config.node.origin
    scanned = {
        str(r["origin"]): int(r["scanned"])
        for r in log.query("SELECT origin, scanned FROM down_published")
    }
    messages: list[Message] = []
    after = scanned.get(me, 0)
    rows = log.query(
        "SELECT seq, raw FROM envelopes WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
        (me, after, limit),
    )
    for r in rows:
        env = parse(bytes(r["raw"]))
        if env.type in DOWN_TYPES or env.type.startswith(DOWN_PREFIXES):
            messages.append(
                Message(
                    down_subject(me, _division(node, env)),
                    envelope_id(me, env.seq, env.raw),
                    env.raw,
                )
            )
    new = {me: int(rows[-1]["seq"])} if rows else {}
    above = scanned.get("^", 0)
    rows = log.query(
        "SELECT origin, seq, raw, division, verified FROM downward WHERE verified > ?"
        " ORDER BY verified LIMIT ?",
        (above, limit),
    )
    for r in rows:
        origin, seq, raw = str(r["origin"]), int(r["seq"]), bytes(r["raw"])
        messages.append(
            Message(down_subject(origin, str(r["division"])), envelope_id(origin, seq, raw), raw)
        )
    if rows:
        new["^"] = int(rows[-1]["verified"])
    return messages, new


def _division(node: Node, env: Any) -> str:
    """The division a downward envelope concerns ("all" for key documents)."""
    if not env.type.startswith(DOWN_PREFIXES):
        return "all"
    division = env.payload.get("division")
    if isinstance(division, str) and division.isdigit():
        return division
    with contextlib.suppress(Exception):
        licence = node.log.load(UUID(env.aggregate))
        found = getattr(licence, "division", "")
        if found:
            return str(found)
    return "all"


def remember_scanned(log: EventLog, positions: dict[str, int]) -> None:
    log.write_many(
        "INSERT INTO down_published (origin, scanned) VALUES (?, ?)"
        " ON CONFLICT (origin) DO UPDATE SET scanned = excluded.scanned",
        list(positions.items()),
    )


class DownPublisher(Part):
    """Publishes on this tier's own downward stream."""

    name = "down"

    async def session(self, nc: Connection) -> None:
        await nc.ensure_stream(DOWN)
        batch_size = self.node.config.federation.batch
        while True:
            messages, positions = await self.read(down_batch, self.node, batch_size)
            if messages:
                done = await nc.publish(messages)
                if done < len(messages):
                    raise TransportError(
                        _("{count} publishes not acknowledged", count=len(messages) - done)
                    )
            if positions:
                await self.write(remember_scanned, self.node.log, positions)
            else:
                await asyncio.sleep(IDLE)


class DownConsumer(Part):
    """Consumes the parent's downward stream as a client, with two durable consumers named
    after this node: the key documents (``anjian.down.env.*.all``) and its area's licences
    (``down_area``), the only ones its parent's server lets it make; keeps, after verifying
    each envelope's signature, what comes from the tiers above."""

    name = "downlink"

    def __init__(
        self,
        node: Node,
        url: str,
        read: Call,
        write: Call,
        importer: Importer,
        transport: Transport | None = None,
    ) -> None:
        super().__init__(node, url, read, write, transport)
        self.importer = importer

    async def session(self, nc: Connection) -> None:
        own = self.node.config.node
        documents, area = down_durables(own.origin)
        subs = [
            await nc.consumer(ConsumerSpec(DOWN, documents, DOWN_ALL, ack_wait=ACK_WAIT)),
            await nc.consumer(ConsumerSpec(DOWN, area, down_area(own.region), ack_wait=ACK_WAIT)),
        ]
        batch = self.node.config.federation.batch
        while True:
            # both at once; the key documents first (a licence may need a key they certify)
            fetched = await asyncio.gather(*(sub.fetch(batch, 1.0) for sub in subs))
            msgs: list[Delivery] = [m for found in fetched for m in found]
            if msgs:
                items = [(m.subject, m.data) for m in msgs]
                summary = await self.write(take_from_above, self.importer, items)
                for q in summary["quarantined"]:
                    log.warning(
                        _(
                            "quarantined from above {origin}:{seq} ({reason})",
                            origin=q["origin"],
                            seq=q["seq"],
                            reason=q["reason"],
                        )
                    )
                await ack(msgs)


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
