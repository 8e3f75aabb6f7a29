"""Recording throughput with signing, chaining and checkpoints, against a raw baseline measured
in the same run.

Both sides store the same domain events, made before the clock starts, in batches of the same
size, one transaction per batch as the HTTP batch endpoint does.
Measured: the node's signed log — eventsourcing's save plus, per event, the canonical
envelope, its Ed25519 signature, the chain hash and the Merkle tree, in the same transaction,
and a signed checkpoint every 1,000 events.
Baseline: eventsourcing's SQLite batch save of the same events plus one Ed25519 signature
each; no envelope, no chain, no checkpoint.
Also printed: the whole batch endpoint path (JSON validation and domain rules included).

    .venv/bin/python tests/bench/record.py [--events 20000] [--batch 200]

Prints the machine, both rates, and ``ratio: X`` (measured / baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from eventsourcing.application import Application  # noqa: E402

from domain.accident import Accident, ReportAccident  # noqa: E402
from domain.base import Actor, Context, to_ms  # noqa: E402
from federation.suite import SigningKey  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.service import Node  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.factories import NOW, accident  # noqa: E402


def bodies(n: int) -> list[dict]:
    return [accident(deaths=i % 4, place=f"工作面 {i}") for i in range(n)]


def prepared(items: list[dict]) -> list[Accident]:
    ctx = Context(Actor("bench", "130102"), to_ms(NOW), "county", "130102", uuid.uuid4)
    return [Accident.report(ReportAccident.model_validate_json(json.dumps(b)), ctx) for b in items]


def measured(directory: Path, items: list[dict], batch: int) -> float:
    node = Node(config_mod.load(directory, environ={}), clock=lambda: to_ms(NOW))
    aggs = prepared(items)
    start = time.perf_counter()
    for i in range(0, len(aggs), batch):
        node._append(aggs[i : i + batch])  # the store path of execute_batch
    node.checkpoint()
    elapsed = time.perf_counter() - start
    node.close()
    return len(items) / elapsed


def endpoint(directory: Path, items: list[dict], batch: int) -> float:
    node = Node(config_mod.load(directory, environ={}), clock=lambda: to_ms(NOW))
    start = time.perf_counter()
    for i in range(0, len(items), batch):
        commands = [{"kind": "accident.report", "body": b} for b in items[i : i + batch]]
        node.execute_batch(json.dumps({"commands": commands}), user="bench")
    node.checkpoint()
    elapsed = time.perf_counter() - start
    node.close()
    return len(items) / elapsed


def baseline(path: Path, items: list[dict], batch: int) -> float:
    import node.store  # noqa: F401 - registers the wire names of the event types

    app = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    key = SigningKey.generate()
    aggs = prepared(items)
    start = time.perf_counter()
    for i in range(0, len(aggs), batch):
        chunk = aggs[i : i + batch]
        for a in chunk:
            for e in a.pending_events:
                key.sign(json.dumps(e.payload(), ensure_ascii=False).encode())
        app.save(*chunk)
    elapsed = time.perf_counter() - start
    app.close()
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    items = bodies(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(Path(tmp) / "baseline.db", items, args.batch)
        rate = measured(make_node_dir(Path(tmp) / "county"), items, args.batch)
        whole = endpoint(make_node_dir(Path(tmp) / "county2"), items, args.batch)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"events: {args.events} in batches of {args.batch}")
    print(
        "baseline (eventsourcing SQLite batch save + one Ed25519 signature each):"
        f" {base:,.0f} events/s"
    )
    print(
        "measured (signed log: save, envelope, signature, chain, Merkle, checkpoints):"
        f" {rate:,.0f} events/s"
    )
    print(f"batch endpoint path (JSON validation and domain rules included): {whole:,.0f} events/s")
    print(f"ratio: {rate / base:.2f}")


if __name__ == "__main__":
    main()
