"""A national centre at the breadth of the country: the same number of envelopes from 30, 300
and 3,000 certified county origins, applied through the centre's verified import in the
batches its receiver takes from its stream (1,000 messages a take, more arriving until the
last), measured against the physical ceiling in the same run.

Each size runs in a process of its own (its peak RSS is the centre's alone). The origins are
real counties of the division table, certified root → province → city → county; their
certifications reach the centre first, as their tiers carry them up (timed on their own).
Each origin's envelopes are inspections opened and, one in twenty, accidents reported (for
which the centre records its receipt), in its own chain, with a signed checkpoint every 1,000
envelopes and at its end; the stream interleaves the origins in runs of up to 200, as
uplinks publish. Everything is generated into a file before the clock starts.

The ceiling: min(cores × one core's Ed25519 verify rate over the same envelopes, the store's
bare append rate: the same envelopes stored by the signed recorder with no verification).

    .venv/bin/python tests/bench/national.py [--events 150000] [--sizes 30,300,3000]

Prints the machine, per size the certification time, the apply rate, the peak RSS and the time
of one status view, then ``ratio: X`` lines: rate at the largest size ÷ rate at the smallest
(goal ≥ 0.8), and rate ÷ ceiling at the largest (goal ≥ 0.7).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402

from domain.divisions import city_of, table  # noqa: E402
from federation.checkpoint import sign_checkpoint  # noqa: E402
from federation.envelope import GENESIS, check_signature, parse  # noqa: E402
from federation.keys import ROOT as ROOT_ORIGIN  # noqa: E402
from federation.keys import certify  # noqa: E402
from federation.merkle import CompactRange  # noqa: E402
from federation.suite import SigningKey, load_key  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.replication.importer import Importer  # noqa: E402
from node.replication.status import federation_view  # noqa: E402
from node.service import Node  # noqa: E402
from node.signedlog import stored_event  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.factories import accident, inspection, js, resealed  # noqa: E402
from tests.node.replication.test_import import install_trust  # noqa: E402

TAKE = 1000  # messages per take, as the receiver fetches them
RUN = 200  # envelopes of one origin published together
CHECKPOINT_EVERY = 1000


def counties(n: int) -> list[str]:
    """``n`` origins spread over the provinces: counties under a city (2,700-odd), then the
    cities themselves (a city records too)."""
    by_province: dict[str, list[str]] = {}
    cities: list[str] = []
    for code in sorted(table().names):
        if code.endswith("0000"):
            continue
        if code.endswith("00"):
            cities.append(code)
        elif city_of(code) not in (None, code):
            by_province.setdefault(code[:2], []).append(code)
    spread: list[str] = []
    while len(spread) < n and any(by_province.values()):
        for codes in by_province.values():
            if codes and len(spread) < n:
                spread.append(codes.pop(0))
    spread += [c for c in cities if c not in spread][: n - len(spread)]
    if len(spread) < n:
        raise SystemExit(f"the division table has fewer than {n} such origins")
    return spread


def certifications(
    root: SigningKey, origins: list[str]
) -> tuple[list[bytes], dict[str, SigningKey]]:
    """The documents certifying the origins through their province and city (certifiers first)
    and each origin's key."""
    docs: list[bytes] = []
    keys: dict[str, SigningKey] = {}

    def certified(code: str, above: str, tier: str) -> None:
        if code not in keys:
            keys[code] = SigningKey.generate()
            signer = root if above == ROOT_ORIGIN else keys[above]
            docs.append(
                certify(
                    signer, above, origin=code, region=code, tier=tier, public=keys[code].public
                )
            )

    for origin in origins:
        province, city = origin[:2] + "0000", city_of(origin)
        assert city is not None
        certified(province, ROOT_ORIGIN, "province")
        certified(city, province, "city")
        if origin != city:
            certified(origin, city, "county")
    return docs, {o: keys[o] for o in origins}


def templates(workdir: Path) -> list[bytes]:
    """Envelopes of a county to re-sign in each origin's name: 19 inspections opened for one
    accident reported (an accident has every tier record a receipt; accidents are some 5 % of a
    log)."""
    sample = make_node_dir(workdir / "sample", tier="county", region="130102")
    county = Node(config_mod.load(sample, environ={}), clock=wall_ms)
    county.execute("case.open-inspection", js(inspection()), user="clerk")
    county.execute("accident.report", js(accident(division="130102")), user="clerk")
    opened, reported = county.log.envelopes(0, 10)[-2:]
    county.close()
    return [opened] * 19 + [reported]


def stream(
    samples: list[bytes], keys: dict[str, SigningKey], per_origin: int
) -> Iterator[tuple[str, bytes]]:
    """The messages the centre's stream carries, origins interleaved in runs of RUN."""
    bases = [parse(t) for t in samples]
    state = {o: (1, GENESIS, CompactRange()) for o in keys}
    while state:
        for origin in list(state):
            seq, prev, tree = state[origin]
            for _ in range(min(RUN, per_origin - seq + 1)):
                base = bases[seq % len(bases)]
                raw = resealed(base, keys[origin], origin, seq, prev)
                env = parse(raw)
                tree.append(env.leaf)
                yield "envelope", raw
                if seq % CHECKPOINT_EVERY == 0 or seq == per_origin:
                    note = sign_checkpoint(keys[origin], origin, seq, tree.root())
                    yield "checkpoint", note.text.encode()
                seq, prev = seq + 1, env.hash
            if seq > per_origin:
                del state[origin]
            else:
                state[origin] = (seq, prev, tree)


def wall_ms() -> int:
    return int(time.time() * 1000)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(size: int, events: int, workdir: Path) -> dict[str, float]:
    """One size, in this process: generate, then time the centre."""
    root = SigningKey.generate()
    directory = make_node_dir(workdir / "national", tier="national", region="000000")
    national = load_key(directory / "node.key")
    install_trust(
        directory,
        root,
        [
            certify(
                root,
                ROOT_ORIGIN,
                origin="000000",
                region="000000",
                tier="national",
                public=national.public,
            )
        ],
    )
    samples = templates(workdir)
    origins = counties(size)
    docs, keys = certifications(root, origins)
    data = workdir / "stream.msgpack"
    with data.open("wb") as f:
        for item in stream(samples, keys, events // size):
            f.write(msgpack.packb(item))
    node = Node(config_mod.load(directory, environ={}), clock=wall_ms)
    importer = Importer(node)
    started = time.perf_counter()
    for start in range(0, len(docs), TAKE):
        importer.take([("document", d) for d in docs[start : start + TAKE]])
    certified = time.perf_counter() - started
    applied = 0
    started = time.perf_counter()
    with data.open("rb") as f:
        unpacker = msgpack.Unpacker(f, use_list=False)
        batch: list[tuple[str, bytes]] = []
        for kind, raw in unpacker:
            batch.append((kind, raw))
            if len(batch) == TAKE:
                applied += importer.take(batch, hold_tail=True, tail_in_memory=True)["applied"]
                batch = []
        applied += importer.take(batch, hold_tail=False, tail_in_memory=True)["applied"]
    seconds = time.perf_counter() - started
    assert applied == size * (events // size), (applied, size * (events // size))
    started = time.perf_counter()
    view = federation_view(node, wall_ms())
    status_s = time.perf_counter() - started
    node.close()
    return {
        "origins": size,
        "envelopes": applied,
        "certify_s": certified,
        "rate": applied / seconds,
        "rss_mb": peak_rss_mb(),
        "status_s": status_s,
        "status_kib": len(json.dumps(view, ensure_ascii=False)) / 1024,
    }


def ceiling(workdir: Path, count: int = 20_000) -> dict[str, float]:
    """One core's Ed25519 verify rate and the store's bare append rate, on such envelopes."""
    key = SigningKey.generate()
    keys = {"130102": key}
    raws = [raw for kind, raw in stream(templates(workdir), keys, count) if kind == "envelope"]
    envs = [parse(r) for r in raws]
    started = time.perf_counter()
    for env in envs:
        check_signature(env, key.public)
    verify = count / (time.perf_counter() - started)
    store_dir = make_node_dir(workdir / "s", tier="national", region="000000")
    node = Node(config_mod.load(store_dir, environ={}), clock=wall_ms)
    recorder = node.log.app.recorder
    envs = [parse(r) for r in raws]  # parsed again: decoding is part of the import's cost
    started = time.perf_counter()
    for start in range(0, count, 2000):
        run = envs[start : start + 2000]
        recorder.insert_events([stored_event(e) for e in run], imported=run)
    append = count / (time.perf_counter() - started)
    node.close()
    return {"verify_1core": verify, "append": append}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--sizes", default="30,300,3000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(one(args.one, args.events, Path(d))))
        return
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores,"
        f" load {os.getloadavg()[0]:.2f}, python {platform.python_version()}"
    )
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = (
            subprocess.run(
                [sys.executable, __file__, "--one", str(size), "--events", str(args.events)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        results.append(r)
        print(
            f"{r['origins']:>5} origins: {r['envelopes']:,} envelopes at {r['rate']:,.0f}/s;"
            f" certifications {r['certify_s']:.2f} s; peak RSS {r['rss_mb']:.0f} MB;"
            f" federation view {r['status_s'] * 1000:.0f} ms ({r['status_kib']:.0f} KiB)"
        )
    with tempfile.TemporaryDirectory() as d:
        c = ceiling(Path(d))
    physical = min(cores * c["verify_1core"], c["append"])
    print(
        f"ceiling: {cores} × {c['verify_1core']:,.0f} verifies/s on one core,"
        f" store append {c['append']:,.0f}/s → {physical:,.0f}/s"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(
        f"ratio: {results[-1]['rate'] / results[0]['rate']:.2f}"
        f" (rate at {results[-1]['origins']} origins ÷ at {results[0]['origins']}; goal ≥ 0.8)"
    )
    print(
        f"ratio: {results[-1]['rate'] / physical:.2f}"
        f" (rate at {results[-1]['origins']} origins ÷ ceiling; goal ≥ 0.7)"
    )


if __name__ == "__main__":
    main()
