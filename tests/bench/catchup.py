"""A province back after a day offline: 100 counties kept recording; when the province returns,
its receiver takes the day's backlog from its stream (1,000 messages a take, more arriving until
the last). Its catch-up rate is compared, in the same run, with its steady apply rate: the same
counties' envelopes as they arrive when the province keeps up (each take what the counties
recorded since the last: one envelope each, nothing more waiting, so every envelope is applied
at once, its signature checked). Memory is sampled at every take of the catch-up.

The log mix and the checkpoints are tests/bench/national.py's (a checkpoint every 1,000
envelopes of an origin and at the end of its day).

    .venv/bin/python tests/bench/catchup.py [--events 100000] [--counties 100]

Prints the machine, both rates, the resident memory at the start, the middle and the end of the
catch-up, and ``ratio: X`` (catch-up rate ÷ steady rate; goal ≥ 0.8).
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
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from national import TAKE, certifications, stream, templates, wall_ms  # noqa: E402

from domain.divisions import city_of, table  # noqa: E402
from federation.envelope import parse  # noqa: E402
from federation.keys import ROOT as ROOT_ORIGIN  # noqa: E402
from federation.keys import certify  # noqa: E402
from federation.suite import SigningKey, load_key  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.replication.importer import Importer  # noqa: E402
from node.service import Node  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.node.replication.test_import import install_trust  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def province(workdir: Path, name: str, root: SigningKey, docs: list[bytes]) -> Importer:
    directory = make_node_dir(workdir / name, tier="province", region="130000")
    own = load_key(directory / "node.key")
    chain = [
        certify(
            root, ROOT_ORIGIN, origin="130000", region="130000", tier="province", public=own.public
        )
    ]
    install_trust(directory, root, chain)
    importer = Importer(Node(config_mod.load(directory, environ={}), clock=wall_ms))
    importer.take([("document", d) for d in docs])
    return importer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--counties", type=int, default=100)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load"
        f" {os.getloadavg()[0]:.2f}, python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        root = SigningKey.generate()
        codes = sorted(c for c in _hebei_counties())[: args.counties]
        docs, keys = certifications(root, codes)
        samples = templates(workdir)
        per_county = args.events // len(codes)
        day = list(stream(samples, keys, per_county))  # the day's messages, as published
        envelopes = [m for m in day if m[0] == "envelope"]

        # steady: each take one envelope of each county (as the province keeps up)
        steady = province(workdir, "steady", root, docs)
        rounds: dict[int, list[tuple[str, bytes]]] = {}
        counters: dict[str, int] = {}
        for kind, raw in envelopes:
            origin = parse(raw).origin
            counters[origin] = counters.get(origin, 0) + 1
            rounds.setdefault(counters[origin], []).append((kind, raw))
        live = [rounds[i] for i in sorted(rounds)]
        started = time.perf_counter()
        applied = 0
        for batch in live:
            applied += steady.take(batch, hold_tail=False, tail_in_memory=True)["applied"]
        steady_rate = applied / (time.perf_counter() - started)
        steady.node.close()

        # catch-up: the whole day from the stream, 1,000 messages a take
        back = province(workdir, "back", root, docs)
        memory = [rss_mb()]
        started = time.perf_counter()
        applied = 0
        for start in range(0, len(day), TAKE):
            more = start + TAKE < len(day)
            summary = back.take(day[start : start + TAKE], hold_tail=more, tail_in_memory=True)
            applied += summary["applied"]
            memory.append(rss_mb())
        catchup_rate = applied / (time.perf_counter() - started)
        back.node.close()
    assert applied == len(envelopes)
    middle = memory[len(memory) // 2]
    print(f"{len(codes)} counties, {len(envelopes):,} envelopes of a day")
    print(f"steady (one envelope of each county a take): {steady_rate:,.0f}/s")
    print(f"catch-up (1,000 messages a take): {catchup_rate:,.0f}/s")
    print(
        f"memory during catch-up: start {memory[0]:.0f} MB, middle {middle:.0f} MB,"
        f" end {memory[-1]:.0f} MB, peak {max(memory):.0f} MB"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"ratio: {catchup_rate / steady_rate:.2f} (catch-up ÷ steady; goal ≥ 0.8)")


def _hebei_counties() -> list[str]:
    return [
        c
        for c in table().names
        if c[:2] == "13" and not c.endswith("00") and city_of(c) not in (None, c)
    ]


if __name__ == "__main__":
    main()
