"""A national centre at the breadth of the country, fed over NATS: a real nats-server and a real
`anjian serve` national node take the same number of envelopes (``--events``, 3,000,000 by
default) from 30, 300 and 3,000 certified origins, published on its stream by simulated
origins with their own certified keys (this one process signs for all of them), and its apply
rate is measured against the physical ceiling in the same run.

Each size runs in a process of its own, with a federation of its own (tests.integration's
Federation: the node's NATS authorisation from `anjian nats config`, every key certified down
from an offline root):

1. The origins are real counties of the division table (and, past the 2,700-odd counties, the
   cities themselves: a city records too). Their provinces and cities are members of the
   federation (real node directories with their own certified keys; the provinces are the
   national centre's children, which is what has it run a NATS server; only the national node
   is ever started): the root's certifications of the provinces are recorded in the national
   centre's own log, each province's of its cities in the province's log and each city's of
   its counties in the city's log (Node.record_key_document, as the bureaus do; a node signs a
   checkpoint of its log when it closes).
2. Everything is generated before any clock starts: each origin's envelopes are inspections
   opened and, one in twenty, accidents reported (for which the centre records its receipt),
   re-signed in the origin's name in its own chain (a city that is an origin goes on from the
   certifications in its log), with a signed checkpoint every 1,000 envelopes and at its end;
   origins interleaved in runs of up to 200, as uplinks publish; written to a file.
3. Certifications: the national node is started; the provinces' and cities' logs (envelopes
   and checkpoints) are published as each province relays what is under it
   (``anjian.up.<province>.env|cp.<origin>``, message ids as the outbox makes them), and timed
   from the first publish until the centre has applied all of them.
4. The node is stopped (SIGTERM); the file is published into its stream (the stream keeps it),
   streamed from the file in pipelined batches (publish_async, federation.jetstream.publish),
   as the national node's own NATS identity, which may publish anything on its tier (timed,
   not part of the rate).
5. The node is started, and timed from its start until its store holds every envelope (its
   Merkle sizes, read-only, every 0.2 s): rate = envelopes ÷ that time.
6. Then one page of GET /api/v1/federation on the running node (a reader's token), the same
   view computed in this process (federation_view), and the peak RSS (VmHWM) of the node's
   process, and the sum of its and its children's (the projections process and
   multiprocessing's resource tracker).

The ceiling: min(cores × one core's Ed25519 verify rate over the same envelopes, the store's
bare append rate: the same envelopes stored by the signed recorder with no verification).

    .venv/bin/python tests/bench/national.py [--events 3000000 | N,N,N] [--sizes 30,300,3000]
        [--checkpoint-every 1000]

A checkpoint every 1,000 envelopes (the default) is a log written in bulk: at 3,000 origins an
origin's runs are 3 million messages apart and none is covered by a checkpoint when it
arrives, so every signature is checked; a serving county signs a checkpoint every second,
which ``--checkpoint-every 200`` models (each run an uplink publishes closed by one).

Prints the machine, per size the envelopes and the apply rate (with the seconds from the
node's start until all were applied, and until it served), the certifications' time, the time
to generate and to publish the envelopes, the peak RSS, the status page's time and the disk in
use, then the ceiling and ``ratio: X`` lines: rate at the largest size ÷ rate at the smallest
(goal ≥ 0.8), and rate ÷ ceiling at the largest (goal ≥ 0.7). Progress goes to stderr. A size
uses some 4.5 KB of disk an envelope while it runs (the file until published, the stream, the
archive, the store: some 13 GB at 3 million), all removed when it ends; the streams have no
limits of their own, and nats-server's default store limit is 75 % of the free disk.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402

from domain.divisions import city_of, table  # noqa: E402
from domain.i18n import set_process_language  # noqa: E402
from federation.checkpoint import sign_checkpoint  # noqa: E402
from federation.envelope import GENESIS, check_signature, parse  # noqa: E402
from federation.jetstream import publish  # noqa: E402
from federation.keys import ROOT as ROOT_ORIGIN  # noqa: E402
from federation.keys import certify  # noqa: E402
from federation.merkle import CompactRange  # noqa: E402
from federation.suite import SigningKey, load_key  # noqa: E402
from federation.transport import UP, Message, checkpoint_id, envelope_id, up_subject  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.replication.outbox import Outbox, tree_sizes  # noqa: E402
from node.replication.status import federation_view  # noqa: E402
from node.service import Node  # noqa: E402
from node.signedlog import stored_event  # noqa: E402
from node.users import Role, add_user  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.factories import accident, inspection, js, resealed  # noqa: E402
from tests.integration.federation import Federation, Member, closing_node, connect_as  # noqa: E402

TAKE = 1000  # messages per take, as the receiver fetches them
RUN = 200  # envelopes of one origin published together
CHECKPOINT_EVERY = 1000
PUBLISH = 4000  # messages published before waiting for their acknowledgements (nats-py's cap)
POLL = 0.2  # seconds between looks at the centre's store
STALL = 300.0  # seconds without one more envelope applied before the run is called stuck


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
    and each origin's key (for the in-process benchmarks: tests/bench/catchup.py)."""
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


Chain = tuple[int, bytes, CompactRange]  # an origin's log so far: size, last hash, Merkle tree


def messages(
    samples: list[bytes],
    keys: dict[str, SigningKey],
    per_origin: int,
    after: dict[str, Chain] | None = None,
) -> Iterator[tuple[str, str, int, bytes]]:
    """(kind, origin, sequence or checkpoint size, bytes) of what the stream carries: each
    origin's ``per_origin`` next envelopes (after its log so far in ``after``, else from its
    first) and its checkpoints, origins interleaved in runs of RUN."""
    bases = [parse(t) for t in samples]
    state = {o: (after or {}).get(o) or (0, GENESIS, CompactRange()) for o in keys}
    last = {o: state[o][0] + per_origin for o in keys}
    while state:
        for origin in list(state):
            done, prev, tree = state[origin]
            for seq in range(done + 1, min(done + RUN, last[origin]) + 1):
                base = bases[seq % len(bases)]
                raw = resealed(base, keys[origin], origin, seq, prev)
                env = parse(raw)
                tree.append(env.leaf)
                yield "envelope", origin, seq, raw
                if seq % CHECKPOINT_EVERY == 0 or seq == last[origin]:
                    note = sign_checkpoint(keys[origin], origin, seq, tree.root())
                    yield "checkpoint", origin, seq, note.text.encode()
                done, prev = seq, env.hash
            if done >= last[origin]:
                del state[origin]
            else:
                state[origin] = (done, prev, tree)


def stream(
    samples: list[bytes], keys: dict[str, SigningKey], per_origin: int
) -> Iterator[tuple[str, bytes]]:
    """The messages the centre's stream carries, origins interleaved in runs of RUN."""
    for kind, _origin, _n, raw in messages(samples, keys, per_origin):
        yield kind, raw


def wall_ms() -> int:
    return int(time.time() * 1000)


def say(size: int, text: str) -> None:
    """Progress, on stderr (a run at 3 million takes a while)."""
    print(f"[{size} origins] {text}", file=sys.stderr, flush=True)


# -- the federation ------------------------------------------------------------------------------
def layout(origins: list[str]) -> list[tuple[str, str, str, str | None]]:
    """The national centre, the provinces of the origins and their cities, as nodes (each
    member named by its code)."""
    cities = sorted({c for o in origins if (c := city_of(o)) is not None})
    provinces = sorted({c[:2] + "0000" for c in cities})
    return [
        ("national", "national", "000000", None),
        *((p, "province", p, "national") for p in provinces),
        *((c, "city", c, c[:2] + "0000") for c in cities),
    ]


def certify_counties(f: Federation, origins: list[str]) -> dict[str, SigningKey]:
    """Each county's key, certified by its city and recorded in the city's log; a city that is
    an origin signs with its own node key."""
    keys: dict[str, SigningKey] = {}
    by_city: dict[str, list[str]] = {}
    for o in origins:
        city = city_of(o)
        assert city is not None
        by_city.setdefault(city, []).append(o)
    for city, codes in sorted(by_city.items()):
        member = f[city]
        city_key = load_key(member.directory / "node.key")
        with closing_node(member) as node:
            for code in codes:
                if code == city:
                    keys[code] = city_key
                    continue
                keys[code] = SigningKey.generate()
                doc = certify(
                    city_key,
                    city,
                    origin=code,
                    region=code,
                    tier="county",
                    public=keys[code].public,
                )
                node.record_key_document(doc, user="admin")
    return {o: keys[o] for o in origins}


def chains(f: Federation, origins: list[str]) -> dict[str, Chain]:
    """The log so far of each origin that has one (a city that certified its counties)."""
    found: dict[str, Chain] = {}
    for o in origins:
        if o not in f.members:
            continue
        with closing_node(f[o]) as node:
            raws = node.log.envelopes(0, 1_000_000, origin=o)
        if raws:
            tree = CompactRange()
            for raw in raws:
                tree.append(parse(raw).leaf)
            found[o] = (len(raws), parse(raws[-1]).hash, tree)
    return found


def relayed_logs(f: Federation) -> tuple[list[Message], dict[str, int]]:
    """The provinces' and the cities' logs as their province relays them (provinces first):
    the messages, and the size of each log."""
    out: list[Message] = []
    sizes: dict[str, int] = {}
    for tier in ("province", "city"):
        for member in f.members.values():
            if member.tier != tier:
                continue
            outbox = Outbox(subject=functools.partial(up_subject, member.region[:2] + "0000"))
            with closing_node(member) as node:
                size = tree_sizes(node.log).get(member.origin, 0)
                batch = outbox.next_batch(node.log, 10_000_000)
            if size:
                sizes[member.origin] = size
                out += [m for m, _origin, _seq in batch]
    return out, sizes


def file_batches(data: Path, child: dict[str, str]) -> Iterator[list[Message]]:
    """The file's messages as published, PUBLISH at a time, read as they go."""
    batch: list[Message] = []
    with data.open("rb") as f:
        for kind, origin, n, raw in msgpack.Unpacker(f, use_list=False):
            if kind == "envelope":
                m = Message(
                    up_subject(child[origin], "env", origin), envelope_id(origin, n, raw), raw
                )
            else:
                m = Message(
                    up_subject(child[origin], "cp", origin), checkpoint_id(origin, n, raw), raw
                )
            batch.append(m)
            if len(batch) == PUBLISH:
                yield batch
                batch = []
    if batch:
        yield batch


async def publish_all(member: Member, batches: Iterable[list[Message]]) -> int:
    """Publish as ``member``'s own NATS identity, pipelined (publish_async), waiting for each
    batch's acknowledgements before the next; how many were published."""
    nc = await connect_as(member)
    try:
        jetstream = nc.jetstream()
        deadline = time.monotonic() + 60
        while True:  # the node makes its stream when it first connects
            try:
                await jetstream.stream_info(UP)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{UP} was not made within 60 s") from None
                await asyncio.sleep(0.1)
        count = 0
        for batch in batches:
            done = await publish(jetstream, batch, timeout=120)
            if done < len(batch):
                raise RuntimeError(
                    f"{len(batch) - done} of {len(batch)} publishes not acknowledged"
                )
            count += done
        return count
    finally:
        await nc.close()


def wait_applied(member: Member, expected: dict[str, int], what: str) -> float:
    """Look at the member's store every POLL seconds until it holds ``expected`` envelopes of
    each origin; the perf_counter() when it did. Fails if nothing more is applied for STALL
    seconds, or the node stops."""
    total = sum(expected.values())
    best, since = -1, time.monotonic()
    while True:
        try:
            held = member.applied()
        except sqlite3.OperationalError:  # made or locked just now: look again
            held = {}
        done = sum(min(held.get(o, 0), n) for o, n in expected.items())
        if done == total:
            return time.perf_counter()
        now = time.monotonic()
        if done > best:
            best, since = done, now
        stopped = member.server is None or member.server.proc.poll() is not None
        if stopped or now - since > STALL:
            log = (member.directory / "serve.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{what}: {done:,} of {total:,} applied"
                f"{', the node stopped' if stopped else f', none more for {STALL:.0f} s'};"
                f" quarantined {member.quarantine()[:5]}; its log ends:\n{log}"
            )
        time.sleep(POLL)


def peak_rss_mb(pid: int) -> tuple[float, float, int]:
    """VmHWM of the process, the sum of its and its descendants' (MB), and how many they are."""

    def hwm(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    family, todo = [], [pid]
    while todo:
        p = todo.pop()
        family.append(p)
        todo += parents.get(p, [])
    return hwm(pid), sum(hwm(p) for p in family), len(family)


def status_page(url: str, token: str) -> tuple[float, float]:
    """Seconds for one GET of the federation view's first page, and its size in KiB."""
    request = urllib.request.Request(
        f"{url}/api/v1/federation", headers={"Authorization": f"Bearer {token}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body) / 1024


def one(size: int, events: int, workdir: Path) -> dict[str, float]:
    """One size, in this process: build, generate, certify, publish, then time the centre."""
    origins = counties(size)
    per_origin = events // size
    f = Federation(workdir / "federation", layout(origins))
    try:
        national = f["national"]
        token = add_user(
            config_mod.load(national.directory, environ={}).users_file, "bench", Role.READER
        )
        keys = certify_counties(f, origins)
        child = {o: o[:2] + "0000" for o in origins}
        after = chains(f, origins)
        expected = {o: after.get(o, (0,))[0] + per_origin for o in origins}

        say(size, f"generating {per_origin * size:,} envelopes")
        started = time.perf_counter()
        data = workdir / "stream.msgpack"
        with data.open("wb") as out:
            for item in messages(templates(workdir), keys, per_origin, after):
                out.write(msgpack.packb(item))
        generate_s = time.perf_counter() - started

        say(size, "certifications")
        logs, sizes = relayed_logs(f)
        f.start("national")
        started = time.perf_counter()
        asyncio.run(
            publish_all(national, [logs[i : i + PUBLISH] for i in range(0, len(logs), PUBLISH)])
        )
        certify_s = wait_applied(national, sizes, "certifications") - started
        national.stop()

        say(size, "publishing into the stream, the national node stopped")
        started = time.perf_counter()
        published = asyncio.run(publish_all(national, file_batches(data, child)))
        publish_s = time.perf_counter() - started
        data.unlink()

        say(size, "the national node applies the stream")
        started = time.perf_counter()
        national.start()
        serving_s = time.perf_counter() - started
        seconds = wait_applied(national, expected, "the stream") - started
        applied = per_origin * size

        assert national.server is not None
        page_s, page_kib = status_page(national.server.url, token)
        with closing_node(national) as node:
            timed = time.perf_counter()
            view = federation_view(node, wall_ms())
            view_s = time.perf_counter() - timed
        rss_node, rss_all, processes = peak_rss_mb(national.server.proc.pid)
        disk = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
        f.stop()
    finally:
        f.close()
    return {
        "origins": size,
        "envelopes": applied,
        "messages": published,
        "certify_s": certify_s,
        "certify_messages": len(logs),
        "generate_s": generate_s,
        "publish_s": publish_s,
        "serving_s": serving_s,
        "apply_s": seconds,
        "rate": applied / seconds,
        "rss_node_mb": rss_node,
        "rss_all_mb": rss_all,
        "processes": processes,
        "page_s": page_s,
        "page_kib": page_kib,
        "view_s": view_s,
        "view_origins": len(view["origins"]),
        "disk_gb": disk / 1e9,
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


def show(r: dict[str, float]) -> None:
    """One size's figures."""
    pad = " " * 7
    lines = [
        f"{r['origins']:>5} origins: {r['envelopes']:,} envelopes at {r['rate']:,.0f}/s"
        f" ({r['apply_s']:.1f} s from the node's start; serving after {r['serving_s']:.1f} s)",
        f"{pad}certifications: {r['certify_s']:.2f} s ({r['certify_messages']:,.0f} messages)",
        f"{pad}generated in {r['generate_s']:.0f} s; published in {r['publish_s']:.1f} s"
        f" ({r['messages']:,.0f} messages, {r['messages'] / r['publish_s']:,.0f}/s; not in the"
        " rate)",
        f"{pad}peak RSS: {r['rss_node_mb']:.0f} MB the node's process,"
        f" {r['rss_all_mb']:.0f} MB with its {r['processes'] - 1:.0f} children (sum of peaks)",
        f"{pad}status: GET /api/v1/federation {r['page_s'] * 1000:.0f} ms"
        f" ({r['page_kib']:.0f} KiB); federation_view in process {r['view_s'] * 1000:.0f} ms",
        f"{pad}disk at the end: {r['disk_gb']:.2f} GB",
    ]
    print("\n".join(lines), flush=True)


def main() -> None:
    global CHECKPOINT_EVERY
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--events",
        default="3000000",
        help="envelopes at each size: one number for all, or one per size (300000,300000,3000000)",
    )
    parser.add_argument("--sizes", default="30,300,3000")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY,
        help="envelopes of an origin per signed checkpoint (a serving county signs one every"
        " second: 200 closes each run an uplink publishes)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    CHECKPOINT_EVERY = args.checkpoint_every
    # the node's log line that gives its address, as Server reads it, is in English; node
    # files made private from the start (no notices of permissions put right)
    os.environ["ANJIAN_LANG"] = "en"
    set_process_language("en")
    os.umask(0o077)
    if args.one:
        with tempfile.TemporaryDirectory(prefix="anjian-national-") as d:
            print(json.dumps(one(args.one, int(args.events), Path(d))))
        return
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores,"
        f" load {os.getloadavg()[0]:.2f}, python {platform.python_version()};"
        f" a checkpoint every {CHECKPOINT_EVERY} envelopes of an origin",
        flush=True,
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    events = [int(e) for e in args.events.split(",")]
    if len(events) not in (1, len(sizes)):
        raise SystemExit("--events: one number, or one per size")
    results = []
    if len(events) == 1:
        events *= len(sizes)
    for size, count in zip(sizes, events, strict=True):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(size),
                "--events",
                str(count),
                "--checkpoint-every",
                str(CHECKPOINT_EVERY),
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        show(r)
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
