"""NATS JetStream for federation (DESIGN.md §6): the subjects and streams, connecting with
retries, and pipelined publishing with message ids so that JetStream's duplicate window drops
retries. What is published and what is done with what arrives is the node's business.

Subjects (``<child>`` is the origin id of the node that publishes upward):

- ``anjian.up.<child>.env.<origin>`` / ``anjian.up.<child>.cp.<origin>``: envelopes and
  checkpoints a child sends to its parent's stream ``ANJIAN_UP``; message id ``origin:seq``
  (``origin:cp:size`` for checkpoints).
- ``anjian.applied.<child>``: request-reply; the parent answers with the position it has
  durably applied per origin.
- ``anjian.history.<child>``: request-reply; the parent answers a recovering child with the
  origins it relayed and their envelopes and checkpoints, a page at a time.
- ``anjian.down.env.<origin>``: what a tier's subtree must know, on its own ``ANJIAN_DOWN``.
- ``anjian.archive.env.<origin>`` / ``anjian.archive.cp.<origin>``: the national centre's
  entire log on its own ``ANJIAN_ARCHIVE``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgpack
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger("anjian.federation")

UP, DOWN, ARCHIVE = "ANJIAN_UP", "ANJIAN_DOWN", "ANJIAN_ARCHIVE"
HISTORY = "anjian.history"
SUBJECTS = {UP: "anjian.up.>", DOWN: "anjian.down.>", ARCHIVE: "anjian.archive.>"}
# Seconds in which the server drops a message whose id it has seen: long enough for a
# publisher's retries, short enough that a deliberate re-publication (an uplink repairing a
# gap its parent holds) goes through soon after.
DUPLICATE_WINDOW = 30.0
RETENTION = 30 * 24 * 3600.0  # seconds ANJIAN_UP keeps messages (longer than any outage)

# What can go wrong on a NATS connection: the caller drops the connection and starts again.
TRANSPORT_ERRORS = (NatsError, OSError, asyncio.TimeoutError)


def up_subject(child: str, kind: str, origin: str) -> str:
    return f"anjian.up.{child}.{kind}.{origin}"


def applied_subject(child: str) -> str:
    return f"anjian.applied.{child}"


@dataclass(frozen=True)
class Message:
    subject: str
    msg_id: str
    data: bytes


def envelope_id(origin: str, seq: int) -> str:
    return f"{origin}:{seq}"


def checkpoint_id(origin: str, size: int) -> str:
    return f"{origin}:cp:{size}"


def kind_of(subject: str) -> tuple[str, str]:
    """``(kind, origin)`` of a federation subject: kind is ``envelope`` or ``checkpoint``."""
    parts = subject.split(".")
    kind = {"env": "envelope", "cp": "checkpoint"}.get(parts[-2] if len(parts) > 2 else "", "")
    return kind, parts[-1]


def child_of(subject: str) -> str:
    """The publishing child named in an ``anjian.up.<child>...`` subject."""
    parts = subject.split(".")
    return parts[2] if len(parts) > 4 else "?"


async def connect(url: str, name: str) -> Client:
    """One connection that reconnects by itself once made; the first attempt fails fast so
    the caller can log that it works offline and try again later."""

    async def error(e: Exception) -> None:  # reconnect attempts: a line, not a traceback
        log.debug("%s: %s", name, e or type(e).__name__)

    async def disconnected() -> None:
        log.warning("%s: disconnected from %s; reconnecting in the background", name, url)

    async def reconnected() -> None:
        log.info("%s: reconnected to %s", name, url)

    try:  # nats-py retries the first connection forever too: give up on it after a while
        return await asyncio.wait_for(_connect(url, name, error, disconnected, reconnected), 4)
    except TimeoutError:
        raise OSError(f"no NATS server answered at {url}") from None


async def _connect(
    url: str,
    name: str,
    error: Callable[[Exception], Awaitable[None]],
    disconnected: Callable[[], Awaitable[None]],
    reconnected: Callable[[], Awaitable[None]],
) -> Client:
    return await nats.connect(
        url,
        name=name,
        error_cb=error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        connect_timeout=2,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,  # a line back, or a server restarted: on again at once
        ping_interval=5,
        max_outstanding_pings=2,
    )


async def ensure_stream(js: JetStreamContext, name: str) -> None:
    """Create the stream if it is missing (a restart keeps the existing one and its data), or
    bring an existing one's retention to this version's."""
    # what goes up is applied by the parent and kept there: the stream only bridges outages;
    # the archive is the restorable copy, and what comes down every future child must learn
    max_age = RETENTION if name == UP else 0.0
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = None
    if info is not None:
        if (info.config.max_age or 0.0) != max_age:
            await js.update_stream(replace(info.config, max_age=max_age))
        return
    await js.add_stream(
        StreamConfig(
            name=name,
            subjects=[SUBJECTS[name]],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
            max_age=max_age,
            deny_delete=True,
            deny_purge=True,
        )
    )


async def publish(js: JetStreamContext, messages: Sequence[Message], timeout: float = 10.0) -> int:
    """Publish pipelined (many in flight, each acknowledged by the server); returns how many
    were acknowledged as a prefix: on any failure the rest is left for the caller to retry with
    the same ids. An acknowledgement that never comes counts as a failure after ``timeout``
    (a server error can leave it unresolved)."""
    futures: list[asyncio.Future[Any]] = []
    try:
        for m in messages:
            futures.append(
                await js.publish_async(m.subject, m.data, headers={"Nats-Msg-Id": m.msg_id})
            )
    except TRANSPORT_ERRORS as e:
        log.info("publish stopped after %d sent: %r", len(futures), e)
    if futures:
        await asyncio.wait(futures, timeout=timeout)
    done = 0
    for future in futures:
        if not future.done() or future.cancelled() or future.exception() is not None:
            break
        done += 1
    for future in futures[done:]:
        future.cancel()
    return done


def pack_positions(positions: dict[str, tuple[int, int]]) -> bytes:
    return msgpack.packb({o: list(p) for o, p in positions.items()})  # type: ignore[no-any-return]


def unpack_positions(data: bytes) -> dict[str, tuple[int, int]]:
    """``{origin: (applied sequence, checkpoint size)}`` from a parent's answer; a malformed
    answer is an error, never read as "nothing applied"."""
    value: Any = msgpack.unpackb(data, strict_map_key=True)
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and isinstance(v, list)
        and len(v) == 2
        and all(isinstance(n, int) and n >= 0 for n in v)
        for k, v in value.items()
    ):
        raise ValueError("the parent's answer is not {origin: [applied, checkpoint]}")
    return {k: (v[0], v[1]) for k, v in value.items()}
