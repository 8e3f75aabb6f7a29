"""Federation end to end, county → city → national over real nats-server processes, against a
raw relay of the same envelope bytes through the same two NATS hops (publish, consume, publish,
consume; no verification, no storage), measured in the same run.

1. End to end: the county's log of N recorded events (default 100,000) is published by its
   uplink, verified and applied at the city, relayed, verified and applied at the national
   centre and projected there; timed from the start of the nodes until the national
   projections hold the last event.
2. Catch-up: the city's NATS is stopped, the county records a backlog (default 50,000), the
   NATS comes back; timed from its return until the national projections hold the backlog.

Before each timing the county's own projections hold what it recorded (in service a node
projects as it records; catching up with a log written in bulk is no part of either figure).

The tiers' servers run as in service: every connection authenticated with its node's certified
NATS identity and held to its permissions (`anjian nats config`); with ``--tls`` also over mutual
TLS (certificates from `anjian tls`'s private CA). The raw relay is the same in either case:
plain, anonymous NATS, so the ratio includes what authentication and TLS cost.

    .venv/bin/python tests/bench/federation.py [--events 100000] [--backlog 50000] [--tls]

Prints the machine, each rate, the ratios to the raw relay (the median of three runs of it),
``ratio: X`` (the lower of the two) and the rate against the single-core Ed25519 verify rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
import nats.errors  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig  # noqa: E402

from federation.jetstream import publish as transport_publish  # noqa: E402
from federation.suite import SUITES, SigningKey  # noqa: E402
from federation.transport import Message  # noqa: E402
from node.replication.natsd import NatsServer  # noqa: E402
from tests.integration.federation import (  # noqa: E402
    Federation,
    PrivateCA,
    closing_node,
    connect_as,
    register_enterprises,
)

LAYOUT = [
    ("national", "national", "000000", None),
    ("city", "city", "130100", "national"),
    ("county", "county", "130102", "city"),
]


def projected(member) -> int:  # type: ignore[no-untyped-def]
    """How many events the member's projections have applied (their log position)."""
    path = member.directory / "projections.db"
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute("SELECT MIN(position) FROM _positions").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def projected_here(member) -> bool:  # type: ignore[no-untyped-def]
    last = member.query("SELECT MAX(rowid) AS n FROM stored_events")[0]["n"] or 0
    return projected(member) >= last


def county_projected(member) -> None:  # type: ignore[no-untyped-def]
    """Wait until the county's own projections hold what it recorded: in service it projects
    as it records, so its catching up belongs to neither measurement."""
    while not projected_here(member):
        time.sleep(0.05)


def national_done(f: Federation, county_events: int) -> bool:
    national = f["national"]
    return national.applied().get("130102", 0) >= county_events and projected_here(national)


def wait(f: Federation, county_events: int, timeout: float = 1800) -> float:
    start = time.perf_counter()
    while not national_done(f, county_events):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"national did not converge: {f['national'].applied()}")
        time.sleep(0.05)
    return time.perf_counter() - start


def settle_archive(f: Federation, timeout: float = 600) -> None:
    """Wait until the national archive stream holds every envelope the centre holds."""
    total = sum(f["national"].applied().values())

    async def archived() -> int:
        nc = await connect_as(f["national"])
        info = await nc.jetstream().stream_info(
            "ANJIAN_ARCHIVE", subjects_filter="anjian.archive.env.>"
        )
        await nc.close()
        return sum((info.state.subjects or {}).values())

    deadline = time.monotonic() + timeout
    while asyncio.run(archived()) < total:
        if time.monotonic() > deadline:
            raise TimeoutError("the archive did not catch up")
        time.sleep(0.5)


async def raw_relay(payloads: list[bytes], tmp: Path) -> float:
    """Seconds to move the payloads through two JetStream hops, pipelined, no checks."""
    city = NatsServer(tmp / "raw-city").start()
    national = NatsServer(tmp / "raw-national").start()
    try:
        nc_city = await nats.connect(city.url)
        nc_nat = await nats.connect(national.url)
        js_city, js_nat = nc_city.jetstream(), nc_nat.jetstream()
        for js in (js_city, js_nat):
            await js.add_stream(StreamConfig(name="RAW", subjects=["raw.>"], duplicate_window=30))
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1)
        n = len(payloads)

        async def publish(js, items):  # type: ignore[no-untyped-def]
            # the same pipelined publishing as the nodes' (federation.transport.publish)
            for i in range(0, len(items), 1000):
                batch = [Message("raw.e", msg_id, data) for msg_id, data in items[i : i + 1000]]
                assert await transport_publish(js, batch) == len(batch)

        async def consume(js, durable, forward=None):  # type: ignore[no-untyped-def]
            """Fetch, forward (the relay hop) and acknowledge until all n have come."""
            sub = await js.pull_subscribe("raw.>", durable=durable, config=config)
            got = 0
            while got < n:
                try:
                    msgs = await sub.fetch(1000, timeout=0.2)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                if forward is not None:
                    await publish(forward, [(m.headers["Nats-Msg-Id"], m.data) for m in msgs])
                for m in msgs:
                    await m.ack()
                got += len(msgs)

        start = time.perf_counter()
        numbered = [(str(i), data) for i, data in enumerate(payloads)]
        await asyncio.gather(
            publish(js_city, numbered),
            consume(js_city, "relay", forward=js_nat),
            consume(js_nat, "sink"),
        )
        elapsed = time.perf_counter() - start
        await nc_city.close()
        await nc_nat.close()
        return elapsed
    finally:
        city.kill()
        national.kill()


def verify_rate(payloads: list[bytes]) -> float:
    key = SigningKey.generate()
    sample = payloads[:2000]
    sigs = [key.sign(p) for p in sample]
    start = time.perf_counter()
    suite = SUITES[key.suite]
    for p, s in zip(sample, sigs, strict=True):
        suite.verify(key.public, p, s)
    return len(sample) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--tls", action="store_true", help="NATS over mutual TLS")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}", flush=True)
    print(f"NATS: nkey authentication{', mutual TLS' if args.tls else ''}", flush=True)
    with tempfile.TemporaryDirectory(prefix="anjian-bench-") as tmp:
        tls = PrivateCA(Path(tmp) / "ca") if args.tls else None
        f = Federation(Path(tmp) / "fed", LAYOUT, tls=tls)
        try:
            register_enterprises(f["county"], args.events, batch=1000)
            payloads = f["county"].envelopes("130102")
            with closing_node(f["county"]) as county:
                county.project()
            f.start()
            e2e = wait(f, args.events)
            print(f"end to end: {args.events} events in {e2e:.1f}s", flush=True)
            settle_archive(f)  # the national archive trails a burst: let it finish first
            f["city"].nats.stop()
            register_enterprises(f["county"], args.backlog, start=args.events, batch=1000)
            county_projected(f["county"])
            f["city"].nats.start()
            catch = wait(f, args.events + args.backlog)
            print(f"catch-up: {args.backlog} events in {catch:.1f}s", flush=True)
        finally:
            f.close()
        backlog = f["county"].envelopes("130102")[args.events :]
        # the baseline is cheap to repeat: the median of three runs of each, on fresh servers
        raw_e2e = statistics.median(
            asyncio.run(raw_relay(payloads[: args.events], Path(tmp) / f"e2e-{i}"))
            for i in range(3)
        )
        raw_catch = statistics.median(
            asyncio.run(raw_relay(backlog, Path(tmp) / f"backlog-{i}")) for i in range(3)
        )
        verify = verify_rate(payloads)
    rate_e2e, rate_catch = args.events / e2e, args.backlog / catch
    raw_rate_e2e, raw_rate_catch = args.events / raw_e2e, args.backlog / raw_catch
    r1, r2 = rate_e2e / raw_rate_e2e, rate_catch / raw_rate_catch
    print(f"end to end: {rate_e2e:,.0f} events/s (raw relay {raw_rate_e2e:,.0f}/s): {r1:.2f}")
    print(f"catch-up:   {rate_catch:,.0f} events/s (raw relay {raw_rate_catch:,.0f}/s): {r2:.2f}")
    print(f"Ed25519 verify, one core: {verify:,.0f}/s; end to end / it: {rate_e2e / verify:.2f}")
    print(f"ratio: {min(r1, r2):.2f}")


if __name__ == "__main__":
    main()
