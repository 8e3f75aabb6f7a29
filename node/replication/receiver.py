"""The receiver: takes what the children publish on this tier's stream through the verified
import, and answers their "what have you applied" and "give me back my history" requests."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgpack

from domain.codes import in_subtree
from domain.i18n import _
from federation.proof import chain_documents
from federation.transport import (
    HISTORY,
    SUBJECTS,
    UP,
    Connection,
    ConsumerSpec,
    Delivery,
    Transport,
    TransportError,
    child_of,
    kind_of,
    pack_positions,
    wants_limits,
)
from node.keys import documents_from_above, key_documents
from node.replication.importer import Importer
from node.replication.outbox import applied_positions
from node.replication.part import ACK_WAIT, Call, Part, ack, item, now_ms
from node.service import Node
from node.store import EventLog

LOOK_EVERY = 5.0  # seconds with nothing to take between looks at whether the stream is there

log = logging.getLogger("anjian.federation")

HISTORY_PAGE = 500  # envelopes per history answer (well inside NATS's 1 MB message limit)


class Taker(Part):
    """Takes a stream with a durable pull consumer through the verified import, acknowledging
    each message once what it carried is stored."""

    stream = UP
    durable = "anjian-receiver"

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
        self.held = False
        self.busy_until = 0.0  # while a backlog waits in the stream, and a second after
        self.taking_until = 0.0  # while full batches arrive, and a second after
        self.unacked: list[Delivery] = []  # delivered, carrying envelopes that wait in memory
        self.kept_at = 0.0  # when their acknowledgement wait last started again

    def note(self, msgs: list[Delivery], batch: int) -> None:
        """What the views and the archive yield to, each for a second after: a backlog waiting
        in the stream behind these messages (busy: the views trail it), and full batches
        arriving (taking: the tier applies all it can, and the archive trails it)."""
        now = time.monotonic()
        if len(msgs) == batch:
            self.taking_until = now + 1.0
        self.busy_until = now + 1.0 if msgs[-1].pending >= batch else 0.0

    def busy(self) -> bool:
        return time.monotonic() < self.busy_until

    def taking(self) -> bool:
        return time.monotonic() < self.taking_until

    async def consume(self, nc: Connection) -> None:
        await nc.ensure_stream(self.stream)
        sub = await nc.consumer(
            ConsumerSpec(
                self.stream,
                self.durable,
                SUBJECTS[self.stream],
                ack_wait=ACK_WAIT,
                max_ack_pending=-1,
            )
        )
        batch = self.node.config.federation.batch
        self.unacked = []  # a new connection: what the last one left unacknowledged comes again
        looked = time.monotonic()
        while True:
            msgs = await sub.fetch(batch, 0.5)
            if msgs:
                self.note(msgs, batch)
                await ack(await self.take(msgs, more=len(msgs) == batch))
            elif self.held:
                await ack(await self.take([], more=False))
            elif time.monotonic() - looked >= LOOK_EVERY:
                looked = time.monotonic()
                await self.still_there(nc)
            await self.keep()

    async def still_there(self, nc: Connection) -> None:
        """The stream, made again if its server lost its store (a disk replaced, a store
        deleted): a server restarted that way answers a fetch from a consumer that no longer
        exists with nothing (nats-server 2.9), and what the children publish meanwhile has no
        stream to go to. Raises TransportError: the session starts again and makes both."""
        if await nc.stream_info(self.stream) is None:
            raise TransportError(
                _(
                    "stream {stream} is gone (its server lost its store?): making it again",
                    stream=self.stream,
                )
            )

    async def keep(self) -> None:
        """Say the messages whose envelopes wait in memory (for a checkpoint) are still being
        worked on, a third of the acknowledgement wait at the latest after it last started:
        held longer than the wait, they would otherwise be delivered again and again."""
        now = time.monotonic()
        if not self.unacked or now - self.kept_at < ACK_WAIT / 3:
            return
        self.kept_at = now
        for m in self.unacked:
            await m.extend()

    async def take(self, msgs: list[Delivery], more: bool) -> list[Delivery]:
        """Apply what the messages carry; returns the messages to acknowledge now."""
        return self.settled(msgs, await self.apply(self.items(msgs), more))

    def items(self, msgs: list[Delivery]) -> list[tuple[str, bytes]]:
        """What the messages carry, for the verified import."""
        return [item(m.subject, m.data) for m in msgs]

    def settled(self, msgs: list[Delivery], unsettled: set[bytes]) -> list[Delivery]:
        """Of the messages delivered so far and not acknowledged, those whose content is now
        applied or kept; the others (envelopes waiting in memory for a checkpoint) wait."""
        delivered = self.unacked + msgs
        self.unacked = [m for m in delivered if m.data in unsettled]
        return [m for m in delivered if m.data not in unsettled]

    async def apply(self, items: list[tuple[str, bytes]], more: bool) -> set[bytes]:
        """Take items through the verified import; returns the envelope bytes waiting in
        memory (their messages are not to be acknowledged yet)."""
        summary = await self.write(self.importer.take, items, hold_tail=more, tail_in_memory=True)
        unsettled: set[bytes] = summary["unsettled"]
        self.held = bool(summary["held"]) or bool(unsettled)
        for q in summary["quarantined"]:
            log.warning(
                _(
                    "quarantined {origin}:{seq} ({reason})",
                    origin=q["origin"],
                    seq=q["seq"],
                    reason=q["reason"],
                )
            )
        return unsettled


class Receiver(Taker):
    """Consumes the children's envelopes and checkpoints from this tier's own stream and
    applies them; answers the children's "what have you applied" and "give me back my
    history" requests."""

    name = "receiver"

    async def session(self, nc: Connection) -> None:
        answering = await nc.serve("anjian.applied.*", self._answer)
        history = await nc.serve(f"{HISTORY}.*", self._history)
        try:
            await self.consume(nc)
        finally:
            with contextlib.suppress(Exception):
                await answering.stop()
                await history.stop()

    async def take(self, msgs: list[Delivery], more: bool) -> list[Delivery]:
        ready = await super().take(msgs, more)
        if msgs:
            await self.write(
                record_routes,
                self.node.log,
                [m.subject for m in msgs],
                now_ms(),
                self.importer.trust().regions,
            )
        return ready

    async def _answer(self, subject: str, data: bytes) -> bytes:
        """A child's uplink asks what this tier applied (and, if it reads them, this tier's
        limits: an envelope over its max_envelope would be refused here)."""
        positions = await self.read(applied_positions, self.node.log)
        limit = self.node.config.federation.max_envelope if wants_limits(data) else None
        return pack_positions(positions, limit)

    async def _history(self, subject: str, data: bytes) -> bytes:
        """A recovering child asks for the history of the origins it relayed
        (docs/architecture.md §8: nothing acknowledged is lost, even with the child's disk)."""
        try:
            request = msgpack.unpackb(data)
            page = await self.read(history_page, self.node, subject.split(".")[-1], request)
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as e:
            # said in the parent's language: the child shows it as it comes
            page = {"error": str(_("a history request is {{origin, after}}: {error}", error=e))}
        return msgpack.packb(page)  # type: ignore[no-any-return]


def history_page(node: Node, child: str, request: dict[str, Any]) -> dict[str, Any]:
    """``{"origin": None}``: the origins ``child`` relayed (itself included) with the size
    applied here, and the key documents that chain their keys to the root.
    ``{"origin": O, "after": N}``: the next envelopes of one of those origins after N and the
    checkpoints among them. Nothing of origins the child does not relay."""
    log_ = node.log
    origin, after = request["origin"], int(request.get("after", 0))
    origins = {
        str(r["origin"]): int(r["size"])
        for r in log_.query(
            "SELECT m.origin, m.size FROM merkle m LEFT JOIN routes r ON r.origin = m.origin"
            " WHERE r.child = ? OR m.origin = ?",
            (child, child),
        )
    }
    if origin is None:
        docs = documents_from_above(lambda sql, *p: log_.query(sql, p))
        docs += key_documents(node.config)
        return {"origins": origins, "documents": chain_documents(docs, origins)}
    if origin not in origins or not 0 <= after < 2**62:
        return {
            "error": str(
                _(
                    "{child} relays no origin {origin!r} here, or after is out of range",
                    child=child,
                    origin=origin,
                )
            )
        }
    envelopes = log_.envelopes(after, HISTORY_PAGE, origin=str(origin))
    notes = log_.query(
        "SELECT note FROM checkpoints WHERE origin = ? AND size > ? AND size <= ? ORDER BY size",
        (origin, after, after + len(envelopes)),
    )
    return {"envelopes": envelopes, "checkpoints": [str(n["note"]) for n in notes]}


def record_routes(log: EventLog, subjects: list[str], at: int, regions: Mapping[str, str]) -> None:
    """Remember which child relays which origin (for the per-child status and the history a
    recovering child may ask for). Only what the certified hierarchy allows is kept: a child
    relays itself and origins certified inside its own area; a subject naming anything else
    (an origin never certified, a county of another subtree) is not a route."""
    counts: dict[tuple[str, str], int] = {}
    for subject in subjects:
        origin, child = kind_of(subject)[1], child_of(subject)
        area, region = regions.get(child), regions.get(origin)
        if area is None or region is None or not in_subtree(area, region):
            continue
        counts[origin, child] = counts.get((origin, child), 0) + 1
    log.write_many(
        "INSERT INTO routes (origin, child, messages, last_seen) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (origin) DO UPDATE SET child = excluded.child,"
        " messages = routes.messages + excluded.messages, last_seen = excluded.last_seen",
        [(origin, child, n, at) for (origin, child), n in counts.items()],
    )
