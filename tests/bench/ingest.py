"""Sensor ingest at a county with mines: 20 sites × 200 points on the 10 s cycle (AQ 6201) for
one simulated hour, run as fast as the node takes it: each cycle of each site one batch through
the adapters' sink (the node's domain: raw readings to the local store; alarms, power cuts and
5-minute summaries to the log), against inserting the same readings into a bare SQLite table.

    .venv/bin/python tests/bench/ingest.py [--sites 20] [--points 200] [--minutes 60]

Prints the machine, batches/s and readings/s sustained (and how many times the real-time need
that is), CPU seconds, peak memory, the raw store's size per day, the log events made, and
``ratio: X`` (node readings/s / bare SQLite readings/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hardware.base import Batch  # noqa: E402
from hardware.simulator import CYCLE_MS, SiteModel  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.adapters import NodeSink  # noqa: E402
from node.service import Node  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.factories import credit_code, enterprise, js, site  # noqa: E402


def site_code(i: int) -> str:
    return f"130102B{i + 1:04d}"


async def setup(node: Node, sink: NodeSink, models: list[SiteModel]) -> None:
    node.execute("enterprise.register", js(enterprise(credit_code=credit_code(1))), user="b")
    for m in models:
        node.execute("sensor.register-site", js(site(site_code=m.site)), user="b")
        result = await sink.points(m.site, [p.definition() for p in m.points])
        assert not result["refused"], result["refused"]


async def ingest(node: Node, models: list[SiteModel], cycles: int, start: int) -> tuple[int, int]:
    sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
    batches = readings = 0
    for c in range(cycles):
        t = start + c * CYCLE_MS
        for m in models:
            batch = Batch(m.site, tuple(m.readings(t)), "bench")
            await sink.readings(batch)
            batches += 1
            readings += len(batch.readings)
    return batches, readings


def bare(models: list[SiteModel], cycles: int, start: int, path: Path) -> float:
    """The same readings inserted into a bare table, a transaction per batch (seconds)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, site TEXT, point TEXT, t INTEGER,"
        " value INTEGER, status INTEGER, UNIQUE (site, point, t))"
    )
    begin = time.perf_counter()
    for c in range(cycles):
        t = start + c * CYCLE_MS
        for m in models:
            rows = [(m.site, r.point, r.t, int(r.value * 10_000), r.status) for r in m.readings(t)]
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR IGNORE INTO readings (site, point, t, value, status)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
    elapsed = time.perf_counter() - begin
    db.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    cycles = args.minutes * 60_000 // CYCLE_MS
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    models = [
        SiteModel(site_code(i), args.points, seed=i, excursion_every=1800, excursion_length=120)
        for i in range(args.sites)
    ]
    with tempfile.TemporaryDirectory(prefix="anjian-bench-") as tmp:
        directory = make_node_dir(Path(tmp) / "county")
        node = Node(config_mod.load(directory, environ={}))
        sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
        asyncio.run(setup(node, sink, models))
        now = node.clock()
        start = now - now % CYCLE_MS - cycles * CYCLE_MS  # the simulated hour ends now
        cpu0, wall0 = time.process_time(), time.perf_counter()
        batches, readings = asyncio.run(ingest(node, models, cycles, start))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        logged = sum(
            1
            for e in node.log.read(0, 10**7)
            if e["event"].startswith("sensor.")
            and e["event"] not in ("sensor.site_registered/1", "sensor.point_registered/1")
        )
        node.close()
        raw_size = sum(p.stat().st_size for p in directory.glob("readings.db*") if p.is_file())
        base = bare(models, cycles, start, Path(tmp) / "bare.db")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    need = args.sites / (CYCLE_MS / 1000)  # batches/s in real time
    rate_b, rate_r = batches / wall, readings / wall
    print(
        f"simulated: {args.sites} sites × {args.points} points,"
        f" {cycles} cycles ({args.minutes} min)"
    )
    print(
        f"node: {batches} batches, {readings:,} readings in {wall:.1f}s: {rate_b:,.1f} batches/s,"
        f" {rate_r:,.0f} readings/s ({rate_b / need:,.0f} × real time)"
    )
    print(f"CPU: {cpu:.1f}s ({cpu / wall:.0%} of one core); peak memory {peak:,.0f} MiB")
    per_day = raw_size * (24 * 60 / args.minutes)
    print(
        f"raw store: {raw_size / 2**20:,.1f} MiB for the run, {per_day / 2**30:,.2f} GiB per day;"
        f" log events made: {logged} (alarms, power cuts, summaries)"
    )
    print(f"bare SQLite inserts: {readings / base:,.0f} readings/s")
    print(f"ratio: {(readings / wall) / (readings / base):.2f}")


if __name__ == "__main__":
    main()
