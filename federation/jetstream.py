"""The transport port over NATS JetStream (nats-py): the one module that imports the driver.
Every call into nats-py runs inside ``mapped()``, which turns the driver's errors, the
network's (OSError) and timeouts into TransportError, the way httpx maps httpcore's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from federation.transport import (
    DUPLICATE_WINDOW,
    RETENTION,
    SUBJECTS,
    UP,
    Connection,
    Consumer,
    ConsumerSpec,
    Delivery,
    Handler,
    Message,
    Served,
    StreamState,
    Transport,
    TransportError,
)

log = logging.getLogger("anjian.federation")

# What can go wrong on a NATS connection, all of it TransportError once through mapped().
NATS_ERRORS: tuple[type[BaseException], ...] = (NatsError, OSError, asyncio.TimeoutError)


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    """Translate the driver's errors at the boundary: what is raised out of a call into
    nats-py inside this block is TransportError (the original as its cause)."""
    try:
        yield
    except NATS_ERRORS as e:
        raise TransportError(_describe(e)) from e


def _describe(error: BaseException) -> str:
    try:
        return str(error) or type(error).__name__
    except Exception:  # some of nats-py's errors cannot say what they are when half-made
        return type(error).__name__


class NATSTransport(Transport):
    async def connect(self, url: str, name: str) -> NATSConnection:
        with mapped():
            return NATSConnection(await connect(url, name), name)


class NATSConnection(Connection):
    def __init__(self, nc: Client, name: str) -> None:
        self.nc, self.name = nc, name
        self.js: JetStreamContext = nc.jetstream()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        with mapped():
            msg = await self.nc.request(subject, data, timeout=timeout)
        return msg.data

    async def serve(self, subject: str, handler: Handler) -> Served:
        async def answer(msg: Msg) -> None:
            try:
                reply = await handler(msg.subject, msg.data)
                with mapped():
                    await msg.respond(reply)
            except TransportError as e:
                log.info("%s: could not answer %s: %s", self.name, msg.subject, e)
            except Exception:
                log.exception("%s: could not answer %s", self.name, msg.subject)

        with mapped():
            return _Served(await self.nc.subscribe(subject, cb=answer))

    async def ensure_stream(self, name: str) -> None:
        with mapped():
            await ensure_stream(self.js, name)

    async def publish(self, messages: Sequence[Message], timeout: float = 10.0) -> int:
        with mapped():
            return await publish(self.js, messages, timeout)

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        after = spec.after
        config = ConsumerConfig(
            ack_policy=AckPolicy.ALL if spec.ack_all else AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_wait=spec.ack_wait,
            max_deliver=-1,
            max_ack_pending=spec.max_ack_pending,
            inactive_threshold=spec.inactive,
        )
        with mapped():
            sub = await self.js.pull_subscribe(
                spec.subject, durable=spec.durable, stream=spec.stream, config=config
            )
        return _Consumer(sub)

    async def delete_consumer(self, stream: str, durable: str) -> None:
        with mapped(), contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, durable)

    async def stream_info(self, name: str) -> StreamState | None:
        with mapped():
            try:
                info = await self.js.stream_info(name)
            except NotFoundError:
                return None
        return StreamState(
            messages=info.state.messages, last_seq=info.state.last_seq, created=f"{info.created}"
        )

    async def last_id(self, stream: str, subject: str) -> str | None:
        with mapped():
            try:
                msg = await self.js.get_last_msg(stream, subject)
            except NotFoundError:
                return None
        return (msg.headers or {}).get("Nats-Msg-Id") or None

    async def close(self) -> None:
        with mapped():
            await self.nc.close()


class _Served(Served):
    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def stop(self) -> None:
        with mapped():
            await self.sub.unsubscribe()


class _Consumer(Consumer):
    def __init__(self, sub: JetStreamContext.PullSubscription) -> None:
        self.sub = sub

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        with mapped():
            try:
                msgs = await self.sub.fetch(batch, timeout=timeout)
            except TimeoutError:
                return []
            return [
                Delivery(
                    m.subject,
                    m.data,
                    pending=m.metadata.num_pending,
                    seq=m.metadata.sequence.stream,
                    acker=_acker(m),
                )
                for m in msgs
            ]


def _acker(msg: Msg) -> Callable[[], Awaitable[None]]:
    async def ack() -> None:
        with mapped():
            await msg.ack()

    return ack


# -- nats-py ---------------------------------------------------------------------------------
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
    """Connection.publish over nats-py's publish_async."""
    futures: list[asyncio.Future[Any]] = []
    try:
        for m in messages:
            futures.append(
                await js.publish_async(m.subject, m.data, headers={"Nats-Msg-Id": m.msg_id})
            )
    except NATS_ERRORS as e:
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
