"""An in-process broker behind the transport port, for unit tests only (never in service): the
streams of SUBJECTS with wildcard subjects (``*``, ``>``) and a duplicate window by message id,
durable pull consumers delivering each message until it is acknowledged (again after
``ack_wait``), request-reply to served handlers. ``down = True`` makes every call fail with
TransportError, as a broker that went away would; ``refused`` (a reason) makes connecting fail
with Refused, as a server refusing the credentials would. Connections share the transport's
broker: one MemoryTransport is one server; each keeps the credentials it connected with. Not
modelled: retention, limits, max_ack_pending, permissions."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from domain.i18n import _
from federation.transport import (
    DUPLICATE_WINDOW,
    SUBJECTS,
    Connection,
    Consumer,
    ConsumerSpec,
    Credentials,
    Delivery,
    Handler,
    Message,
    Refused,
    Served,
    StreamState,
    Transport,
    TransportError,
    inbox,
)

POLL = 0.005  # seconds between looks for a message while a fetch waits


def matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` is one of ``pattern``'s (``*`` one token, ``>`` one or more)."""
    tokens, parts = pattern.split("."), subject.split(".")
    for i, token in enumerate(tokens):
        if token == ">":
            return len(parts) > i
        if i >= len(parts) or token not in ("*", parts[i]):
            return False
    return len(tokens) == len(parts)


@dataclass
class _Stored:
    seq: int
    subject: str
    msg_id: str
    data: bytes


@dataclass
class _Durable:
    subject: str
    ack_wait: float
    ack_all: bool
    cursor: int  # the last stream sequence delivered for the first time
    unacked: dict[int, float] = field(default_factory=dict)  # sequence -> redelivery time


@dataclass
class _Stream:
    name: str
    subject: str
    created: str
    messages: list[_Stored] = field(default_factory=list)
    ids: dict[str, float] = field(default_factory=dict)  # message id -> when it was stored
    durables: dict[str, _Durable] = field(default_factory=dict)


class MemoryTransport(Transport):
    """One in-process broker; ``connect`` gives connections to it (the url is not used)."""

    def __init__(self, duplicate_window: float = DUPLICATE_WINDOW) -> None:
        self.down = False
        self.refused: str | None = None
        self.duplicate_window = duplicate_window
        self.streams: dict[str, _Stream] = {}
        self.served: dict[int, tuple[str, Handler]] = {}
        self._ids = itertools.count(1)

    def check(self) -> None:
        if self.down:
            raise TransportError(_("the broker is down"))

    async def connect(
        self, url: str, name: str, credentials: Credentials | None = None
    ) -> MemoryConnection:
        self.check()
        if self.refused is not None:
            raise Refused(self.refused)
        return MemoryConnection(self, name, credentials or Credentials())

    def stream(self, name: str) -> _Stream:
        if name not in self.streams:
            raise TransportError(_("no stream {name}", name=name))
        return self.streams[name]

    def store(self, message: Message) -> bool:
        """Keep a message in the stream its subject belongs to; False if there is none."""
        for stream in self.streams.values():
            if matches(stream.subject, message.subject):
                now = time.monotonic()
                at = stream.ids.get(message.msg_id)
                if at is not None and now - at < self.duplicate_window:
                    return True  # a duplicate: acknowledged, not kept
                stream.ids[message.msg_id] = now
                seq = stream.messages[-1].seq + 1 if stream.messages else 1
                stream.messages.append(_Stored(seq, message.subject, message.msg_id, message.data))
                return True
        return False


class MemoryConnection(Connection):
    def __init__(
        self, broker: MemoryTransport, name: str, credentials: Credentials | None = None
    ) -> None:
        self.broker, self.name = broker, name
        self.credentials = credentials or Credentials()
        self.closed = False
        self.serving: set[int] = set()

    def check(self) -> None:
        if self.closed:
            raise TransportError(_("the connection is closed"))
        self.broker.check()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        self.check()
        handlers = [h for p, h in self.broker.served.values() if matches(p, subject)]
        # what nats-py says, in its words (the NATS adapter passes them on as they are)
        if not handlers:
            said = "nats: no responders available for request"  # not read by a person
            raise TransportError(said)
        if self.credentials.inbox != inbox(subject.rsplit(".", 1)[-1]):  # not answered
            raise TransportError("nats: timeout")  # not read by a person
        try:
            return await asyncio.wait_for(handlers[0](subject, data), timeout)
        except TimeoutError:
            raise TransportError("nats: timeout") from None  # not read by a person
        except Exception as e:  # the server's fault: the requester only sees no answer
            raise TransportError(_("no answer: {error}", error=repr(e))) from e

    async def serve(self, subject: str, handler: Handler) -> Served:
        self.check()
        key = next(self.broker._ids)
        self.broker.served[key] = (subject, handler)
        self.serving.add(key)
        return _Served(self, key)

    async def ensure_stream(self, name: str) -> None:
        self.check()
        if name not in self.broker.streams:
            made = f"{time.time_ns()}"
            self.broker.streams[name] = _Stream(name, SUBJECTS[name], made)

    async def publish(self, messages: Sequence[Message], timeout: float = 10.0) -> int:
        self.check()
        done = 0
        for m in messages:
            if not self.broker.store(m):
                break
            done += 1
        return done

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        self.check()
        s = self.broker.stream(spec.stream)
        if spec.durable in s.durables and s.durables[spec.durable].subject != spec.subject:
            del s.durables[spec.durable]  # another filter: made again
        if spec.durable not in s.durables:
            s.durables[spec.durable] = _Durable(
                spec.subject, spec.ack_wait or 30.0, spec.ack_all, spec.after
            )
        return _Consumer(self, s, spec.durable)

    async def delete_consumer(self, stream: str, durable: str) -> None:
        self.check()
        if stream in self.broker.streams:
            self.broker.streams[stream].durables.pop(durable, None)

    async def stream_info(self, name: str) -> StreamState | None:
        self.check()
        s = self.broker.streams.get(name)
        if s is None:
            return None
        last = s.messages[-1].seq if s.messages else 0
        return StreamState(messages=len(s.messages), last_seq=last, created=s.created)

    async def last_id(self, stream: str, subject: str) -> str | None:
        self.check()
        for m in reversed(self.broker.stream(stream).messages):
            if matches(subject, m.subject):
                return m.msg_id
        return None

    async def close(self) -> None:
        for key in self.serving:
            self.broker.served.pop(key, None)
        self.serving.clear()
        self.closed = True


class _Served(Served):
    def __init__(self, conn: MemoryConnection, key: int) -> None:
        self.conn, self.key = conn, key

    async def stop(self) -> None:
        self.conn.check()
        self.conn.broker.served.pop(self.key, None)
        self.conn.serving.discard(self.key)


class _Consumer(Consumer):
    def __init__(self, conn: MemoryConnection, stream: _Stream, durable: str) -> None:
        self.conn, self.stream, self.durable = conn, stream, durable

    def _state(self) -> _Durable:
        state = self.stream.durables.get(self.durable)
        if state is None:
            raise TransportError(_("consumer {durable} was deleted", durable=self.durable))
        return state

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            self.conn.check()
            found = self._take(batch)
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(POLL, max(deadline - time.monotonic(), 0.0)))

    def _take(self, batch: int) -> list[Delivery]:
        state = self._state()
        now = time.monotonic()
        due = sorted(seq for seq, at in state.unacked.items() if at <= now)[:batch]
        messages = self.stream.messages
        by_seq = {m.seq: m for m in messages}
        chosen = [by_seq[seq] for seq in due if seq in by_seq]
        mine = [m.seq for m in messages if matches(state.subject, m.subject)]
        for seq in mine[bisect.bisect_right(mine, state.cursor) :]:
            if len(chosen) >= batch:
                break
            chosen.append(by_seq[seq])
            state.cursor = seq
        delivered: list[Delivery] = []
        for m in chosen:
            state.unacked[m.seq] = now + state.ack_wait
            pending = len(mine) - bisect.bisect_right(mine, state.cursor)
            delivered.append(
                Delivery(m.subject, m.data, pending, m.seq, _Ack(self, m.seq), _Extend(self, m.seq))
            )
        return delivered


@dataclass
class _Extend:
    consumer: _Consumer
    seq: int

    async def __call__(self) -> None:
        self.consumer.conn.check()
        state = self.consumer._state()
        if self.seq in state.unacked:
            state.unacked[self.seq] = time.monotonic() + state.ack_wait


@dataclass
class _Ack:
    consumer: _Consumer
    seq: int

    async def __call__(self) -> None:
        self.consumer.conn.check()
        state = self.consumer._state()
        if state.ack_all:
            for seq in [s for s in state.unacked if s <= self.seq]:
                del state.unacked[seq]
        else:
            state.unacked.pop(self.seq, None)
