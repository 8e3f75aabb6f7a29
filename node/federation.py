"""Federation at run time (DESIGN.md §6): the uplink that publishes this node's log (its own
envelopes and those it relays) to its parent's JetStream, the receiver that takes what the
children publish through the verified import, the downward stream of what a subtree must know,
and the national centre's archive stream. Each part runs as an asyncio task of ``anjian
serve``; storage work goes through the node's writer thread (and reads through its readers),
never on the event loop. With no NATS reachable, each part logs a warning and keeps trying
while the node works offline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgpack
from eventsourcing.persistence import IntegrityError
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from domain.codes import in_subtree
from federation.envelope import check_signature, parse
from federation.errors import VerificationError
from federation.proof import chain_documents
from federation.transport import (
    ARCHIVE,
    DOWN,
    HISTORY,
    SUBJECTS,
    TRANSPORT_ERRORS,
    UP,
    Message,
    applied_subject,
    checkpoint_id,
    child_of,
    connect,
    ensure_stream,
    envelope_id,
    kind_of,
    pack_positions,
    publish,
    unpack_positions,
    up_subject,
)
from node.export import documents_from_above, key_documents
from node.importer import Importer, storable, stored_event
from node.service import Node
from node.store import EventLog

log = logging.getLogger("anjian.federation")
T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]  # runs a storage function in the right thread

ASK_TIMEOUT = 2.0  # seconds to wait for the parent's applied positions
REASK = 10.0  # seconds between asks while publishing (to see gaps the parent holds)
IDLE = 0.2  # seconds between looks at the log when there is nothing to publish
RETRY = (0.25, 0.5, 1.0)  # seconds between connection attempts (the last repeats): a line
# back in service is used within a second, and a connection attempt costs next to nothing
AFTER_FAULT = 2.0  # seconds before starting again after an error that is not the connection's
TRAIL = 5.0  # seconds projections and the archive may trail a backlog being applied
HISTORY_PAGE = 500  # envelopes per history answer (well inside NATS's 1 MB message limit)
ACK_WAIT = 10.0  # seconds before a message delivered but not acknowledged is delivered again
DOWN_TYPES = ("keys.document_recorded/1",)  # what a subtree must know, with licences
DOWN_PREFIXES = ("licence.",)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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
    sent: dict[str, int] = field(default_factory=dict)
    sent_cp: dict[str, int] = field(default_factory=dict)

    def next_batch(self, log: EventLog, limit: int) -> list[tuple[Message, str, int]]:
        """At most ``limit`` messages: per origin, the envelopes after those the stream holds
        and the checkpoints they reach (so a receiver fetching ``limit`` at a time gets the
        checkpoints with their envelopes, not one fetch later)."""
        batch: list[tuple[Message, str, int]] = []
        for origin, size in sorted(tree_sizes(log).items()):
            room = limit - len(batch)
            if room <= 0:
                break
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
            reached = sum(1 for n, _ in notes if n <= after + count)
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
                    message = Message(
                        self.subject("env", origin), envelope_id(origin, seq), bytes(r["raw"])
                    )
                    batch.append((message, origin, seq))
                after = int(rows[-1]["seq"]) if rows else after
            for n, note in notes:  # in order: one left for the next batch leaves the rest
                if n > after or len(batch) >= limit:
                    break
                message = Message(
                    self.subject("cp", origin), checkpoint_id(origin, n), note.encode()
                )
                batch.append((message, origin, -n))
        return batch

    async def publish(self, js: JetStreamContext, batch: list[tuple[Message, str, int]]) -> None:
        """Publish a batch and advance past what the server acknowledged; raise if not all
        was (the connection is started again); with nothing to publish, wait a moment."""
        if not batch:
            await asyncio.sleep(IDLE)
            return
        done = await publish(js, [m for m, _, _ in batch])
        self.acknowledged(batch[:done])
        if done < len(batch):
            raise TimeoutError(f"{len(batch) - done} publishes not acknowledged")

    def acknowledged(self, batch: list[tuple[Message, str, int]]) -> None:
        for _, origin, seq in batch:
            if seq > 0:
                self.sent[origin] = max(self.sent.get(origin, 0), seq)
            else:
                self.sent_cp[origin] = max(self.sent_cp.get(origin, 0), -seq)


class Part:
    """One long-running federation task: connects, runs a session, and on any transport
    failure closes the connection and starts again, forever, logging what it waits for."""

    name = "federation"

    def __init__(self, node: Node, url: str, read: Call, write: Call) -> None:
        self.node, self.url, self.read, self.write = node, url, read, write
        self.connected = False
        self.last_error: str | None = None

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                nc = await connect(self.url, f"anjian {self.node.config.node.origin} {self.name}")
            except TRANSPORT_ERRORS as e:
                if attempt == 0:
                    log.warning(
                        "%s: NATS at %s is not reachable (%s); the node works offline and "
                        "keeps trying",
                        self.name,
                        self.url,
                        _describe(e),
                    )
                self.last_error = _describe(e)
                await asyncio.sleep(RETRY[min(attempt, len(RETRY) - 1)])
                attempt += 1
                continue
            attempt = 0
            self.connected = True
            log.info("%s: connected to %s", self.name, self.url)
            try:
                await self.session(nc)
            except TRANSPORT_ERRORS as e:
                self.last_error = _describe(e)
                log.warning("%s: connection to %s lost (%s); reconnecting", self.name, self.url, e)
            except VerificationError as e:  # e.g. no trust chain installed yet
                self.last_error = str(e)
                log.error("%s: %s; trying again in %ss", self.name, e, AFTER_FAULT)
                await asyncio.sleep(AFTER_FAULT)
            except Exception as e:  # a fault of ours: logged in full, the node keeps serving
                self.last_error = _describe(e)
                log.exception("%s stopped; starting again in %ss", self.name, AFTER_FAULT)
                await asyncio.sleep(AFTER_FAULT)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await nc.close()
            await asyncio.sleep(RETRY[0])

    async def session(self, nc: Client) -> None:
        raise NotImplementedError


class Uplink(Part):
    """Publishes every envelope and checkpoint in this node's log to the parent's stream,
    resuming from what the parent has durably applied; recording never waits for it."""

    name = "uplink"

    def __init__(self, node: Node, url: str, read: Call, write: Call) -> None:
        super().__init__(node, url, read, write)
        me = node.config.node.origin
        self.outbox = Outbox(lambda kind, origin: up_subject(me, kind, origin))
        self.parent_applied: dict[str, tuple[int, int]] = {}
        self.asked_at: int | None = None

    async def ask(self, nc: Client) -> dict[str, tuple[int, int]] | None:
        me = self.node.config.node.origin
        try:
            reply = await nc.request(applied_subject(me), me.encode(), timeout=ASK_TIMEOUT)
            positions = unpack_positions(reply.data)
        except TRANSPORT_ERRORS as e:
            self.last_error = f"the parent node did not answer: {_describe(e)}"
            return None
        except ValueError as e:
            self.last_error = str(e)
            log.error("uplink: %s", e)
            return None
        self.parent_applied, self.asked_at = positions, now_ms()
        return positions

    async def session(self, nc: Client) -> None:
        js = nc.jetstream()
        waited = 0
        while (positions := await self.ask(nc)) is None:
            if waited % 30 == 0:  # now and then, not every attempt
                log.warning("uplink: %s; waiting before publishing", self.last_error)
            # the parent's receiver is often a moment behind its NATS (both just restarted):
            # ask again soon, then every ASK_TIMEOUT
            await asyncio.sleep(min(0.1 * 2 ** min(waited, 5), ASK_TIMEOUT))
            waited += 1
        self.outbox.sent = {o: p[0] for o, p in positions.items()}
        self.outbox.sent_cp = {o: p[1] for o, p in positions.items()}
        last_ask = time.monotonic()
        batch_size = self.node.config.federation.batch
        while True:
            batch = await self.read(self.outbox.next_batch, self.node.log, batch_size)
            await self.outbox.publish(js, batch)
            if time.monotonic() - last_ask > REASK:
                previous = self.parent_applied
                last_ask = time.monotonic()
                if (positions := await self.ask(nc)) is not None:
                    self._rewind_stalled(previous, positions)

    def _rewind_stalled(
        self, previous: dict[str, tuple[int, int]], now: dict[str, tuple[int, int]]
    ) -> None:
        """An origin the parent has not advanced since the last ask although more was
        published: what it lacks never reached it (a stream restored from an older copy, a
        message lost); publish again from what it holds (a gap is repaired, never skipped)."""
        for origin, sent in list(self.outbox.sent.items()):
            applied = now.get(origin, (0, 0))[0]
            if applied < sent and previous.get(origin, (0, 0))[0] == applied:
                log.warning(
                    "uplink: the parent holds %s at %d although %d were published; "
                    "publishing again from there",
                    origin,
                    applied,
                    sent,
                )
                self.outbox.sent[origin] = applied
                self.outbox.sent_cp[origin] = now.get(origin, (0, 0))[1]

    def state(self, sizes: dict[str, int]) -> dict[str, Any]:
        return {
            "parent": self.url,
            "connected": self.connected,
            "last_error": self.last_error,
            "asked_at": self.asked_at,
            "origins": {
                origin: {
                    "recorded": size,
                    "published": self.outbox.sent.get(origin, 0),
                    "parent_applied": self.parent_applied.get(origin, (0, 0))[0],
                    "backlog": size - self.parent_applied.get(origin, (0, 0))[0],
                }
                for origin, size in sorted(sizes.items())
            },
        }


class Taker(Part):
    """Takes a stream with a durable pull consumer through the verified import, acknowledging
    each message once what it carried is stored."""

    stream = UP
    durable = "anjian-receiver"

    def __init__(self, node: Node, url: str, read: Call, write: Call, importer: Importer) -> None:
        super().__init__(node, url, read, write)
        self.importer = importer
        self.held = False
        self.busy_until = 0.0  # while a backlog waits in the stream, and a second after
        self.taking_until = 0.0  # while full batches arrive, and a second after
        self.unacked: list[Msg] = []  # delivered, carrying envelopes that wait in memory

    def note(self, msgs: list[Msg], batch: int) -> None:
        """What the views and the archive yield to, each for a second after: a backlog waiting
        in the stream behind these messages (busy: the views trail it), and full batches
        arriving (taking: the tier applies all it can, and the archive trails it)."""
        now = time.monotonic()
        if len(msgs) == batch:
            self.taking_until = now + 1.0
        self.busy_until = now + 1.0 if msgs[-1].metadata.num_pending >= batch else 0.0

    def busy(self) -> bool:
        return time.monotonic() < self.busy_until

    def taking(self) -> bool:
        return time.monotonic() < self.taking_until

    async def consume(self, js: JetStreamContext) -> None:
        await ensure_stream(js, self.stream)
        sub = await js.pull_subscribe(
            SUBJECTS[self.stream],
            durable=self.durable,
            stream=self.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT,
                max_deliver=-1,
                max_ack_pending=-1,
            ),
        )
        batch = self.node.config.federation.batch
        self.unacked = []  # a new connection: what the last one left unacknowledged comes again
        while True:
            msgs = await _fetch(sub, batch, timeout=0.5)
            if msgs:
                self.note(msgs, batch)
                await _ack(await self.take(msgs, more=len(msgs) == batch))
            elif self.held:
                await _ack(await self.take([], more=False))

    async def take(self, msgs: list[Msg], more: bool) -> list[Msg]:
        """Apply what the messages carry; returns the messages to acknowledge now."""
        return self.settled(msgs, await self.apply(self.items(msgs), more))

    def items(self, msgs: list[Msg]) -> list[tuple[str, bytes]]:
        """What the messages carry, for the verified import."""
        return [_item(m.subject, m.data) for m in msgs]

    def settled(self, msgs: list[Msg], unsettled: set[bytes]) -> list[Msg]:
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
            log.warning("quarantined %s:%s (%s)", q["origin"], q["seq"], q["reason"])
        return unsettled


class Receiver(Taker):
    """Consumes the children's envelopes and checkpoints from this tier's own stream and
    applies them; answers the children's "what have you applied" and "give me back my
    history" requests."""

    name = "receiver"

    async def session(self, nc: Client) -> None:
        answering = await nc.subscribe("anjian.applied.*", cb=self._answer)
        history = await nc.subscribe(f"{HISTORY}.*", cb=self._history)
        try:
            await self.consume(nc.jetstream())
        finally:
            with contextlib.suppress(Exception):
                await answering.unsubscribe()
                await history.unsubscribe()

    async def take(self, msgs: list[Msg], more: bool) -> list[Msg]:
        ready = await super().take(msgs, more)
        if msgs:
            await self.write(record_routes, self.node.log, [m.subject for m in msgs], now_ms())
        return ready

    async def _answer(self, msg: Msg) -> None:
        try:
            positions = await self.read(applied_positions, self.node.log)
            await msg.respond(pack_positions(positions))
        except TRANSPORT_ERRORS as e:
            log.info("receiver: could not answer %s: %s", msg.subject, e)

    async def _history(self, msg: Msg) -> None:
        """A recovering child asks for the history of the origins it relayed (DESIGN.md §8:
        nothing acknowledged is lost, even with the child's disk)."""
        try:
            request = msgpack.unpackb(msg.data)
            page = await self.read(history_page, self.node, msg.subject.split(".")[-1], request)
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as e:
            page = {"error": f"a history request is {{origin, after}}: {e}"}
        try:
            await msg.respond(msgpack.packb(page))
        except TRANSPORT_ERRORS as e:
            log.info("receiver: could not answer %s: %s", msg.subject, e)


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
        return {"error": f"{child} relays no origin {origin!r} here, or after is out of range"}
    envelopes = log_.envelopes(after, HISTORY_PAGE, origin=str(origin))
    notes = log_.query(
        "SELECT note FROM checkpoints WHERE origin = ? AND size > ? AND size <= ? ORDER BY size",
        (origin, after, after + len(envelopes)),
    )
    return {"envelopes": envelopes, "checkpoints": [str(n["note"]) for n in notes]}


async def _fetch(sub: JetStreamContext.PullSubscription, batch: int, timeout: float) -> list[Msg]:
    """Up to ``batch`` messages from a pull subscription; none if none came in ``timeout``."""
    try:
        return await sub.fetch(batch, timeout=timeout)
    except TimeoutError:
        return []


async def _ack(msgs: list[Msg]) -> None:
    """Acknowledge each message once what it carried is durably kept. (Not AckPolicy.ALL:
    acknowledging the last of a batch would also settle messages that were delivered to a
    receiver killed before it kept them, and they would never be delivered again.)"""
    for m in msgs:
        await m.ack()


def _item(subject: str, data: bytes) -> tuple[str, bytes]:
    kind, _ = kind_of(subject)
    return (kind or f"message on {subject}", data)


def record_routes(log: EventLog, subjects: list[str], at: int) -> None:
    """Remember which child relays which origin (for the per-child status)."""
    counts: dict[tuple[str, str], int] = {}
    for subject in subjects:
        key = (kind_of(subject)[1], child_of(subject))
        counts[key] = counts.get(key, 0) + 1
    log.write_many(
        "INSERT INTO routes (origin, child, messages, last_seen) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (origin) DO UPDATE SET child = excluded.child,"
        " messages = routes.messages + excluded.messages, last_seen = excluded.last_seen",
        [(origin, child, n, at) for (origin, child), n in counts.items()],
    )


class Taking(Protocol):
    def taking(self) -> bool: ...


class Archive(Part):
    """The national centre's whole log (every origin) on the archive stream of its own
    JetStream, for the backup centre to follow."""

    name = "archive"

    def __init__(
        self, node: Node, url: str, read: Call, write: Call, receiver: Taking | None = None
    ) -> None:
        super().__init__(node, url, read, write)
        self.outbox = Outbox(lambda kind, origin: f"anjian.archive.{kind}.{origin}")
        self.receiver = receiver

    async def _yield_to_receiver(self, last: float) -> None:
        """While a backlog from below is being applied, the archive trails it (one batch every
        TRAIL seconds at least) and catches up after: applying comes first on a busy centre."""
        while (
            self.receiver is not None and self.receiver.taking() and time.monotonic() - last < TRAIL
        ):
            await asyncio.sleep(0.2)

    async def session(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_stream(js, ARCHIVE)
        self.outbox.sent, self.outbox.sent_cp = {}, {}  # read again from the stream
        batch_size = self.node.config.federation.batch
        last = 0.0
        while True:
            await self._yield_to_receiver(last)
            last = time.monotonic()
            batch = await self.read(self.outbox.next_batch, self.node.log, batch_size)
            new = {origin for _, origin, _ in batch} - set(self.outbox.sent)
            for origin in new:  # first seen since the start: where the archive holds it
                self.outbox.sent[origin] = await _last_seq(
                    js, ARCHIVE, self.outbox.subject("env", origin)
                )
                self.outbox.sent_cp[origin] = await _last_seq(
                    js, ARCHIVE, self.outbox.subject("cp", origin)
                )
            if not new:
                await self.outbox.publish(js, batch)


async def _last_seq(js: JetStreamContext, stream: str, subject: str) -> int:
    """The sequence (or checkpoint size) of the last message on a subject, from its id."""
    try:
        msg = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return 0
    msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
    return int(msg_id.rsplit(":", 1)[-1]) if msg_id else 0


# -- down: what a subtree must know ----------------------------------------------------------
def down_batch(node: Node, limit: int) -> tuple[list[Message], dict[str, int]]:
    """The next envelopes for the downward stream: this node's own key documents and licence
    events (with the licence's division in the subject, so each child keeps its area's), then
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
                Message(down_subject(me, _division(node, env)), envelope_id(me, env.seq), env.raw)
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
            Message(down_subject(origin, str(r["division"])), envelope_id(origin, seq), raw)
        )
    if rows:
        new["^"] = int(rows[-1]["verified"])
    return messages, new


def down_subject(origin: str, division: str) -> str:
    return f"anjian.down.env.{origin}.{division}"


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

    async def session(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_stream(js, DOWN)
        batch_size = self.node.config.federation.batch
        while True:
            messages, positions = await self.read(down_batch, self.node, batch_size)
            if messages:
                done = await publish(js, messages)
                if done < len(messages):
                    raise TimeoutError(f"{len(messages) - done} publishes not acknowledged")
            if positions:
                await self.write(remember_scanned, self.node.log, positions)
            else:
                await asyncio.sleep(IDLE)


class DownConsumer(Part):
    """Consumes the parent's downward stream as a client (a durable consumer named after this
    node) and keeps, after verifying each envelope's signature, what comes from the tiers
    above and concerns this node's area."""

    name = "downlink"

    def __init__(self, node: Node, url: str, read: Call, write: Call, importer: Importer) -> None:
        super().__init__(node, url, read, write)
        self.importer = importer

    async def session(self, nc: Client) -> None:
        js = nc.jetstream()
        me = self.node.config.node.origin
        sub = await js.pull_subscribe(
            SUBJECTS[DOWN],
            durable=f"anjian-down-{me}",
            stream=DOWN,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ACK_WAIT,
                max_deliver=-1,
            ),
        )
        batch = self.node.config.federation.batch
        while True:
            msgs = await _fetch(sub, batch, timeout=1.0)
            if msgs:
                items = [(m.subject, m.data) for m in msgs]
                summary = await self.write(take_from_above, self.importer, items)
                for q in summary["quarantined"]:
                    log.warning(
                        "quarantined from above %s:%s (%s)", q["origin"], q["seq"], q["reason"]
                    )
                await _ack(msgs)


def take_from_above(importer: Importer, items: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Verify and keep downward envelopes (DESIGN.md §6 "Down"). Each envelope stands on its
    own signature: the downward stream carries a selection of each tier's log, so there is no
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


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


# -- the federation view ----------------------------------------------------------------------
def federation_view(node: Node, now: int) -> dict[str, Any]:
    """Per origin this node holds from others: applied sequence, what waits (pending), lag in
    events (the highest sequence known from envelopes or checkpoints, less the applied) and in
    seconds (the recording time of the newest envelope waiting, less that of the last applied;
    0 when nothing waits), quarantined and unknown-type counts; and per child: the origins it
    relays, messages and when it was last heard from."""
    log = node.log
    me = node.config.node.origin
    sizes = tree_sizes(log)
    pending = {
        str(r["origin"]): (int(r["n"]), int(r["top"]))
        for r in log.query(
            "SELECT origin, COUNT(*) AS n, MAX(seq) AS top FROM import_pending GROUP BY origin"
        )
    }
    announced = {
        str(r["origin"]): int(r["top"])
        for r in log.query(
            "SELECT origin, MAX(size) AS top FROM import_checkpoints GROUP BY origin"
        )
    }
    quarantined = {
        str(r["origin"]): int(r["n"])
        for r in log.query("SELECT origin, COUNT(*) AS n FROM quarantine GROUP BY origin")
    }
    stats = {
        str(r["origin"]): (int(r["unknown"]), int(r["last_at"]))
        for r in log.query("SELECT origin, unknown, last_at FROM origin_stats")
    }
    routes = {
        str(r["origin"]): (str(r["child"]), int(r["messages"]), int(r["last_seen"]))
        for r in log.query("SELECT origin, child, messages, last_seen FROM routes")
    }
    origins: dict[str, Any] = {}
    for origin in sorted((set(sizes) | set(pending) | set(quarantined)) - {me, "?"}):
        applied = sizes.get(origin, 0)
        waiting, top = pending.get(origin, (0, 0))
        unknown, last_at = stats.get(origin, (0, 0))
        lag_s = 0.0
        if waiting:
            newest = log.query(
                "SELECT raw FROM import_pending WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                (origin,),
            )
            lag_s = max(0.0, (parse(bytes(newest[0]["raw"])).at - last_at) / 1000)
        origins[origin] = {
            "applied": applied,
            "pending": waiting,
            "lag_events": max(top, announced.get(origin, 0), applied) - applied,
            "lag_seconds": lag_s,
            "last_recorded_at": last_at or None,
            "quarantined": quarantined.get(origin, 0),
            "unknown_types": unknown,
            "child": routes.get(origin, ("", 0, 0))[0] or None,
        }
    children: dict[str, Any] = {}
    for origin, (child, messages, seen) in routes.items():
        entry = children.setdefault(
            child, {"origins": [], "messages": 0, "last_seen": 0, "lag_events": 0, "pending": 0}
        )
        entry["origins"].append(origin)
        entry["messages"] += messages
        entry["last_seen"] = max(entry["last_seen"], seen)
        if origin in origins:
            entry["lag_events"] += origins[origin]["lag_events"]
            entry["pending"] += origins[origin]["pending"]
    down = log.query(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN verified > 0 THEN 1 ELSE 0 END) AS kept FROM downward"
    )[0]
    return {
        "origin": me,
        "tier": node.config.node.tier.value,
        "parent": node.config.node.parent,
        "nats": node.config.federation.nats,
        "origins": origins,
        "children": {
            c: {**v, "origins": sorted(v["origins"])} for c, v in sorted(children.items())
        },
        "quarantined": sum(quarantined.values()),
        "from_above": {
            "kept": int(down["kept"] or 0),
            "held": int(down["n"]) - int(down["kept"] or 0),
        },
        "as_of": now,
    }


# -- wiring ----------------------------------------------------------------------------------
