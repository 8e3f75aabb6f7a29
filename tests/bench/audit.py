"""Verifying an audit export on all cores (`anjian audit verify`, every signature), against
the single-core Ed25519 verify rate measured in the same run, times the number of cores.

The export: a province's counties (20 origins) with realistic envelopes (an enterprise
registration each, ~400 bytes) and a signed checkpoint every 1,000 envelopes, certified root →
province → county.

    .venv/bin/python tests/bench/audit.py [--events 100000] [--runs 3]

Prints the machine, both rates (medians of the runs; the single-core rate measured before and
after each run, its median), the ``--fast`` rate beside them, and
``ratio: X`` (verify / (cores × single-core Ed25519 verify rate)).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from domain.base import to_ms  # noqa: E402
from federation.checkpoint import sign_checkpoint  # noqa: E402
from federation.envelope import GENESIS, seal  # noqa: E402
from federation.keys import ROOT as ROOT_SIGNER  # noqa: E402
from federation.keys import build_trust, certify  # noqa: E402
from federation.merkle import CompactRange, leaf_hash  # noqa: E402
from federation.suite import SUITES, SigningKey  # noqa: E402
from node.audit.export import FORMAT, SCHEMA, open_source  # noqa: E402
from node.audit.verify import verify  # noqa: E402
from tests.factories import NOW, credit_code, enterprise  # noqa: E402

COUNTIES = [f"1301{n:02d}" for n in range(2, 22)]


def make_export(path: Path, events: int) -> tuple[bytes, list[bytes]]:
    """Write the export; return the root public key and a sample of signed messages."""
    root, province = SigningKey.generate(), SigningKey.generate()
    docs = [
        certify(
            root,
            ROOT_SIGNER,
            origin="130000",
            region="130000",
            tier="province",
            public=province.public,
        )
    ]
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(SCHEMA)
    db.execute("BEGIN")
    db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
    t0 = to_ms(NOW) - 86_400_000
    per = events // len(COUNTIES)
    for n, origin in enumerate(COUNTIES):
        key = SigningKey.generate()
        docs.append(
            certify(
                province, "130000", origin=origin, region=origin, tier="county", public=key.public
            )
        )
        prev, tree, rows, notes = GENESIS, CompactRange(), [], []
        for seq in range(1, per + 1):
            body = enterprise(credit_code=credit_code(n * per + seq, origin), division=origin)
            raw = seal(
                key,
                origin=origin,
                seq=seq,
                prev=prev,
                at=t0 + seq * 1000,
                type="enterprise.registered/1",
                aggregate=str(uuid.uuid4()),
                version=1,
                actor={"node": origin, "user": "clerk"},
                payload=body,
            )
            prev = hashlib.sha256(raw).digest()
            tree.append(leaf_hash(raw))
            rows.append((origin, seq, raw))
            if seq % 1000 == 0 or seq == per:
                notes.append((origin, seq, sign_checkpoint(key, origin, seq, tree.root()).text))
        db.executemany("INSERT INTO envelopes VALUES (?, ?, ?)", rows)
        db.executemany("INSERT INTO checkpoints VALUES (?, ?, ?)", notes)
    db.executemany("INSERT INTO documents (raw) VALUES (?)", [(d,) for d in docs])
    db.execute("COMMIT")
    db.close()
    return root.public, [r[2] for r in rows[:2000]]


def single_core_rate(messages: list[bytes]) -> float:
    key = SigningKey.generate()
    sigs = [key.sign(m) for m in messages]
    suite = SUITES[key.suite]
    start = time.perf_counter()
    for _ in range(3):
        for m, s in zip(messages, sigs, strict=True):
            suite.verify(key.public, m, s)
    return 3 * len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="medians of this many runs")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="anjian-bench-") as tmp:
        path = Path(tmp) / "province.anjian"
        root, sample = make_export(path, args.events)
        singles = [single_core_rate(sample)]
        rates: dict[str, list[float]] = {"every signature": [], "--fast": []}
        with open_source(path) as source:
            trust, _ = build_trust(root, source.documents)
            for _ in range(args.runs):  # interleaved with the baseline: the same noise
                for mode, signatures in (("every signature", True), ("--fast", False)):
                    start = time.perf_counter()
                    report = verify(source, trust, signatures=signatures)
                    elapsed = time.perf_counter() - start
                    assert report["ok"], report["failures"]
                    rates[mode].append(report["events_checked"] / elapsed)
                    print(f"verify ({mode}): {report['events_checked']} events in {elapsed:.1f}s")
                singles.append(single_core_rate(sample))
    single = statistics.median(singles)
    full, fast = statistics.median(rates["every signature"]), statistics.median(rates["--fast"])
    print(f"verify, every signature: {full:,.0f} events/s")
    print(f"verify --fast:           {fast:,.0f} events/s")
    print(f"Ed25519 verify, one core: {single:,.0f}/s; × {cores} cores: {single * cores:,.0f}/s")
    print(f"ratio: {full / (single * cores):.2f}")


if __name__ == "__main__":
    main()
