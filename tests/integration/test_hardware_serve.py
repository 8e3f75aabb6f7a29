"""Sensor adapters configured in the node's TOML and started by `anjian serve`: the simulator
(`anjian simulate-site`) publishing one site on a real mosquitto broker and serving another as
a Modbus TCP device, a third site's files dropped in a folder; readings stored, excursions
logged, counters at GET /api/v1/hardware."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from domain.sensors.site import site_id
from node import config as config_mod
from node.adapters import NodeSink
from node.cli.demo import Server
from node.replication.natsd import free_port
from node.service import Node
from node.users import Role, add_user
from tests.conftest import make_node_dir
from tests.factories import credit_code, enterprise, js, site
from tests.integration.federation import wait_for
from tests.servers import Mosquitto

# the broker's start 10 s, the node's 30 s, the MQTT simulator 60 s, the readings 30 + 30 s (and
# 5 s for a look), the stops 20 + 20 s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

MQTT_SITE, MODBUS_SITE, FILE_SITE = "130102B0001", "130102B0002", "130102B0003"
SIMULATE = [sys.executable, "-m", "node", "simulate-site"]


def register(directory: Path) -> None:
    """An enterprise, three sites, and the simulator's points at the first two."""
    import asyncio

    from hardware.simulator import SiteModel

    node = Node(config_mod.load(directory, environ={}))
    try:
        node.execute("enterprise.register", js(enterprise(credit_code=credit_code(1))), user="z")
        sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
        for code in (MQTT_SITE, MODBUS_SITE, FILE_SITE):
            node.execute("sensor.register-site", js(site(site_code=code)), user="z")
        for code in (MQTT_SITE, MODBUS_SITE):
            defs = [p.definition() for p in SiteModel(code, points=6).points]
            assert not asyncio.run(sink.points(code, defs))["refused"]
    finally:
        node.close()


def events(directory: Path) -> list[dict]:
    node = Node(config_mod.load(directory, environ={}))
    try:
        return [e for e in node.log.read(0, 10_000) if e["event"].startswith("sensor.")]
    finally:
        node.close()


def test_adapters_started_by_serve(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto")
    modbus_port = free_port()
    directory = make_node_dir(tmp_path / "county")
    register(directory)
    drop = directory / "drop"
    drop.mkdir()
    with (directory / "node.toml").open("a", encoding="utf-8") as f:
        f.write(
            f"""
[[hardware.mqtt]]
site = "{MQTT_SITE}"
topic = "mine/{MQTT_SITE}"
port = {broker.port}
interval = 0.2

[[hardware.modbus]]
site = "{MODBUS_SITE}"
host = "127.0.0.1"
port = {modbus_port}
interval = 0.2
points = [{{ point = "CH4-001", address = 0, scale = "0.01" }},
          {{ point = "CO-001", address = 3, scale = "1" }}]

[[hardware.filedrop]]
directory = "drop"
interval = 0.2
"""
        )
    token = add_user(config_mod.load(directory, environ={}).users_file, "watcher", Role.READER)
    server = Server(directory)
    sims = []
    try:
        common = ["--points", "6", "--speed", "50", "--excursion-every", "60"]
        start = (int(time.time() * 1000) - 180_000) // 60_000 * 60_000  # a period's start
        common += ["--excursion-length", "20", "--start", str(start)]
        mqtt = ["--cycles", "13", "--mqtt", f"127.0.0.1:{broker.port}"]
        sims.append(
            subprocess.Popen(
                [*SIMULATE, MQTT_SITE, *common, *mqtt],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
        # the Modbus device serves until the node has polled it through an excursion: the node,
        # started first, backs off between attempts to connect (up to 20 s), so a device gone
        # after a fixed 13 cycles (3 s) can be missed altogether on a busy machine
        with (tmp_path / "modbus-sim.log").open("wb") as out:
            sims.append(
                subprocess.Popen(
                    [*SIMULATE, MODBUS_SITE, *common, "--modbus", f"127.0.0.1:{modbus_port}"],
                    stdout=out,
                    stderr=out,
                )
            )
        (drop / "bad_CDSS_20261129080000.txt").write_text("not a monitoring file", "utf-8")
        output, err = sims[0].communicate(timeout=60)  # 13 cycles at 50 × real time: ~3 s
        assert sims[0].returncode == 0, err
        points = json.loads(output.splitlines()[0])
        assert [p["point"] for p in points["points"]][:2] == ["CH4-001", "CH4-002"]

        def counters() -> dict[str, dict]:
            request = urllib.request.Request(
                f"{server.url}/api/v1/hardware", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as r:
                return {s["source"].split()[0]: s for s in json.load(r)["sources"]}

        wait_for(
            lambda: counters()["mqtt"]["readings"] == 13 * 6,
            30,
            "the MQTT adapter delivered every cycle",
            counters,
        )
        # an excursion lasts 20 s of each minute of site time: 0.4 s of each 1.2 s here
        wait_for(
            lambda: any(
                e["aggregate_id"] == str(site_id(MODBUS_SITE, "130102"))
                and e["event"] == "sensor.power_cut/1"
                for e in events(directory)
            ),
            30,
            "the node polled the Modbus device through an excursion",
            counters,
            interval=0.5,
        )
        assert sims[1].poll() is None, (tmp_path / "modbus-sim.log").read_text()
        seen = counters()
        assert seen["modbus"]["batches"] > 0 and seen["modbus"]["malformed"] == 0
        assert seen["file"]["malformed"] == 1
        assert (drop / "rejected" / "bad_CDSS_20261129080000.txt.reason").exists()
    finally:
        for sim in sims:
            if sim.poll() is None:
                sim.kill()
                sim.communicate()
        server.stop()
        broker.stop()
    logged = events(directory)

    def of(code: str, kind: str) -> int:
        return sum(
            1
            for e in logged
            if e["aggregate_id"] == str(site_id(code, "130102"))
            and e["event"] == f"sensor.{kind}/1"
        )

    # 130 s of site time from a period's start, an excursion at 40-60 s of each minute: two,
    # each raising the alarms (methane and CO) and cutting power once, then clearing
    assert (of(MQTT_SITE, "alarm_raised"), of(MQTT_SITE, "power_cut")) == (4, 2)  # CH4, CO
    assert of(MQTT_SITE, "alarm_cleared") == 4 and of(MQTT_SITE, "power_restored") == 2
    assert of(MODBUS_SITE, "power_cut") >= 1  # polled in real time: at least one excursion
