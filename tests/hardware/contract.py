"""The contract every sensor adapter (``hardware.base.Source``) meets, and the one recording sink
the hardware tests share.

Each adapter's test file subclasses ``SourceContract`` (with ``__test__ = True``) and fills in
how to make its source and how to feed it: write a file into the dropped-files directory,
publish on the MQTT broker, set a register of the simulated Modbus device. The servers are real
(mosquitto, a pymodbus server), as in the rest of those files. The contract:

- what is offered reaches the sink, in batches of the configured site, and the counters say so;
- a batch the sink refuses (``Refused``) is counted with its reason, is not delivered later as
  it was, and the source goes on;
- a batch the sink fails to take (not a refusal: the node down) is counted as a failure and
  delivered later: the same readings where the adapter keeps them (a file left for the next
  look, MQTT readings kept for the next interval), or the device read again (Modbus);
- malformed input is counted, nothing of it is delivered, and the source goes on;
- cancelled, the source ends with CancelledError and leaves no task behind;
- its counters are what GET /api/v1/hardware shows (``node.sensors.counters``), as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, ClassVar

from blockbuster import blockbuster_ctx

from hardware.base import Batch, PointDefinition, Source
from hardware.errors import Refused
from node.sensors import counters


class RecordingSink:
    """A sink that keeps what it is given (``batches``, ``definitions``).

    ``refuse``: the reason it refuses every batch and definition with (``Refused``); with
    ``refuse_first`` only the first that many batches. ``refuse_point``: it refuses the batches
    holding that point. ``fail_first``: the first that many deliveries fail with ``failure``
    (by default ConnectionError: the node is down), which is not a refusal."""

    def __init__(
        self,
        refuse: str | None = None,
        *,
        refuse_first: int | None = None,
        refuse_point: str | None = None,
        fail_first: int = 0,
        failure: Exception | None = None,
    ) -> None:
        self.batches: list[Batch] = []
        self.definitions: list[tuple[str, list[PointDefinition]]] = []
        self.refused: list[tuple[Batch, str]] = []  # what it refused, with the reason
        self.failed: list[Batch] = []  # what it failed to take
        self.refuse, self.refuse_first, self.refuse_point = refuse, refuse_first, refuse_point
        self.fail_first = fail_first
        self.failure = failure or ConnectionError("the node is down")

    async def readings(self, batch: Batch) -> dict[str, Any]:
        if self.fail_first:
            self.fail_first -= 1
            self.failed.append(batch)
            raise self.failure
        reason = self._refusal(batch)
        if reason is not None:
            self.refused.append((batch, reason))
            raise Refused(reason)
        self.batches.append(batch)
        return {"stored": len(batch.readings), "events": []}

    async def points(self, site: str, points: list[PointDefinition]) -> dict[str, Any]:
        if self.refuse is not None and self.refuse_first is None:
            raise Refused(self.refuse)
        self.definitions.append((site, points))
        return {"registered": [p.point for p in points], "refused": {}}

    def _refusal(self, batch: Batch) -> str | None:
        if self.refuse_point is not None:
            if any(r.point == self.refuse_point for r in batch.readings):
                return f"no point {self.refuse_point} at site {batch.site}"
            return None
        if self.refuse is None:
            return None
        if self.refuse_first is None:
            return self.refuse
        if self.refuse_first > 0:
            self.refuse_first -= 1
            return self.refuse
        return None

    def seen(self) -> list[tuple[str, int]]:
        """(point, time) of every reading taken, in order."""
        return [(r.point, r.t) for b in self.batches for r in b.readings]

    def values(self, point: str) -> list[Decimal]:
        return [r.value for b in self.batches for r in b.readings if r.point == point]


async def until(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


class SourceContract:
    """The contract; a subclass per adapter sets ``__test__ = True`` and fills in the rest."""

    __test__ = False

    SITE: ClassVar[str]  # the site the source's batches are for
    POINT: ClassVar[str]  # the point ``offer`` offers readings of
    # a batch the sink failed to take comes again as it was (True), or the device is read again
    KEEPS_FAILED: ClassVar[bool]
    QUIET = 0.3  # seconds in which nothing may be delivered from malformed input

    # -- per adapter ---------------------------------------------------------------------------
    def create_source(self) -> Source:
        """A new source on this test's directory, broker or device."""
        raise NotImplementedError

    async def offer(self, value: Decimal) -> None:
        """Make the peer offer a reading of POINT with this value (at a new time each call)."""
        raise NotImplementedError

    async def offer_malformed(self) -> None:
        """Make the peer offer what the adapter cannot read."""
        raise NotImplementedError

    async def mend(self) -> None:
        """Put right what ``offer_malformed`` left wrong (a device that keeps failing)."""

    # -- the harness ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self, source: Source, sink: RecordingSink) -> AsyncIterator[None]:
        """Runs the source until the block ends, with blocking calls on the event loop turned
        into errors; the source must still be running then (nothing escaped run()), and it
        must stop cleanly."""
        before = asyncio.all_tasks()
        with blockbuster_ctx():
            task = asyncio.create_task(source.run(sink))
            try:
                await until(lambda: source.counters.connected or task.done(), what="connected")
                assert not task.done(), f"the source stopped: {task.exception()!r}"
                yield
                assert not task.done(), f"the source stopped: {task.exception()!r}"
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert task.cancelled(), "run() must end with CancelledError when cancelled"
        await asyncio.sleep(0)
        left = {t for t in asyncio.all_tasks() - before if not t.done()}
        assert not left, f"tasks left behind: {left}"

    # -- the contract ----------------------------------------------------------------------------
    async def test_what_is_offered_reaches_the_sink_and_is_counted(self) -> None:
        source, sink = self.create_source(), RecordingSink()
        async with self.running(source, sink):
            await self.offer(Decimal("0.40"))
            await until(lambda: Decimal("0.40") in sink.values(self.POINT), what="the reading")
            assert source.counters.connected
        c = source.counters
        assert {b.site for b in sink.batches} == {self.SITE}
        assert (c.batches, c.readings) == (len(sink.batches), len(sink.seen()))
        assert (c.refused, c.malformed) == (0, 0)

    async def test_a_refused_batch_is_counted_with_its_reason_and_the_source_goes_on(
        self,
    ) -> None:
        reason = f"no point '{self.POINT}' at this site"
        source, sink = self.create_source(), RecordingSink(reason, refuse_first=1)
        async with self.running(source, sink):
            await self.offer(Decimal("0.40"))
            await until(lambda: source.counters.refused, what="the refusal to be counted")
            assert reason in (source.counters.last_error or "")
            await self.offer(Decimal("0.50"))
            await until(lambda: Decimal("0.50") in sink.values(self.POINT), what="going on")
        ((batch, _),) = sink.refused
        refused = {(r.point, r.t) for r in batch.readings}
        assert not refused & set(sink.seen()), "a refused batch is not delivered as it was"
        assert source.counters.refused == 1 and source.counters.malformed == 0

    async def test_a_batch_the_sink_fails_to_take_is_counted_and_delivered_later(self) -> None:
        source, sink = self.create_source(), RecordingSink(fail_first=1)
        async with self.running(source, sink):
            await self.offer(Decimal("0.40"))
            await until(lambda: Decimal("0.40") in sink.values(self.POINT), what="a retry")
        (failed,) = sink.failed
        assert source.counters.extra["failures"] == 1
        assert "the node is down" in (source.counters.last_error or "")
        assert source.counters.refused == 0
        if self.KEEPS_FAILED:
            assert {(r.point, r.t) for r in failed.readings} <= set(sink.seen())

    async def test_malformed_input_is_counted_and_changes_nothing(self) -> None:
        source, sink = self.create_source(), RecordingSink()
        async with self.running(source, sink):
            await self.offer_malformed()
            await until(lambda: source.counters.malformed, what="the malformed input counted")
            delivered = len(sink.batches)
            await asyncio.sleep(self.QUIET)
            assert len(sink.batches) == delivered, "delivered from malformed input"
            assert source.counters.last_error
            await self.mend()
            await self.offer(Decimal("0.40"))
            await until(lambda: Decimal("0.40") in sink.values(self.POINT), what="going on")
        assert source.counters.refused == 0 and not sink.refused

    async def test_counters_are_shown_as_the_api_shows_them(self) -> None:
        source, sink = self.create_source(), RecordingSink()
        async with self.running(source, sink):
            await self.offer(Decimal("0.40"))
            await until(lambda: source.counters.readings, what="a reading")
            (shown,) = json.loads(json.dumps(counters([source])))
        assert isinstance(source.name, str) and shown["source"] == source.name
        assert shown["connected"] is True and shown["readings"] >= 1
        assert set(shown) >= {
            "batches",
            "readings",
            "refused",
            "malformed",
            "reconnects",
            "connected",
            "last_error",
            "extra",
        }
