"""The transport port: the NATS adapter lets no driver error through (every one is
TransportError), and both adapters keep the same contract (a real nats-server for NATS)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
import pytest

from federation import jetstream
from federation.jetstream import NATSTransport, mapped
from federation.memory import MemoryTransport, matches
from federation.transport import (
    ARCHIVE,
    SUBJECTS,
    UP,
    Connection,
    ConsumerSpec,
    Credentials,
    Message,
    Transport,
    TransportError,
    inbox,
)
from node.errors import ConfigError
from node.replication.natsd import NatsServer, nats_server_binary
from tests.servers import missing


def driver_errors() -> list[type[BaseException]]:
    """Every exception class of nats-py, and what the network and timeouts raise."""
    found: set[type[BaseException]] = {OSError, ConnectionRefusedError, asyncio.TimeoutError}
    for module in (nats.errors, nats.js.errors):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, nats.errors.Error):
                found.add(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def instance(cls: type[BaseException]) -> BaseException:
    """One of ``cls``, however many arguments it requires."""
    for n in range(8):
        try:
            return cls(*["x"] * n)
        except TypeError:
            continue
    raise AssertionError(f"cannot make a {cls}")


@pytest.mark.parametrize("cls", driver_errors(), ids=lambda c: c.__qualname__)
def test_every_driver_error_is_a_transport_error(cls: type[BaseException]) -> None:
    async def inner() -> None:
        raise instance(cls)

    async def call() -> None:
        with mapped():
            await inner()

    with pytest.raises(TransportError) as caught:
        asyncio.run(call())
    assert isinstance(caught.value.__cause__, cls)


def test_the_map_covers_what_the_driver_raises() -> None:
    assert all(issubclass(c, jetstream.NATS_ERRORS) for c in driver_errors())
    with pytest.raises(ValueError), mapped():  # our own mistakes are not the network's
        raise ValueError("a bug")


def test_subjects_match_with_wildcards() -> None:
    assert matches("anjian.up.>", "anjian.up.a.env.b")
    assert not matches("anjian.up.>", "anjian.up")
    assert matches("anjian.applied.*", "anjian.applied.x")
    assert not matches("anjian.applied.*", "anjian.applied.x.y")
    assert matches("a.b", "a.b") and not matches("a.b", "a.c")


# -- the contract, against both adapters -------------------------------------------------------
@pytest.fixture(params=["memory", "nats"])
def broker(request: pytest.FixtureRequest, tmp_path) -> tuple[Transport, str]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return MemoryTransport(), "memory://"
    try:
        nats_server_binary()
    except ConfigError:
        missing("nats-server", "apt-get install -y nats-server")
    server = NatsServer(tmp_path / "nats").start()
    request.addfinalizer(server.kill)
    return NATSTransport(), server.url


Check = Callable[[Connection], Awaitable[None]]


def run(broker: tuple[Transport, str], check: Check) -> None:
    transport, url = broker

    async def main() -> None:
        conn = await transport.connect(url, "test")
        try:
            await check(conn)
        finally:
            await conn.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def up(n: int) -> Message:
    return Message(f"anjian.up.c.env.o{n % 2}", f"o:{n}", f"m{n}".encode())


def test_publish_drops_a_duplicate_id(broker) -> None:  # type: ignore[no-untyped-def]
    async def check(conn: Connection) -> None:
        await conn.ensure_stream(UP)
        await conn.ensure_stream(UP)  # again: the stream and its messages stay
        assert await conn.publish([up(1), up(2), up(3)]) == 3
        assert await conn.publish([up(2), up(4)]) == 2  # 2 again: acknowledged, not kept
        info = await conn.stream_info(UP)
        assert info is not None and (info.messages, info.last_seq) == (4, 4)
        assert await conn.stream_info(ARCHIVE) is None
        assert await conn.last_id(UP, "anjian.up.c.env.o0") == "o:4"
        assert await conn.last_id(UP, "anjian.up.c.env.o1") == "o:3"
        assert await conn.last_id(UP, "anjian.up.c.env.none") is None

    run(broker, check)


def test_consume_acknowledge_and_unacknowledged_come_again(broker) -> None:  # type: ignore[no-untyped-def]
    async def check(conn: Connection) -> None:
        await conn.ensure_stream(UP)
        await conn.publish([up(n) for n in range(1, 6)])
        sub = await conn.consumer(
            ConsumerSpec(UP, "d", SUBJECTS[UP], ack_wait=1.0, max_ack_pending=-1)
        )
        first = await sub.fetch(3, 2.0)
        assert [m.data for m in first] == [b"m1", b"m2", b"m3"]
        assert [m.seq for m in first] == [1, 2, 3] and first[-1].pending == 2
        await first[0].ack()
        await first[2].ack()
        rest = await sub.fetch(10, 2.0)
        assert [m.data for m in rest] == [b"m4", b"m5"] and rest[-1].pending == 0
        for m in rest:
            await m.ack()
        assert await sub.fetch(10, 0.2) == []  # nothing more: a timeout is no error
        again = await conn.consumer(
            ConsumerSpec(UP, "d", SUBJECTS[UP], ack_wait=1.0, max_ack_pending=-1)
        )
        redelivered = await again.fetch(10, 3.0)  # m2 was never acknowledged
        assert [m.data for m in redelivered] == [b"m2"]
        await redelivered[0].ack()
        await conn.delete_consumer(UP, "d")
        await conn.delete_consumer(UP, "d")  # none: nothing happens
        fresh = await conn.consumer(ConsumerSpec(UP, "d", SUBJECTS[UP], ack_all=True, after=3))
        assert [m.seq for m in await fresh.fetch(10, 2.0)] == [4, 5]

    run(broker, check)


def test_a_message_said_to_be_in_progress_is_not_delivered_again(broker) -> None:  # type: ignore[no-untyped-def]
    """A message held longer than the acknowledgement wait, and said to be still worked on
    before each wait ends, is not delivered again; one left alone is."""

    async def check(conn: Connection) -> None:
        await conn.ensure_stream(UP)
        await conn.publish([up(1), up(2)])
        spec = ConsumerSpec(UP, "held", SUBJECTS[UP], ack_wait=1.0, max_ack_pending=-1)
        sub = await conn.consumer(spec)
        held, left = await sub.fetch(2, 2.0)
        for _ in range(5):  # 2.5 s: more than twice the wait
            await asyncio.sleep(0.5)
            await held.extend()
        again = await sub.fetch(10, 1.0)
        assert [m.data for m in again] == [left.data]  # only the one left alone
        await again[0].ack()
        await held.ack()
        assert await sub.fetch(10, 1.5) == []

    run(broker, check)


def test_request_and_serve(broker) -> None:  # type: ignore[no-untyped-def]
    """A request is answered into the asker's own inbox only (the last token of the subject
    names the asker); one whose replies go elsewhere gets no answer."""
    transport, url = broker

    async def check(conn: Connection) -> None:
        async def echo(subject: str, data: bytes) -> bytes:
            return subject.encode() + b" " + data

        served = await conn.serve("anjian.applied.*", echo)
        asker = await transport.connect(url, "x", Credentials(inbox=inbox("x")))
        other = await transport.connect(url, "y", Credentials(inbox=inbox("y")))
        try:
            assert await asker.request("anjian.applied.x", b"hi", 2.0) == b"anjian.applied.x hi"
            with pytest.raises(TransportError):  # its replies go to y's inbox, not x's
                await other.request("anjian.applied.x", b"hi", 0.5)
            await served.stop()
            with pytest.raises(TransportError):  # nobody answers now
                await asker.request("anjian.applied.x", b"hi", 0.5)
        finally:
            await asker.close()
            await other.close()

    run(broker, check)


def test_a_broker_that_goes_away_raises_transport_errors() -> None:
    broker = MemoryTransport()

    async def main() -> None:
        conn = await broker.connect("memory://", "test")
        await conn.ensure_stream(UP)
        broker.down = True
        with pytest.raises(TransportError):
            await conn.publish([up(1)])
        with pytest.raises(TransportError):
            await broker.connect("memory://", "test")
        broker.down = False
        assert await conn.publish([up(1)]) == 1

    asyncio.run(main())


def test_no_server_is_a_transport_error() -> None:
    from node.replication.natsd import free_port

    async def main() -> None:
        await NATSTransport().connect(f"nats://127.0.0.1:{free_port()}", "test")

    with pytest.raises(TransportError):
        asyncio.run(main())


async def test_a_call_that_fails_as_its_caller_is_cancelled_leaves_no_unretrieved_error():
    """A node stopping cancels a fetch the moment the connection closes under it: the failed
    call's error is taken, not left for asyncio to report as never retrieved."""
    import gc

    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    refusals = jetstream.Refusals()
    guarded: asyncio.Future[None] | None = None

    async def call() -> None:
        await asyncio.sleep(0)
        assert guarded is not None
        guarded.cancel()  # the caller goes, as the call fails
        raise nats.errors.ConnectionClosedError

    guarded = asyncio.ensure_future(refusals.guard(call()))
    with pytest.raises(asyncio.CancelledError):
        await guarded
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [c for c in reported if "never retrieved" in str(c.get("message"))] == []
