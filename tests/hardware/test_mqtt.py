"""The MQTT adapter against a real mosquitto broker started by the test: readings batched per
interval, malformed messages counted and left out, a broker restarted mid-run, a node's alarm
from a published excursion."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import aiomqtt
import pytest

from hardware.base import Batch, Refused
from hardware.mqtt import Malformed, MqttConfig, MqttSource, readings_of
from tests.servers import Mosquitto

pytestmark = pytest.mark.timeout(60)


class Collect:
    """A sink that keeps what it is given (and can refuse a point)."""

    def __init__(self, refuse: str | None = None) -> None:
        self.batches: list[Batch] = []
        self.refuse = refuse

    async def readings(self, batch: Batch) -> dict:
        if self.refuse and any(r.point == self.refuse for r in batch.readings):
            raise Refused(f"no point {self.refuse} at site {batch.site}")
        self.batches.append(batch)
        return {}

    async def points(self, site, points):  # pragma: no cover - not used by MQTT
        return {}

    def seen(self) -> list[tuple[str, int]]:
        return [(r.point, r.t) for b in self.batches for r in b.readings]


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto")
    yield b
    b.stop()


def test_a_message_is_one_reading_or_a_list():
    one = readings_of(b'{"point": "CH4-01", "value": 0.62, "time": 1795939200000}')
    assert [(r.point, r.value, r.t, r.status) for r in one] == [
        ("CH4-01", Decimal("0.62"), 1795939200000, 0)
    ]
    many = readings_of(
        json.dumps(
            [
                {"point": "CO-01", "value": 3, "time": "2026-11-29T08:00:00+08:00", "status": 4},
                {"point": "WS-01", "value": "1.25", "time": 1795939200000},
            ]
        ).encode()
    )
    assert [(r.point, r.value, r.t, r.status) for r in many] == [
        ("CO-01", Decimal(3), int(datetime(2026, 11, 29, tzinfo=UTC).timestamp() * 1000), 4),
        ("WS-01", Decimal("1.25"), 1795939200000, 0),
    ]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "empty"),
        (b'{"point": "CH4-01", "value": 0.6}', "point, value, time"),
        (b'{"point": "CH4-01", "value": 0.6, "time": 1, "extra": 1}', "unknown fields"),
        (b'{"point": "", "value": 0.6, "time": 1}', "point"),
        (b'{"point": "CH4-01", "value": true, "time": 1}', "value must be a number"),
        (b'{"point": "CH4-01", "value": "high", "time": 1}', "not a number"),
        (b'{"point": "CH4-01", "value": 0.6, "time": "2026-11-29T08:00:00"}', "no offset"),
        (b'{"point": "CH4-01", "value": 0.6, "time": "yesterday"}', "not ISO 8601"),
        (b'{"point": "CH4-01", "value": 0.6, "time": 1, "status": 300}', "status"),
    ],
)
def test_malformed_messages_are_named(payload, says):
    with pytest.raises(Malformed, match=says):
        readings_of(payload)


async def publish(port: int, topic: str, *payloads: bytes) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for p in payloads:
            await client.publish(topic, p, qos=1)


def reading(point: str, t: int, value: float = 0.5) -> bytes:
    return json.dumps({"point": point, "value": value, "time": t}).encode()


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_batches_per_interval_malformed_left_out_and_a_broker_restart(broker):
    source = MqttSource(
        MqttConfig(site="S1", topic="mine/S1/#", port=broker.port, interval=0.2, client_id="s1")
    )
    sink = Collect(refuse="BAD-01")
    task = asyncio.create_task(source.run(sink))
    try:
        await until(lambda: source.counters.connected)
        await publish(
            broker.port, "mine/S1/a", reading("CH4-01", 1000), b"{oops", reading("CO-01", 1000)
        )
        await publish(broker.port, "mine/S1/a", reading("CH4-01", 1000))  # the same again
        await until(lambda: len(sink.seen()) == 2)
        assert source.counters.malformed == 1 and "not JSON" in (source.counters.last_error or "")
        await publish(broker.port, "mine/S1/b", reading("BAD-01", 2000), reading("CH4-01", 2000))
        await until(lambda: ("CH4-01", 2000) in sink.seen())  # the good point goes through
        assert source.counters.refused == 1

        broker.stop()
        await until(lambda: not source.counters.connected)
        broker.start()
        await until(lambda: source.counters.connected, timeout=20)
        assert source.counters.reconnects >= 1
        await publish(broker.port, "mine/S1/a", reading("CH4-01", 3000))
        await until(lambda: ("CH4-01", 3000) in sink.seen())
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    keys = sink.seen()
    assert len(keys) == len(set(keys)) == 4  # nothing twice
    assert {b.site for b in sink.batches} == {"S1"}


async def test_a_batch_the_node_cannot_take_now_is_kept_for_the_next_interval():
    class Busy(Collect):
        calls = 0

        async def readings(self, batch):
            self.calls += 1
            if self.calls == 1:
                raise OSError("database is locked")
            return await super().readings(batch)

    source = MqttSource(MqttConfig(site="S1", topic="t", interval=60))
    sink = Busy()
    source.take(reading("CH4-01", 1000), "t")
    await source.flush(sink)
    assert sink.batches == [] and "database is locked" in (source.counters.last_error or "")
    source.take(reading("CH4-01", 2000), "t")
    await source.flush(sink)
    assert sink.seen() == [("CH4-01", 1000), ("CH4-01", 2000)]
