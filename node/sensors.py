"""The sensor adapters a node's configuration names (`[[hardware.modbus]]`, `[[hardware.mqtt]]`,
`[[hardware.filedrop]]`), made ready for `anjian serve`, and their counters for the API."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hardware.base import Source
from hardware.filedrop import FileDropConfig, FileDropSource
from hardware.modbus import ModbusConfig, ModbusPoint, ModbusSource
from hardware.mqtt import MqttConfig, MqttSource
from node.config import Config


def sources(config: Config) -> list[Source]:
    """The sensor adapters the node's configuration names (`[[hardware.*]]`)."""
    hw = config.hardware
    if hw.modbus:  # the adapter logs what it meets, once per outage; pymodbus every retry
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    found: list[Source] = []
    for m in hw.modbus:
        points = tuple(
            ModbusPoint(p.point, p.address, p.scale, p.signed, p.status_register, p.kind)
            for p in m.points
        )
        found.append(
            ModbusSource(
                ModbusConfig(m.site, m.host, m.port, m.unit, m.interval, m.timeout, points)
            )
        )
    for q in hw.mqtt:
        topic = hashlib.sha256(q.topic.encode()).hexdigest()[:8]
        client_id = q.client_id or f"anjian-{config.node.origin}-{q.site}-{topic}"
        found.append(
            MqttSource(
                MqttConfig(
                    q.site, q.topic, q.host, q.port, q.interval, q.username, q.password, client_id
                )
            )
        )
    for f in hw.filedrop:
        # absolute, but not resolved: a link in place of the folder is refused, never followed
        directory = Path(os.path.abspath(config.directory / f.directory))
        settings = FileDropConfig(
            directory, f.interval, dict(f.sites), max_file_bytes=f.max_file_bytes
        )
        found.append(FileDropSource(settings))
    return found


def counters(found: list[Source]) -> list[dict[str, Any]]:
    return [{"source": s.name, **asdict(s.counters)} for s in found]
