"""The Modbus TCP source against a real pymodbus server (the simulated device) on a free port:
the source contract (tests/hardware/contract.py); scaled, signed and status values in one batch
per poll; a device restart survived without a reading lost or doubled; exception responses and
short replies counted, nothing recorded from them; refusals counted; and a methane excursion
through the real node's alarms and power cuts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from itertools import count, pairwise

import pytest
from blockbuster import blockbuster_ctx
from pymodbus.constants import ExcCodes

from hardware.base import Batch
from hardware.modbus import ModbusConfig, ModbusDevice, ModbusPoint, ModbusSource, plan
from node.adapters import NodeSink
from node.replication.natsd import free_port
from tests.factories import SITE_CODE, enterprise, js, site
from tests.hardware.contract import RecordingSink, SourceContract, until

T0 = 1_795_000_000_000
CYCLE = 0.05  # seconds: the test's polling interval (10 s in the field)


def ticking(start: int = T0, step: int = 10_000):
    """A clock that moves one cycle each time it is read."""
    return partial(next, count(start, step))


@contextlib.asynccontextmanager
async def running(source: ModbusSource, sink):
    """Runs the source, with blocking calls on the event loop turned into errors; at the end
    the source must still be running (nothing escaped run())."""
    with blockbuster_ctx():
        task = asyncio.create_task(source.run(sink))
        try:
            yield task
        finally:
            alive = not task.done()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert alive, f"the source stopped: {task.exception()!r}"
    assert not source.counters.connected


@pytest.fixture
async def device():
    d = ModbusDevice()
    await d.start()
    yield d
    await d.stop()


def config(device: ModbusDevice, *points: ModbusPoint, **over) -> ModbusConfig:
    over.setdefault("interval", CYCLE)
    over.setdefault("timeout", 1.0)
    return ModbusConfig(SITE_CODE, device.host, device.port, points=points, **over)


METHANE = ModbusPoint("CH4-01", 0, scale=Decimal("0.01"), status_register=1)
POINTS = (
    METHANE,
    ModbusPoint("T-01", 2, scale=Decimal("0.1"), signed=True),
    ModbusPoint("WS-01", 3, scale=Decimal("0.01"), kind="input"),
    ModbusPoint("CO-01", 4),
)


class TestContract(SourceContract):
    """Fed by setting the methane register of the simulated device; malformed: the device
    answers every read with an exception response while its ``fault`` is set."""

    __test__ = True
    SITE = SITE_CODE
    POINT = METHANE.point
    KEEPS_FAILED = False  # a poll not taken is gone: the next poll reads the device again

    @pytest.fixture(autouse=True)
    def _device(self, device):
        self.device = device

    def create_source(self):
        return ModbusSource(config(self.device, METHANE), clock=ticking())

    async def offer(self, value):
        self.device.set(METHANE.register, int(value / METHANE.scale))

    async def offer_malformed(self):
        self.device.fault = ExcCodes.DEVICE_FAILURE

    async def mend(self):
        self.device.fault = None


def test_contiguous_registers_are_read_together():
    requests = [(r.kind, r.address, r.count) for r in plan(POINTS)]
    assert requests == [("holding", 0, 3), ("holding", 4, 1), ("input", 3, 1)]
    many = tuple(ModbusPoint(f"P{i}", i) for i in range(130))
    assert [(r.address, r.count) for r in plan(many)] == [(0, 125), (125, 5)]


def test_a_misconfigured_point_is_refused_up_front():
    with pytest.raises(ValueError, match="scale"):
        ModbusPoint("CH4-01", 0, scale=0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="65535"):
        ModbusPoint("CH4-01", 70_000)
    with pytest.raises(ValueError, match="twice: CH4-01"):
        ModbusConfig(SITE_CODE, "127.0.0.1", points=(METHANE, METHANE))
    with pytest.raises(ValueError, match="no points"):
        ModbusConfig(SITE_CODE, "127.0.0.1")


async def test_each_poll_is_one_batch_of_scaled_signed_values_with_status(device):
    for register, raw in {0: 40, 1: 0b11, 2: -55, 3: 250, 4: 65535}.items():
        device.set(register, raw)
    source, sink = ModbusSource(config(device, *POINTS), clock=ticking()), RecordingSink()
    async with running(source, sink):
        await until(lambda: len(sink.batches) >= 3, what="three polls")
        device.set(0, 160)
        await until(lambda: sink.batches[-1].readings[0].value == Decimal("1.60"))
    first = sink.batches[0]
    assert (
        first.site == SITE_CODE
        and source.name == f"modbus 127.0.0.1:{device.port} site {SITE_CODE}"
    )
    assert str(first.origin) == "unit 1, the poll at 2026-11-18T19:06:40+08:00"  # China time
    assert [(r.point, r.t, str(r.value), r.status) for r in first.readings] == [
        ("CH4-01", T0, "0.40", 3),
        ("T-01", T0, "-5.5", 0),
        ("WS-01", T0, "2.50", 0),
        ("CO-01", T0, "65535", 0),
    ]
    # one batch per poll, each timed by the clock when the poll began
    assert [b.readings[0].t for b in sink.batches] == [
        T0 + 10_000 * i for i in range(len(sink.batches))
    ]
    c = source.counters
    assert (c.batches, c.readings, c.malformed, c.refused) == (
        len(sink.batches),
        4 * len(sink.batches),
        0,
        0,
    )


async def test_a_device_restart_is_survived_without_a_reading_lost_or_doubled(device, caplog):
    caplog.set_level(logging.INFO, "anjian.hardware")
    device.set(0, 40)
    source, sink = ModbusSource(config(device, METHANE), clock=ticking()), RecordingSink()
    async with running(source, sink):
        await until(lambda: len(sink.batches) >= 2 and source.counters.connected)
        await device.stop()
        await until(lambda: not source.counters.connected, what="the loss to be seen")
        down = len(sink.batches)
        await asyncio.sleep(10 * CYCLE)
        assert len(sink.batches) == down  # nothing delivered while the device is down
        device.set(0, 55)
        await device.start()  # the same port again
        await until(lambda: source.counters.reconnects == 1, what="a reconnect")
        await until(lambda: len(sink.batches) >= down + 2)
    ts = [b.readings[0].t for b in sink.batches]
    assert ts == sorted(set(ts))  # each poll delivered once
    assert sink.batches[-1].readings[0].value == Decimal("0.55")
    assert source.counters.malformed == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("connection lost" in m for m in messages)
    assert any(m.startswith(f"{source.name}: connection lost") for m in messages)
    assert any(m.startswith(f"{source.name}: reconnected") for m in messages)


async def test_a_device_unreachable_at_start_is_waited_for():
    port = free_port()
    d = ModbusDevice(port=port)
    d.set(0, 40)
    source, sink = ModbusSource(config(d, METHANE), clock=ticking()), RecordingSink()
    async with running(source, sink):
        await until(lambda: "cannot connect" in (source.counters.last_error or ""))
        assert sink.batches == []
        async with d:
            await until(lambda: len(sink.batches) >= 1, what="the first poll")
    assert source.counters.reconnects == 0  # a first connection, not a reconnection


async def test_an_exception_response_is_malformed_and_nothing_of_the_poll_is_recorded(device):
    bad = ModbusPoint("CO-02", 100)  # beyond the device's 100 registers
    source, sink = ModbusSource(config(device, METHANE, bad), clock=ticking()), RecordingSink()
    async with running(source, sink):
        await until(lambda: source.counters.malformed >= 3, what="malformed polls")
        assert sink.batches == []  # register 0 was read each time, yet nothing delivered
        assert source.counters.connected and source.counters.reconnects == 0
        assert "exception 2 (ILLEGAL_ADDRESS) reading holding registers 100–100 of unit 1" in (
            source.counters.last_error or ""
        )
        await device.stop()  # the device's configuration is put right, and it restarts
        device.size = 200
        await device.start()
        await until(lambda: len(sink.batches) >= 1, what="a poll after the fix")
    assert [r.point for r in sink.batches[0].readings] == ["CH4-01", "CO-02"]


@contextlib.asynccontextmanager
async def bare_device(answer):
    """A TCP server standing in for a misbehaving device: ``answer(request)`` gives the bytes
    to send back to each 12-byte read request (None: no answer). Yields the port and the loop
    times of the connections it accepted."""
    accepted: list[float] = []
    handlers: set[asyncio.Task] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())
        accepted.append(asyncio.get_running_loop().time())
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    reply = answer(await reader.readexactly(12))
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*handlers), 5)  # the source hung up on each


def bare_config(port: int, **over) -> ModbusConfig:
    return ModbusConfig(SITE_CODE, "127.0.0.1", port, interval=CYCLE, points=POINTS[:1], **over)


async def test_a_short_reply_is_malformed():
    def one_register(request: bytes) -> bytes:  # asked for two (value and status)
        tid, unit = request[:2], request[6:7]
        return tid + b"\x00\x00\x00\x05" + unit + b"\x03\x02\x00\x28"

    async with bare_device(one_register) as (port, _):
        source, sink = ModbusSource(bare_config(port), clock=ticking()), RecordingSink()
        async with running(source, sink):
            await until(lambda: source.counters.malformed >= 2, what="malformed replies")
    assert sink.batches == [] and source.counters.reconnects == 0
    assert "1 registers in the reply reading holding registers 0–1" in (
        source.counters.last_error or ""
    )


async def test_a_device_that_stops_answering_is_reconnected_with_backoff(caplog):
    async with bare_device(lambda request: None) as (port, accepted):
        source, sink = (
            ModbusSource(bare_config(port, timeout=0.2), clock=ticking()),
            RecordingSink(),
        )
        async with running(source, sink):
            await until(lambda: len(accepted) >= 5, what="five connections")
    gaps = [b - a for a, b in pairwise(accepted)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0] + 0.2  # waits that grow
    assert sink.batches == [] and source.counters.malformed == 0
    assert source.counters.reconnects >= 4
    assert "no valid reply reading holding registers 0–1" in (source.counters.last_error or "")
    lost = [r.levelno for r in caplog.records if "connection lost" in r.getMessage()]
    assert lost == [logging.WARNING]  # one warning for the outage, the retries at debug


async def test_a_refused_batch_is_counted_and_polling_goes_on(device):
    device.set(0, 40)
    source, sink = (
        ModbusSource(config(device, METHANE), clock=ticking()),
        RecordingSink("no point 'CH4-09' at this site", refuse_first=2),
    )
    async with running(source, sink):
        await until(lambda: len(sink.batches) >= 2)
    c = source.counters
    assert (c.refused, c.batches) == (2, len(sink.batches))
    assert c.last_error == (
        f"{source.name}: unit 1, the poll at 2026-11-18T19:06:50+08:00: refused: "
        "no point 'CH4-09' at this site"
    )
    assert sink.batches[0].readings[0].t == T0 + 20_000  # the third poll


async def test_a_methane_excursion_through_the_node(device, node, clock):
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    s = node.execute("sensor.register-site", js(site()), user="zhang")
    node.execute(
        "sensor.register-point",
        js({"point_code": "CH4-01", "sensor_type": "methane", "location": "upper_corner"}),
        user="zhang",
        target=s["id"],
    )
    writer = ThreadPoolExecutor(1, thread_name_prefix="node-writer")

    def write(fn, *args, **kwargs):
        return asyncio.get_running_loop().run_in_executor(writer, partial(fn, *args, **kwargs))

    def poll_clock() -> int:  # the node's time moves one AQ 6201 cycle per poll
        clock.advance(10_000)
        return clock()

    results: list[tuple[Batch, dict]] = []

    class Kept(NodeSink):
        async def readings(self, batch):
            result = await super().readings(batch)
            results.append((batch, result))
            return result

    def seen(value: str):
        return lambda: results and str(results[-1][0].readings[0].value) == value

    device.set(0, 40)
    source = ModbusSource(config(device, METHANE), clock=poll_clock)
    try:
        async with running(source, Kept(node, write)):
            await until(seen("0.40"))
            device.set(0, 160)
            await until(seen("1.60"))
            device.set(0, 30)
            await until(seen("0.30"))
    finally:
        writer.shutdown(wait=True)
    assert source.counters.refused == 0 and all(r["stored"] == 1 for _, r in results)
    sensor = {
        "sensor.alarm_raised/1",
        "sensor.power_cut/1",
        "sensor.power_restored/1",
        "sensor.alarm_cleared/1",
    }
    returned = [e for _, r in results for e in r["events"] if e in sensor]
    logged = [e["event"] for e in node.log.read(0, 1000) if e["event"] in sensor]
    assert (
        returned
        == logged
        == [
            "sensor.alarm_raised/1",
            "sensor.power_cut/1",
            "sensor.power_restored/1",
            "sensor.alarm_cleared/1",
        ]
    )
