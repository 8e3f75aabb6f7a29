"""The transport port for federation (docs/architecture.md §6): the subjects and streams, and
what the node uses of a message broker (Transport, Connection, Consumer, Delivery), with one error,
TransportError, that the adapters translate the driver's errors into at their boundary. The
NATS JetStream adapter is federation.jetstream (the only module that imports nats), an
in-memory one for unit tests federation.memory. What is published and what is done with what
arrives is the node's business.

Subjects (``<child>`` is the origin id of the node that publishes upward):

- ``anjian.up.<child>.env.<origin>`` / ``anjian.up.<child>.cp.<origin>``: envelopes and
  checkpoints a child sends to its parent's stream ``ANJIAN_UP``; message id
  ``digest:origin:seq`` (``digest:origin:cp:size`` for checkpoints), the digest of the message's
  exact bytes first (``envelope_id``).
- ``anjian.applied.<child>``: request-reply; the parent answers with the position it has
  durably applied per origin.
- ``anjian.history.<child>``: request-reply; the parent answers a recovering child with the
  origins it relayed and their envelopes and checkpoints, a page at a time.
- ``anjian.down.env.<origin>.all``: key documents a tier's subtree must know, and
  ``anjian.down.env.<origin>.<d2>.<d4>.<d6>``: licences, by the levels of their division
  (``440305`` is ``44.4403.440305``), so that one filter is a node's area (``down_area``); both
  on the publishing tier's own ``ANJIAN_DOWN``. The last token is the division (or ``all``).
- ``anjian.archive.env.<origin>`` / ``anjian.archive.cp.<origin>``: the national centre's
  entire log on its own ``ANJIAN_ARCHIVE``.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from domain.codes import NATIONAL_REGION, Tier, division_level
from domain.i18n import _
from federation.errors import FederationError

UP, DOWN, ARCHIVE = "ANJIAN_UP", "ANJIAN_DOWN", "ANJIAN_ARCHIVE"
HISTORY = "anjian.history"
SUBJECTS = {UP: "anjian.up.>", DOWN: "anjian.down.>", ARCHIVE: "anjian.archive.>"}
# Seconds in which the server drops a message whose id it has seen: long enough for a
# publisher's retries, short enough that a deliberate re-publication (an uplink repairing a
# gap its parent holds) goes through soon after.
DUPLICATE_WINDOW = 30.0
RETENTION = 30 * 24 * 3600.0  # seconds ANJIAN_UP keeps messages (longer than any outage)


class TransportError(FederationError):
    """What can go wrong on a connection (the driver's errors, the network's, a timeout),
    translated at the adapter's boundary: the one error a caller catches, and then drops the
    connection and starts again."""


class Refused(TransportError):
    """The server refused this client: its credentials (an authorization violation, a TLS
    handshake) or something it asked for (a permissions violation, naming the subject). Not a
    passing fault: starting again at once would be refused again."""


@dataclass(frozen=True)
class TLSFiles:
    """NATS over TLS: the CA file that signed the servers' certificates (the server is verified
    against it), and the client's certificate and key for a server that requires them."""

    ca: str
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Credentials:
    """How a node presents itself to a NATS server: its nkey user seed (None: anonymous), the
    prefix of its reply subjects (``_INBOX.<origin>``, so a server's permissions can confine
    replies to it), and TLS (None: plain TCP)."""

    seed: bytes | None = None
    inbox: str | None = None
    tls: TLSFiles | None = None

    def __repr__(self) -> str:  # never the seed in a log line
        seed = "set" if self.seed else None
        return f"Credentials(seed={seed}, inbox={self.inbox!r}, tls={self.tls!r})"


def inbox(origin: str) -> str:
    """The prefix of the reply subjects of ``origin``'s connections: its server permissions let
    it receive only there, and the tier answers its requests only there."""
    return f"_INBOX.{origin}"


def up_subject(child: str, kind: str, origin: str) -> str:
    return f"anjian.up.{child}.{kind}.{origin}"


def applied_subject(child: str) -> str:
    return f"anjian.applied.{child}"


def history_subject(child: str) -> str:
    return f"{HISTORY}.{child}"


def down_durables(origin: str) -> tuple[str, str]:
    """The durable consumers a child keeps on its parent's ANJIAN_DOWN: the key documents,
    and what concerns its area."""
    return f"anjian-down-{origin}", f"anjian-down-{origin}-area"


def backup_durable(origin: str) -> str:
    """The backup centre's durable consumer on the national ANJIAN_ARCHIVE."""
    return f"anjian-backup-{origin}"


def restore_durable(origin: str) -> str:
    """The durable consumer a node being restored reads an ANJIAN_ARCHIVE with."""
    return f"anjian-restore-{origin}"


DOWN_ALL = "anjian.down.env.*.all"  # the key documents on a downward stream, every origin's


def down_subject(origin: str, division: str) -> str:
    """The downward subject of an envelope of ``origin`` concerning ``division`` (six digits),
    or key documents (``all``; so is anything without a six-digit division)."""
    if len(division) == 6 and division.isdigit():
        return f"anjian.down.env.{origin}.{division[:2]}.{division[:4]}.{division}"
    return f"anjian.down.env.{origin}.all"


def down_area(region: str) -> str:
    """The filter of the downward subjects of ``region``'s area (as ``in_subtree`` draws it):
    a province's ``anjian.down.env.*.44.>``, a city's ``anjian.down.env.*.44.4403.>``, a
    county's ``anjian.down.env.*.44.4403.440305``."""
    if region == NATIONAL_REGION:
        return "anjian.down.env.*.*.*.*"
    level = division_level(region)
    if level == Tier.PROVINCE:
        return f"anjian.down.env.*.{region[:2]}.>"
    if level == Tier.CITY:
        return f"anjian.down.env.*.{region[:2]}.{region[:4]}.>"
    return f"anjian.down.env.*.{region[:2]}.{region[:4]}.{region}"


@dataclass(frozen=True)
class Message:
    subject: str
    msg_id: str
    data: bytes


def envelope_id(origin: str, seq: int, raw: bytes) -> str:
    """A message's id, by which the stream drops a message published again: it names the
    exact bytes (a digest first), so no one who can publish on the stream can have another's
    genuine envelope dropped as a duplicate by taking its id first; the position comes last,
    where ``position_of`` reads it."""
    return f"{_digest(raw)}:{origin}:{seq}"


def checkpoint_id(origin: str, size: int, note: bytes) -> str:
    return f"{_digest(note)}:{origin}:cp:{size}"


def position_of(msg_id: str) -> int:
    """The sequence (or checkpoint size) a message id names (ids before digests included)."""
    return int(msg_id.rsplit(":", 1)[-1])


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def kind_of(subject: str) -> tuple[str, str]:
    """``(kind, origin)`` of a federation subject: kind is ``envelope`` or ``checkpoint``."""
    parts = subject.split(".")
    kind = {"env": "envelope", "cp": "checkpoint"}.get(parts[-2] if len(parts) > 2 else "", "")
    return kind, parts[-1]


def child_of(subject: str) -> str:
    """The publishing child named in an ``anjian.up.<child>...`` subject."""
    parts = subject.split(".")
    return parts[2] if len(parts) > 4 else "?"


# -- the port: what the node uses of a message broker ----------------------------------------
Handler = Callable[[str, bytes], Awaitable[bytes]]  # (subject, request) -> reply


async def _no_ack() -> None:
    return None


@dataclass
class Delivery:
    """A message delivered by a consumer: ``pending`` is how many more wait behind it for the
    consumer, ``seq`` its position in the stream; ``ack()`` settles it (and, on a consumer
    that acknowledges all, every one delivered before it); ``extend()`` says it is still being
    worked on, so its acknowledgement wait starts again and it is not delivered again."""

    subject: str
    data: bytes
    pending: int = 0
    seq: int = 0
    acker: Callable[[], Awaitable[None]] = field(default=_no_ack, repr=False)
    extender: Callable[[], Awaitable[None]] = field(default=_no_ack, repr=False)

    async def ack(self) -> None:
        await self.acker()

    async def extend(self) -> None:
        await self.extender()


@dataclass(frozen=True)
class StreamState:
    messages: int  # held now
    last_seq: int  # sequence of the last one
    created: str  # when the stream was made: tells one stream from another of the same name


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer ``durable`` of ``stream`` on ``subject``: delivering from the
    stream's first message (after sequence ``after`` if given), each message again until
    acknowledged (after ``ack_wait`` seconds without), acknowledging each message (or,
    ``ack_all``, all up to one); ``max_ack_pending`` -1 for no limit; ``inactive``: seconds
    after which the broker forgets a consumer nobody uses. None: the broker's default."""

    stream: str
    durable: str
    subject: str
    ack_wait: float | None = None
    ack_all: bool = False
    after: int = 0
    max_ack_pending: int | None = None
    inactive: float | None = None


class Consumer(abc.ABC):
    """A durable pull consumer on a stream."""

    @abc.abstractmethod
    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` messages; none if none came in ``timeout`` seconds."""


class Served(abc.ABC):
    """A subscription answering requests."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Connection(abc.ABC):
    """One connection to a broker. Every method raises TransportError on a failure, Refused
    when the server refused it (or refused this client since)."""

    @abc.abstractmethod
    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The reply of whoever serves ``subject``."""

    @abc.abstractmethod
    async def serve(self, subject: str, handler: Handler) -> Served:
        """Answer requests on ``subject`` (wildcards allowed; its last token names the child
        asking) with what ``handler`` returns, only to that child's own inbox
        (``inbox(child)``): a reply subject elsewhere would have the tier publish wherever the
        requester chose (into a stream, in another's name), and is not answered. A request whose
        answer cannot be sent is logged, not raised."""

    @abc.abstractmethod
    async def ensure_stream(self, name: str) -> None:
        """Create stream ``name`` (one of SUBJECTS) if it is missing (a restart keeps the
        existing one and its data), or bring an existing one's retention to this version's."""

    @abc.abstractmethod
    async def publish(self, messages: Sequence[Message], timeout: float = 10.0) -> int:
        """Publish pipelined (many in flight, each acknowledged by the server); returns how
        many were acknowledged as a prefix: on any failure the rest is left for the caller to
        retry with the same ids (the stream's duplicate window drops what it already holds).
        An acknowledgement that never comes counts as a failure after ``timeout``."""

    @abc.abstractmethod
    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        """The durable pull consumer ``spec`` names, made if missing (an existing one is bound
        as it is, unless its subject differs: then it is made again)."""

    @abc.abstractmethod
    async def delete_consumer(self, stream: str, durable: str) -> None:
        """Forget a durable consumer (nothing if there is none)."""

    @abc.abstractmethod
    async def stream_info(self, name: str) -> StreamState | None:
        """The stream's state, None if there is no such stream."""

    @abc.abstractmethod
    async def last_id(self, stream: str, subject: str) -> str | None:
        """The message id of the last message on ``subject`` in ``stream``, None if none."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class Transport(abc.ABC):
    """Makes connections: NATSTransport (federation.jetstream) in service, MemoryTransport
    (federation.memory) in unit tests."""

    @abc.abstractmethod
    async def connect(
        self, url: str, name: str, credentials: Credentials | None = None
    ) -> Connection:
        """One connection that reconnects by itself once made, as ``credentials`` say (None:
        anonymous, plain TCP); the first attempt fails fast (TransportError, Refused if the
        server refused the credentials) so the caller can log that it works offline and try
        again later."""


# An uplink's question (the request's data): its origin, and that it reads the answer with the
# parent's limits. The parent answers such a question with ANSWER_KEYS; any other question
# (older uplinks send their origin alone) with the positions alone, which every uplink reads.
LIMITS_QUESTION = "limits"
ANSWER_KEYS = ("applied", "max_envelope")


def ask_positions(origin: str) -> bytes:
    return msgpack.packb({"origin": origin, "want": LIMITS_QUESTION})  # type: ignore[no-any-return]


def wants_limits(question: bytes) -> bool:
    try:
        value = msgpack.unpackb(question)
    except (ValueError, msgpack.UnpackException):
        return False
    return isinstance(value, dict) and value.get("want") == LIMITS_QUESTION


def pack_positions(positions: dict[str, tuple[int, int]], max_envelope: int | None = None) -> bytes:
    applied = {o: list(p) for o, p in positions.items()}
    if max_envelope is None:
        return msgpack.packb(applied)  # type: ignore[no-any-return]
    return msgpack.packb(dict(zip(ANSWER_KEYS, (applied, max_envelope), strict=True)))  # type: ignore[no-any-return]


def unpack_answer(data: bytes) -> tuple[dict[str, tuple[int, int]], int | None]:
    """The parent's applied positions and the largest envelope it takes (None from a parent
    that does not say), from either shape of its answer."""
    value: Any = msgpack.unpackb(data, strict_map_key=True)
    if isinstance(value, dict) and set(value) == set(ANSWER_KEYS):
        limit = value["max_envelope"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError(_("the parent's answer gives no valid max_envelope"))
        return _positions(value["applied"]), limit
    return _positions(value), None


def _positions(value: Any) -> dict[str, tuple[int, int]]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and isinstance(v, list)
        and len(v) == 2
        and all(isinstance(n, int) and n >= 0 for n in v)
        for k, v in value.items()
    ):
        raise ValueError(_("the parent's answer is not {{origin: [applied, checkpoint]}}"))
    return {k: (v[0], v[1]) for k, v in value.items()}
