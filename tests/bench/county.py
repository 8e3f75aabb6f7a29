"""A county at depth, served by `anjian serve`: memory, latency of what the web console and
programs ask under 20 concurrent HTTP clients, bytes per event on disk, a full projection
rebuild against a raw read of the same notifications, and `anjian audit verify` of its log.

The data set (tests/bench/dataset.py, fixed seed): a county 130102 with N events (default
1,000,000) of the rebuild benchmark's mix — monitoring summaries, alarms and power cuts
(≈ 60 %), inspections and their cases (≈ 27 %), licences issued by the province and taken
down by the county as in service (≈ 7 %), accidents (≈ 2.5 %), enterprises — written through
the node's store path in large transactions.

Measured, in this order: reading and decoding every notification, and rebuilding every
projection from zero (``ratio``: rebuild / read); the files on disk; `anjian audit verify`
(every signature, all cores; ``ratio``: its rate / (cores × one core's Ed25519 verify rate,
measured in the same run)); then `anjian serve` (a process, plain HTTP on 127.0.0.1, the
projections current) under 20 concurrent clients (aiohttp), each kind of request on its own:
a record (GET /api/v1/records/{id}: accidents, cases, licences, enterprises), register pages
(accidents, open cases, licences; 50 rows) and statistics (accident-stats, enforcement-stats);
p50/p99 and their goals (p99 ≤ 50 ms for a record, ≤ 100 ms for a page or a
statistic on an idle 2-core machine); and the serve process's peak RSS (goal ≤ 150 MB).
Each client sends its next request when the last is answered (a closed loop), so the latency
under load is mostly waiting: p50 comes to about clients ÷ requests/s, and requests/s to what
the server process can use of the cores ÷ its CPU per request. Beside each figure: the time
of a request made alone (one client), the server's CPU per request and how much of a core it
kept busy, and the clients' CPU per request (they share the machine).
Nothing is asserted about time: the figures are printed, with the load average seen.

    .venv/bin/python tests/bench/county.py [--events 1000000] [--requests 3000] [--data DIR]

``--data DIR`` keeps the county in DIR (and takes it from there when it is already made, to
measure again without generating).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from node.cli.demo import Server  # noqa: E402
from tests.bench.audit import single_core_rate  # noqa: E402
from tests.bench.dataset import CountyDirs, county  # noqa: E402
from tests.bench.rebuild import read_and_rebuild  # noqa: E402

MIB = 2**20
ANJIAN = [sys.executable, "-m", "node"]  # `anjian` of this virtualenv
GOALS_MS = {"record": 50, "page": 100, "statistics": 100}
KINDS = [  # (label, what, path or None for records)
    ("record", "record", None),
    ("accidents page", "page", "/api/v1/query/accidents?limit=50"),
    ("open-cases page", "page", "/api/v1/query/open-cases?limit=50"),
    ("licences page", "page", "/api/v1/query/licences?limit=50"),
    ("accident-stats", "statistics", "/api/v1/query/accident-stats"),
    ("enforcement-stats", "statistics", "/api/v1/query/enforcement-stats"),
]
ALONE = 100  # requests of each kind made by one client alone (the time without contention)
RECORD_TABLES = ("accidents", "cases", "licences", "enterprises")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def files_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def largest(path: Path, events: int, top: int = 6) -> str:
    """The largest tables and indexes of a database, in bytes per event (dbstat)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT ?", (top,)
        ).fetchall()
    return ", ".join(f"{name} {size / events:,.0f}" for name, size in rows)


def made_or_reused(data: Path, events: int, seed: int) -> tuple[CountyDirs, int]:
    """The county in ``data``: reused when a finished one is there, else generated."""
    done = data / "generated.json"
    if done.exists():
        made = json.loads(done.read_text())
        print(f"data set: reused from {data} ({made['events']:,} events)", flush=True)
        return CountyDirs(data / "county", data / "province", data / "root.pub"), made["events"]
    for stale in ("county", "province", "root.pub"):
        target = data / stale
        if target.is_dir():
            shutil.rmtree(target)
        target.unlink(missing_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    dirs, counts = county(data, events, seed=seed)
    elapsed = time.perf_counter() - start
    span = (counts.pop("last") - counts.pop("first")) / 86_400_000
    total = sum(counts.values())
    mix = ", ".join(f"{kind} {n / total:.1%}" for kind, n in counts.most_common())
    print(
        f"generated {total:,} events in {elapsed:.0f} s ({total / elapsed:,.0f}/s),"
        f" spanning {span:.0f} days: {mix}",
        flush=True,
    )
    done.write_text(json.dumps({"events": total, "seed": seed, "mix": dict(counts)}))
    return dirs, total


def audit_verify(dirs: CountyDirs) -> tuple[int, float]:
    """`anjian audit verify DIR --root-key root.pub` (every signature, all cores): the events
    it checked and the seconds it took, process start included."""
    start = time.perf_counter()
    command = [*ANJIAN, "audit", "verify", str(dirs.county), "--root-key", str(dirs.root_pub)]
    result = subprocess.run(
        [*command, "--format", "json"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"audit verify failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return int(json.loads(result.stdout)["events_checked"]), elapsed


def token(directory: Path) -> str:
    """A reader's token, as an operator gives one (`anjian users token`)."""
    result = subprocess.run(
        [*ANJIAN, "users", "token", str(directory), "bench", "--role", "reader"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def projected(directory: Path) -> bool:
    """Whether the projections hold every event of the log."""
    with closing(sqlite3.connect(f"file:{directory / 'events.db'}?mode=ro", uri=True)) as db:
        last = db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0] or 0
    with closing(sqlite3.connect(f"file:{directory / 'projections.db'}?mode=ro", uri=True)) as db:
        position = db.execute("SELECT MIN(position) FROM _positions").fetchone()[0] or 0
    return int(position) >= int(last)


def record_ids(directory: Path, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` (kind, id) of records to show: accidents, cases, licences and enterprises in
    proportion to their numbers."""
    with closing(sqlite3.connect(f"file:{directory / 'projections.db'}?mode=ro", uri=True)) as db:
        every = [(t, str(r[0])) for t in RECORD_TABLES for r in db.execute(f"SELECT id FROM {t}")]
    return [rng.choice(every) for _ in range(n)]


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> tuple[int, int]:
    """Peak resident memory (VmHWM, bytes) of a process and the sum over its descendants."""

    def hwm(p: int) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def children(p: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            found += [int(c) for c in task.read_text().split()]
        return found + [g for c in found for g in children(c)]

    return hwm(pid), sum(hwm(c) for c in children(pid))


async def timed_requests(
    url: str, headers: dict[str, str], paths: list[str], clients: int
) -> tuple[list[tuple[str, float]], float]:
    """Each path requested once by ``clients`` concurrent clients: (path, latency in s) of each,
    and the wall-clock seconds for all of them."""
    timed: list[tuple[str, float]] = []
    queue = iter(paths)

    async def client(session: aiohttp.ClientSession) -> None:
        for path in queue:
            start = time.perf_counter()
            async with session.get(url + path, headers=headers) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
            timed.append((path, time.perf_counter() - start))

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return timed, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of latencies in seconds, in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def serve_and_load(dirs: CountyDirs, requests: int, clients: int, seed: int) -> tuple[int, int]:
    """Print the HTTP figures; return the serve process's peak RSS and its children's."""
    headers = {"Authorization": f"Bearer {token(dirs.county)}", "Accept-Language": "zh-CN"}
    os.environ["ANJIAN_LANG"] = "en"  # its log line that gives its address, as Server reads it
    server = Server(dirs.county, timeout=300)
    try:
        while not projected(dirs.county):
            time.sleep(0.5)
        records = record_ids(dirs.county, random.Random(seed), requests + 100)
        kind_of = {f"/api/v1/records/{i}": kind for kind, i in records}
        print(f"serving on {server.url}, projections current; {load()}", flush=True)
        for label, what, path in KINDS:
            if path is None:
                paths = [f"/api/v1/records/{i}" for _kind, i in records]
            else:
                paths = [path] * (requests + 100)
            asyncio.run(timed_requests(server.url, headers, paths[:100], clients))  # warm-up
            # the time of one request alone (one client), then under the concurrent clients
            alone, _wall = asyncio.run(timed_requests(server.url, headers, paths[:ALONE], 1))
            cpu0, client0 = cpu_seconds(server.proc.pid), time.process_time()
            timed, wall = asyncio.run(timed_requests(server.url, headers, paths[100:], clients))
            cpu = (cpu_seconds(server.proc.pid) - cpu0) / len(timed) * 1000
            client = (time.process_time() - client0) / len(timed) * 1000
            latencies = [t for _p, t in timed]
            p50, p99 = pct(latencies, 0.50), pct(latencies, 0.99)
            one = pct([t for _p, t in alone], 0.5)
            goal = GOALS_MS[what]
            print(
                f"{label}: p50 {p50:,.1f} ms, p99 {p99:,.1f} ms"
                f" (goal p99 ≤ {goal} ms: {'met' if p99 <= goal else 'NOT met'});"
                f" {len(timed) / wall:,.0f} requests/s; one client alone: p50 {one:,.1f} ms;"
                f" CPU per request: server {cpu:,.1f} ms (busy {cpu * len(timed) / wall / 1000:.2f}"
                f" of a core), clients {client:,.1f} ms",
                flush=True,
            )
            if path is None:
                by_kind: dict[str, list[float]] = defaultdict(list)
                for p, t in timed:
                    by_kind[kind_of[p]].append(t)
                print(
                    "  records by kind: "
                    + "; ".join(
                        f"{kind} ({len(ts)}) p50 {pct(ts, 0.5):,.1f} ms,"
                        f" p99 {pct(ts, 0.99):,.1f} ms"
                        for kind, ts in sorted(by_kind.items())
                    ),
                    flush=True,
                )
        return peak_rss(server.proc.pid)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3000, help="per kind of request")
    parser.add_argument("--clients", type=int, default=20, help="concurrent HTTP clients")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--data", type=Path, help="keep the county here (reuse it if made)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()};"
        f" {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="anjian-bench-") as tmp:
        data = args.data or Path(tmp)
        dirs, _made = made_or_reused(data, args.events, args.seed)
        events, read, built = read_and_rebuild(dirs.county)
        print(f"read and decode the notifications: {read:,.0f} events/s", flush=True)
        print(f"rebuild every projection from zero: {built:,.0f} events/s", flush=True)
        log_bytes = files_size(dirs.county / "events.db")
        views_bytes = files_size(dirs.county / "projections.db")
        print(
            f"on disk: log {log_bytes / MIB:,.0f} MiB, {log_bytes / events:,.0f} bytes/event"
            f" (largest, bytes/event: {largest(dirs.county / 'events.db', events)});"
            f" projections {views_bytes / MIB:,.0f} MiB, {views_bytes / events:,.0f} bytes/event"
            f" (largest: {largest(dirs.county / 'projections.db', events)})",
            flush=True,
        )
        sample = [os.urandom(400) for _ in range(2000)]
        single = single_core_rate(sample)
        checked, seconds = audit_verify(dirs)
        single = statistics.mean([single, single_core_rate(sample)])  # before and after
        verify = checked / seconds
        print(
            f"anjian audit verify: {checked:,} events in {seconds:.1f} s ({verify:,.0f}/s);"
            f" Ed25519 verify, one core: {single:,.0f}/s",
            flush=True,
        )
        hwm, children = serve_and_load(dirs, args.requests, args.clients, args.seed)
    goal = "met" if hwm <= 150 * 10**6 else "NOT met"
    print(
        f"peak RSS of anjian serve: {hwm / MIB:,.0f} MiB (goal ≤ 150 MB: {goal});"
        f" its projections process: {children / MIB:,.0f} MiB"
    )
    print(f"events: {events:,}; {load()}")
    print(f"ratio: {built / read:.2f} (rebuild / read)")
    print(
        f"ratio: {verify / (cores * single):.2f} (audit verify / ({cores} cores × one core's"
        " Ed25519 verify rate))"
    )


if __name__ == "__main__":
    main()
