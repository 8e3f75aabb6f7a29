"""The port every sensor adapter fills: a ``Source`` that turns what a monitoring system sends
(Modbus registers, MQTT messages, dropped files) into reading ``Batch``es for one site and hands
them to a ``Sink`` — in ``anjian serve``, the node, which takes each batch through the domain
(raw readings to the local store; alarms, power cuts and summaries to the log,
docs/architecture.md §4).

A source runs until cancelled and survives its peer: a device or broker that restarts, a
malformed frame, payload or file is a log line and a counter, never a crash and never a reading
recorded from it (hardware.errors names what can go wrong). A batch delivered again (a retry
after a failure) is harmless: the readings store keeps one reading per point and time. Every
source meets the contract of tests/hardware/contract.py.

What an operator reads (log lines, ``last_error``, reason files) is a ``domain.i18n.Text``,
read in the node's language (``ANJIAN_LANG``, the locale; zh-CN by default)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from domain.i18n import Text, _
from hardware.errors import Refused as Refused  # re-exported: the Sink's refusal

log = logging.getLogger("anjian.hardware")


@dataclass(frozen=True)
class Reading:
    point: str  # 测点编码, as registered at the site
    t: int  # milliseconds since the epoch, UTC
    value: Decimal  # in the point's unit (e.g. 0.75 for 0.75 %CH4)
    status: int = 0  # the status bits of docs/domain.md §4.3


@dataclass(frozen=True)
class Batch:
    site: str  # the site code the readings belong to
    readings: tuple[Reading, ...]
    origin: str | Text  # where it came from, for the log ("modbus 10.0.0.5:502", "file X.txt")

    def body(self) -> str:
        """The JSON the node's readings endpoint takes."""
        return json.dumps(
            {
                "readings": [
                    {"point": r.point, "t": r.t, "value": str(r.value), "status": r.status}
                    for r in self.readings
                ]
            }
        )


@dataclass(frozen=True)
class PointDefinition:
    """A measuring point as a monitoring system defines it (a CDDY record)."""

    point: str
    sensor_type: str  # the domain's SensorType value, e.g. "methane"
    place: str | None = None  # 安装位置 as written
    thresholds: dict[str, Any] | None = None  # {"alarm", "power_cut", "restore", "lower"}
    location: str | None = None  # 设置地点 (the domain's Location), which sets methane defaults


class Sink(Protocol):
    async def readings(self, batch: Batch) -> dict[str, Any]:
        """Take a batch; raise Refused with the reason if the node will not."""

    async def points(self, site: str, points: list[PointDefinition]) -> dict[str, Any]:
        """Register the points a site does not have yet; raise Refused with the reason."""


@dataclass
class Counters:
    """What a source has done, for `anjian status` and GET /api/v1/hardware."""

    batches: int = 0
    readings: int = 0
    refused: int = 0  # batches the node refused (an unknown point, a bad value): Refused
    malformed: int = 0  # frames, payloads or files that could not be read: Malformed
    reconnects: int = 0
    connected: bool = False
    last_error: str | None = None
    # each adapter's own; every adapter counts ``failures``: a sink that failed (not a refusal:
    # the node down, its store busy), whose batch the adapter keeps or retries as it documents
    extra: dict[str, int] = field(default_factory=dict)

    def error(self, what: str | Text, counter: str = "malformed") -> None:
        """A refusal or malformed input (``counter``), logged; ``last_error`` holds it as the
        node's language reads it (it is shown as it is, in JSON)."""
        setattr(self, counter, getattr(self, counter) + 1)
        self.last_error = str(what)
        log.warning(what)

    def count(self, what: str, n: int = 1) -> None:
        self.extra[what] = self.extra.get(what, 0) + n

    def failed(self, what: str | Text) -> None:
        """A failure that is neither a refusal nor malformed input (``extra["failures"]``)."""
        self.count("failures")
        self.last_error = str(what)
        log.warning(what)


class Source(Protocol):
    counters: Counters

    @property
    def name(self) -> str:
        """What it reads, for log lines and status ("modbus 10.0.0.5:502 site X")."""

    async def run(self, sink: Sink) -> None:
        """Deliver batches to ``sink`` until cancelled (it ends with CancelledError then)."""


async def deliver(source: Source, sink: Sink, batch: Batch, split: bool = True) -> bool:
    """Hand one batch to the sink and count it; a refusal is counted and logged, not raised.
    A refused batch of several points is offered again point by point (``split``), so that
    one misconfigured point costs its own readings only."""
    try:
        await sink.readings(batch)
    except Refused as e:
        points = sorted({r.point for r in batch.readings})
        if split and len(points) > 1:
            for point in points:
                one = tuple(r for r in batch.readings if r.point == point)
                await deliver(source, sink, Batch(batch.site, one, batch.origin), split=False)
            return False
        source.counters.error(
            _(
                "{source}: {origin}: refused: {reason}",
                source=source.name,
                origin=batch.origin,
                reason=e.reason,
            ),
            "refused",
        )
        return False
    source.counters.batches += 1
    source.counters.readings += len(batch.readings)
    return True
