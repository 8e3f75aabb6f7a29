"""Rebuilding the projections from zero, against reading and decoding the same notifications
without projecting, measured in the same run.

The log: a provincial node's events in a realistic mix — about 60 % sensor events (5-minute
summaries, alarms, power cuts), 25 % enforcement, 10 % licences, 5 % accidents.

    .venv/bin/python tests/bench/rebuild.py [--events 200000]

Prints the machine, both rates, and ``ratio: X`` (rebuild / read).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from domain.base import to_ms  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.projector import log_events, rebuild  # noqa: E402
from node.service import Node  # noqa: E402
from tests.bench.dataset import make_node_dir, province_log  # noqa: E402
from tests.factories import NOW  # noqa: E402


def read_and_rebuild(directory: Path) -> tuple[int, float, float]:
    """Events in a node's log; its read-and-decode rate; its rebuild rate (events/s)."""
    config = config_mod.load(directory, environ={})
    node = Node(config, clock=lambda: to_ms(NOW))
    try:
        made = node.log.count()
        start = time.perf_counter()
        position = 0
        while events := log_events(node.log, position, 2000):
            position = events[-1].position
        read = made / (time.perf_counter() - start)
        start = time.perf_counter()
        rebuild(config, node.log)
        built = made / (time.perf_counter() - start)
    finally:
        node.close()
    return made, read, built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = make_node_dir(Path(tmp) / "province", "province", "130000")
        node = Node(config_mod.load(directory, environ={}), clock=lambda: to_ms(NOW))
        start = time.perf_counter()
        province_log(node, args.events)
        made = node.status()["event_count"]
        node.close()
        print(f"generated {made} events in {time.perf_counter() - start:.0f} s")
        _made, read, built = read_and_rebuild(directory)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"read and decode the notifications: {read:,.0f} events/s")
    print(f"rebuild every projection from zero: {built:,.0f} events/s")
    print(f"ratio: {built / read:.2f}")


if __name__ == "__main__":
    main()
