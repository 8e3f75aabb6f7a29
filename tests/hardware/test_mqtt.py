"""The MQTT adapter against a real mosquitto broker started by the test: the source contract
(tests/hardware/contract.py); readings batched per interval, malformed messages counted and left
out, a broker restarted mid-run, a node's alarm from a published excursion."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import aiomqtt
import pytest

from hardware.mqtt import Malformed, MqttConfig, MqttSource, readings_of
from tests.hardware.contract import RecordingSink, SourceContract
from tests.servers import Mosquitto

pytestmark = pytest.mark.timeout(150)  # the broker-restart test's waits add up to ~130 s


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto")
    yield b
    b.stop()


class TestContract(SourceContract):
    """Fed by publishing on the broker: a reading as JSON, or a payload that is not JSON."""

    __test__ = True
    SITE = "S1"
    POINT = "CH4-01"
    KEEPS_FAILED = True  # kept for the next interval

    @pytest.fixture(autouse=True)
    def _broker(self, broker):
        self.broker = broker
        self.times = count(1000, 1000)

    def create_source(self):
        c = MqttConfig(site=self.SITE, topic="mine/S1/#", port=self.broker.port, interval=0.05)
        return MqttSource(c)

    async def offer(self, value):
        payload = {"point": self.POINT, "value": str(value), "time": next(self.times)}
        await publish(self.broker.port, "mine/S1/a", json.dumps(payload).encode())

    async def offer_malformed(self):
        await publish(self.broker.port, "mine/S1/a", b"{oops")


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
    sink = RecordingSink(refuse_point="BAD-01")
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
    source = MqttSource(MqttConfig(site="S1", topic="t", interval=60))
    sink = RecordingSink(fail_first=1, failure=OSError("database is locked"))
    source.take(reading("CH4-01", 1000), "t")
    await source.flush(sink)
    assert sink.batches == [] and "database is locked" in (source.counters.last_error or "")
    source.take(reading("CH4-01", 2000), "t")
    await source.flush(sink)
    assert sink.seen() == [("CH4-01", 1000), ("CH4-01", 2000)]
