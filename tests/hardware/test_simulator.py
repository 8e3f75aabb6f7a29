"""The site simulator through a real mosquitto broker and the MQTT adapter into a real node:
its points registered from their definitions, and a simulated excursion giving exactly one
alarm and one power cut, then their clearance, with no reading stored twice."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hardware.mqtt import MqttConfig, MqttSource
from hardware.simulator import CYCLE_MS, SiteModel, publish_cycles
from node import config as config_mod
from node.adapters import NodeSink
from node.service import Node
from tests.factories import SITE_CODE, credit_code, enterprise, js, site
from tests.hardware.contract import until
from tests.servers import Mosquitto

pytestmark = pytest.mark.timeout(60)


def test_the_model_is_deterministic_with_one_excursion_per_period():
    model = SiteModel("S", points=8, excursion_every=600, excursion_length=60)
    assert [p.code for p in model.points] == [
        "CH4-001",
        "CH4-002",
        "CH4-003",
        "CH4-004",
        "CO-001",
        "CO-002",
        "WS-001",
        "WS-002",
    ]
    t = 1_800_000_000_000 - 1_800_000_000_000 % 600_000  # a period's start
    first = model.points[0]
    assert model.value(first, t) == SiteModel("S", points=8).value(first, t)  # same seed
    highs = [
        k for k in range(0, 1_200_000, CYCLE_MS) if model.value(first, t + k) > 1
    ]  # two periods
    assert len(highs) == 12 and highs[:6] == list(range(540_000, 600_000, CYCLE_MS))
    assert all(model.value(model.points[1], t + k) < 1 for k in range(0, 1_200_000, CYCLE_MS))


async def test_an_excursion_through_mqtt_into_a_node(tmp_path, node_dir):
    broker = Mosquitto(tmp_path / "mosquitto")
    node = Node(config_mod.load(node_dir, environ={}))
    sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
    try:
        node.execute("enterprise.register", js(enterprise(credit_code=credit_code(1))), user="z")
        node.execute("sensor.register-site", js(site()), user="z")
        model = SiteModel(SITE_CODE, points=6, excursion_every=60, excursion_length=20)
        registered = await sink.points(SITE_CODE, [p.definition() for p in model.points])
        assert len(registered["registered"]) == 6 and registered["refused"] == {}

        source = MqttSource(
            MqttConfig(SITE_CODE, "mine/sim", port=broker.port, interval=0.1, client_id="sim")
        )
        task = asyncio.create_task(source.run(sink))
        await until(lambda: source.counters.connected, what="the MQTT connection")
        # 9 cycles (90 s of site time) at 100 × real time: one excursion of 20 s
        start = (node.clock() - 120_000) // 60_000 * 60_000
        ran = await publish_cycles(
            model, speed=100, cycles=9, start_ms=start, mqtt=("127.0.0.1", broker.port, "mine/sim")
        )
        assert ran == 9
        await until(lambda: source.counters.readings >= 9 * 6, timeout=60, what="9 cycles")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        events = [e["event"] for e in node.log.read(0, 1000) if e["event"].startswith("sensor.")]
        for kind in ("alarm_raised", "power_cut", "power_restored", "alarm_cleared"):
            expected = 1 if kind in ("power_cut", "power_restored") else 2  # methane, CO
            assert events.count(f"sensor.{kind}/1") == expected, events
        assert node.readings.count() == 9 * 6  # each reading once
        assert source.counters.malformed == source.counters.refused == 0
    finally:
        node.close()
        broker.stop()


def test_every_simulated_value_is_inside_its_sensors_range_and_every_point_registers(node):
    from domain.sensors.thresholds import DEFAULT_RANGES, SensorType, scaled

    model = SiteModel("S", points=8, excursion_every=600, excursion_length=60)
    t = 1_800_000_000_000 - 1_800_000_000_000 % 600_000
    for p in model.points:
        sensor = SensorType(p.sensor_type)
        rng = DEFAULT_RANGES[sensor]
        scale = {"methane": 4, "co": 1, "air_speed": 2}[p.sensor_type]
        for k in range(0, 1_200_000, CYCLE_MS):
            assert rng.side(scaled(model.value(p, t + k), scale)) is None, (p.code, k)
    node.execute("sensor.register-site", js(site()), user="z")
    sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
    registered = asyncio.run(sink.points(SITE_CODE, [p.definition() for p in model.points]))
    assert len(registered["registered"]) == 8 and registered["refused"] == {}
    ws = node.show(SITE_CODE, "site")["points"]["WS-001"]["thresholds"]
    assert (ws["alarm"], ws["lower"]) == ("0.25", True)  # air speed has no default


def test_fault_mode_reads_the_second_methane_point_below_its_range(node):
    from hardware.base import Batch

    with pytest.raises(ValueError, match="at least 4 points"):
        SiteModel("S", points=3, faults=True)
    model = SiteModel(SITE_CODE, points=6, excursion_every=60, excursion_length=20, faults=True)
    faulty = [p.code for p in model.points if p.fault is not None]
    assert faulty == ["CH4-002"]
    node.execute("sensor.register-site", js(site()), user="z")
    sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
    assert asyncio.run(sink.points(SITE_CODE, [p.definition() for p in model.points]))["registered"]
    start = (node.clock() - 120_000) // 60_000 * 60_000  # a period's start
    for k in range(9):  # 90 s: one excursion (40-60 s)
        t = start + k * CYCLE_MS
        batch = Batch(SITE_CODE, tuple(model.readings(t)), "test")
        node.ingest(SITE_CODE, batch.body(), user="sim")
    events = [e for e in node.log.read(0, 1000) if e["event"].startswith("sensor.")]
    faults = [(e["event"], e["payload"]["point"]) for e in events if "fault" in e["event"]]
    assert faults == [
        ("sensor.fault_detected/1", "CH4-002"),
        ("sensor.fault_cleared/1", "CH4-002"),
    ]
    alarms = {e["payload"]["point"] for e in events if e["event"] == "sensor.alarm_raised/1"}
    assert alarms == {"CH4-001", "CO-001"}  # the fault raised none
