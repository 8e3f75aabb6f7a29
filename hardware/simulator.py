"""A simulated mine site (`anjian simulate-site`): methane, CO and air-speed points with
realistic values — a steady level with small noise, the same for the same seed and time — and
excursions that must raise alarms and cut power: every ``excursion_every`` seconds of site
time the first methane point goes to 1.80 %CH4 (alarm ≥ 1.0, power cut ≥ 1.5 at a working face)
and the first CO point to 40 ppm (alarm ≥ 24) for ``excursion_length`` seconds, then back.
Every value is inside its sensor's measuring range (docs/domain.md §4.2), except in fault mode
(``faults``): the second methane point then reads −1.00 %CH4, below its 0–4 % range (a sensor
fault the node records and clears), during the same seconds. Air-speed points have no default
thresholds and are defined with a lower alarm level of 0.25 m/s.

It publishes each 10-second cycle as one MQTT message (a JSON list of readings) and/or keeps a
Modbus device's registers up to date, and runs faster than real time with ``speed``: site time
then starts in the past so that it never runs ahead of the node's clock."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import aiomqtt

from domain.i18n import _
from hardware.base import PointDefinition, Reading

CYCLE_MS = 10_000  # the AQ 6201 polling cycle


@dataclass(frozen=True)
class SimPoint:
    code: str
    sensor_type: str  # the domain's SensorType value
    location: str | None  # 设置地点 (methane)
    base: Decimal  # the steady level
    noise: Decimal  # ± around it
    excursion: Decimal | None  # the level during an excursion (None: never)
    address: int  # its Modbus register
    scale: Decimal  # the register holds value / scale
    fault: Decimal | None = None  # the value read in fault mode, during excursions

    def definition(self) -> PointDefinition:
        thresholds = THRESHOLDS.get(self.sensor_type)
        return PointDefinition(
            self.code, self.sensor_type, location=self.location, thresholds=thresholds
        )


KINDS = (  # (prefix, sensor type, location, base, noise, excursion, register scale)
    (
        "CH4",
        "methane",
        "working_face",
        Decimal("0.30"),
        Decimal("0.05"),
        Decimal("1.80"),
        Decimal("0.01"),
    ),
    ("CO", "co", None, Decimal("5"), Decimal("2"), Decimal("40"), Decimal("1")),
    ("WS", "air_speed", None, Decimal("1.50"), Decimal("0.20"), None, Decimal("0.01")),
)
# Thresholds of the types the node has no default for: air speed (the 规程's minimum at a
# working face, 0.25 m/s [U], as a lower limit; the simulated 1.30-1.70 m/s never reaches it)
THRESHOLDS = {"air_speed": {"alarm": "0.25", "lower": True}}
FAULT_VALUE = Decimal("-1.00")  # %CH4: below the 0–4 % range of a methane sensor


class SiteModel:
    def __init__(
        self,
        site: str,
        points: int = 20,
        seed: int = 1,
        excursion_every: float = 1800.0,
        excursion_length: float = 120.0,
        faults: bool = False,
    ) -> None:
        if points < 3:
            raise ValueError(_("a simulated site has at least 3 points (methane, CO, air speed)"))
        if faults and points < 4:
            raise ValueError(_("fault mode needs at least 4 points (two of them methane)"))
        self.site, self.seed = site, seed
        self.every, self.length = int(excursion_every * 1000), int(excursion_length * 1000)
        shares = (points // 2, points // 4, points - points // 2 - points // 4)
        made: list[SimPoint] = []
        for (prefix, kind, location, base, noise, high, scale), n in zip(
            KINDS, shares, strict=True
        ):
            for i in range(n):
                made.append(
                    SimPoint(
                        f"{prefix}-{i + 1:03d}",
                        kind,
                        location if kind == "methane" else None,
                        base,
                        noise,
                        high if i == 0 else None,  # the first of each gas has the excursions
                        len(made),
                        scale,
                        FAULT_VALUE if faults and kind == "methane" and i == 1 else None,
                    )
                )
        self.points = made

    def in_excursion(self, t: int) -> bool:
        return self.every > 0 and self.length > 0 and (t % self.every) >= self.every - self.length

    def value(self, p: SimPoint, t: int) -> Decimal:
        if p.excursion is not None and self.in_excursion(t):
            return p.excursion
        if p.fault is not None and self.in_excursion(t):
            return p.fault
        digest = hashlib.blake2b(f"{self.seed}:{p.code}:{t}".encode(), digest_size=4).digest()
        u = Decimal(int.from_bytes(digest, "big")) / Decimal(2**32)  # 0 ≤ u < 1
        return (p.base + p.noise * (2 * u - 1)).quantize(p.scale)

    def readings(self, t: int) -> list[Reading]:
        return [Reading(p.code, t, self.value(p, t)) for p in self.points]

    def registers(self, t: int) -> dict[int, int]:
        return {p.address: int(self.value(p, t) / p.scale) for p in self.points}


async def publish_cycles(
    model: SiteModel,
    *,
    speed: float = 1.0,
    cycles: int | None = None,
    start_ms: int | None = None,
    mqtt: tuple[str, int, str] | None = None,
    on_cycle: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Run ``cycles`` 10-second cycles (None: until cancelled) at ``speed`` × real time;
    publish each on ``mqtt`` (host, port, topic) and call ``on_cycle(t)`` (e.g. to update a
    Modbus device). Returns the cycles run."""
    now = int(time.time() * 1000)
    if start_ms is None:
        ahead = 0 if cycles is None or speed <= 1 else int(cycles * CYCLE_MS)
        start_ms = now - ahead
    t = start_ms - start_ms % CYCLE_MS
    done = 0
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(aiomqtt.Client(mqtt[0], mqtt[1])) if mqtt else None
        while cycles is None or done < cycles:
            if on_cycle is not None:
                await on_cycle(t)
            if client is not None and mqtt is not None:
                payload = [
                    {"point": r.point, "value": str(r.value), "time": r.t, "status": r.status}
                    for r in model.readings(t)
                ]
                await client.publish(mqtt[2], json.dumps(payload), qos=1)
            done += 1
            t += CYCLE_MS
            await asyncio.sleep(CYCLE_MS / 1000 / speed)
    return done
