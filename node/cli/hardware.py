"""`anjian simulate-site`: a mine site's monitoring system on this machine, publishing on MQTT
and/or serving a Modbus TCP device, for trying the adapters, demos and load tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from domain.i18n import _
from hardware.simulator import CYCLE_MS, SiteModel, publish_cycles
from node.errors import ConfigError
from projections.queries import moment


def _host_port(value: str | None, option: str) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _colon, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(
            str(
                _(
                    "{option} is HOST:PORT, e.g. 127.0.0.1:1883, got {value!r}",
                    option=option,
                    value=value,
                )
            )
        )
    return host, int(port)


@click.command("simulate-site")
@click.argument("site")
@click.option("--points", default=20, show_default=True, type=click.IntRange(min=3))
@click.option("--mqtt", help="Publish each cycle to this broker (HOST:PORT).")
@click.option("--topic", help="The MQTT topic [mine/SITE].")
@click.option("--modbus", help="Serve a Modbus TCP device here (HOST:PORT).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.01))
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many 10 s cycles.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--start",
    help="Site time to begin at (ISO 8601 or ms) [now; when faster than real time with"
    " --cycles, that long before now].",
)
@click.option("--excursion-every", default=1800.0, show_default=True, help="Seconds of site time.")
@click.option("--excursion-length", default=120.0, show_default=True, help="Seconds.")
@click.option(
    "--faults",
    is_flag=True,
    help="The second methane point reads -1.00 % during excursions: a sensor fault.",
)
def simulate_site(
    site: str,
    points: int,
    mqtt: str | None,
    topic: str | None,
    modbus: str | None,
    speed: float,
    cycles: int | None,
    seed: int,
    start: str | None,
    excursion_every: float,
    excursion_length: float,
    faults: bool,
) -> None:
    """Simulate SITE's methane, CO and air-speed points (a 10 s cycle, excursions that must
    raise alarms and cut power), faster than real time with --speed. Prints the points first
    (code, sensor type, location, Modbus register and scale) for registering them at the node
    and configuring its adapter.

    \b
    Example, one simulated hour in a minute over MQTT:
      anjian simulate-site 130102B0012 --points 200 --mqtt 127.0.0.1:1883 --speed 60 --cycles 360
    """
    try:
        start_ms = moment(start)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--start'") from None
    broker = _host_port(mqtt, "--mqtt")
    device_at = _host_port(modbus, "--modbus")
    if broker is None and device_at is None:
        raise click.UsageError(str(_("give --mqtt, --modbus or both")))
    model = SiteModel(site, points, seed, excursion_every, excursion_length, faults=faults)
    click.echo(
        json.dumps(
            {
                "site": site,
                "points": [
                    {
                        "point": p.code,
                        "sensor_type": p.sensor_type,
                        "location": p.location,
                        "address": p.address,
                        "scale": str(p.scale),
                        "thresholds": p.definition().thresholds,
                    }
                    for p in model.points
                ],
            },
            ensure_ascii=False,
        )
    )
    try:
        ran = asyncio.run(
            _run(model, broker, topic or f"mine/{site}", device_at, speed, cycles, start_ms)
        )
    except (OSError, ConfigError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        return
    click.echo(json.dumps({"cycles": ran, "site_seconds": ran * CYCLE_MS // 1000}), err=True)


async def _run(
    model: SiteModel,
    broker: tuple[str, int] | None,
    topic: str,
    device_at: tuple[str, int] | None,
    speed: float,
    cycles: int | None,
    start_ms: int | None,
) -> int:
    device: Any = None
    if device_at is not None:
        from hardware.modbus import ModbusDevice

        device = ModbusDevice(host=device_at[0], port=device_at[1], size=len(model.points))
        await device.start()

    async def update(t: int) -> None:
        if device is not None:
            for address, raw in model.registers(t).items():
                device.set(address, raw)

    try:
        mqtt = (broker[0], broker[1], topic) if broker else None
        return await publish_cycles(
            model, speed=speed, cycles=cycles, start_ms=start_ms, mqtt=mqtt, on_cycle=update
        )
    finally:
        if device is not None:
            await device.stop()
