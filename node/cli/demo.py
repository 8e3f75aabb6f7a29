"""`anjian demo`: a small federation on this machine — the national centre, one province, one
city and two counties — each node with its own directory and key (certified down the chain
from a root key made for the demo), nats-server processes for the tiers that run one, and
`anjian serve` for every node. Every nats-server runs the configuration `anjian nats config`
writes (each node authenticates with its certified NATS identity, and may do only what its place
in the hierarchy allows). It records a realistic day at the counties, cuts one county's
uplink for a while (a TCP relay between the county and its city's NATS is closed, as a bad
line would be), and prints per-tier counts and digests until the national view equals what
its subtree recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from domain.codes import Tier, credit_code_check_character
from domain.i18n import _
from federation.keys import ROOT, ROOT_TIERS, certify
from federation.suite import SigningKey, load_key, load_public, public_pem
from node import config as config_mod
from node.cli.nats import set_federation
from node.config import NodeSection
from node.errors import ConfigError
from node.keys import generate_node_key, read_nats_public
from node.replication.natsauth import CONFIG_FILE, ServerTLS, write_authorisation, write_config
from node.replication.natsd import NatsServer, free_port
from node.replication.outbox import tree_sizes
from node.service import Node

# (name, tier, region, parent name), parents first
LAYOUT = [
    ("national", "national", "000000", None),
    ("province", "province", "130000", "national"),
    ("city", "city", "130100", "province"),
    ("county-a", "county", "130102", "city"),
    ("county-b", "county", "130104", "city"),
]
SERVING = re.compile(r"on (https?://[\d.]+:\d+)/api/v1")
M = TypeVar("M", bound="Member")


@dataclass
class Member:
    """One node of a federation on this machine."""

    name: str
    tier: str
    region: str
    directory: Path
    parent: Member | None = None
    nats: NatsServer | None = None
    docs: list[bytes] = field(default_factory=list)  # its trust chain, root first

    @property
    def origin(self) -> str:
        """A bureau's origin is its division code; the backup centre has a name of its own."""
        return self.name if self.tier == "backup" else self.region

    def open(self, clock: Callable[[], int] | None = None) -> Node:
        """The node's store in this process (alongside its server: SQLite allows it)."""
        config = config_mod.load(self.directory, environ={})
        return Node(config) if clock is None else Node(config, clock=clock)

    def authorise(self) -> dict[str, Any]:
        """Rewrite its server's authorisation from its trust now (as its serving node does
        within a second of a change), and have the running server reload it."""
        assert self.nats is not None, f"{self.name} runs no NATS server"
        config = config_mod.load(self.directory, environ={})
        report = write_authorisation(config, self.nats.directory)
        if report["changed"]:
            self.nats.reload()
        return report


class Certificates(Protocol):
    """A CA for NATS over TLS, issuing each member a certificate for 127.0.0.1 that serves as
    its server's and its client's."""

    ca: Path

    def issue(self, name: str, directory: Path) -> tuple[Path, Path]: ...  # (cert, key) files


def build(
    root: Path,
    layout: list[tuple[str, str, str, str | None]],
    parent_url: Callable[[Member], str] | None = None,
    kind: type[M] = Member,  # type: ignore[assignment]
    tls: Certificates | None = None,
) -> tuple[SigningKey, dict[str, M]]:
    """Node directories with configuration and keys, NATS servers (not started) for every tier
    with children, and each key and NATS identity certified by the tier above (the root for
    the national centre and the provinces), each certification recorded in its certifier's log
    and every node's trust chain installed; then each server's configuration written from its
    tier's trust (`anjian nats config`), over mutual TLS if ``tls`` issues the certificates.
    ``parent_url`` may route a child to its parent's NATS another way (the demo's cuttable
    relay)."""
    root_key = SigningKey.generate()
    members: dict[str, M] = {}
    with_children = {p for *_rest, p in layout if p}
    scheme = "tls" if tls else "nats"
    for name, tier, region, parent_name in layout:
        parent = members[parent_name] if parent_name else None
        directory = root / name
        directory.mkdir(parents=True)
        # a backup centre republishes what it holds on an archive stream of its own
        own_nats = name in with_children or tier == "backup"
        server_dir = root / f"{name}-nats"
        nats = (
            NatsServer(server_dir, name=name, config=server_dir / CONFIG_FILE, scheme=scheme)
            if own_nats
            else None
        )
        member = kind(name, tier, region, directory, parent, nats)
        url = None
        if parent is not None:
            assert parent.nats is not None, f"{parent.name} has children: it runs a NATS server"
            url = parent_url(member) if parent_url else parent.nats.url
        section = NodeSection(origin=member.origin, tier=Tier(tier), region=region, parent=url)
        text = config_mod.render(section, nats.url if nats else None)
        if nats is not None:  # the serving node keeps its server's authorisation current
            text = set_federation(text, "server_dir", str(server_dir.resolve()))
        if tls is not None:
            cert_file, key_file = tls.issue(name, directory)
            files = (("tls_ca", tls.ca), ("tls_cert", cert_file), ("tls_key", key_file))
            for setting, path in files:
                text = set_federation(text, setting, str(path.resolve()))
        (directory / config_mod.CONFIG_FILE).write_text(text, encoding="utf-8")
        generate_node_key(directory)
        members[name] = member
    # the root's certifications are recorded in the national centre's log (when there is one)
    national = next((m for m in members.values() if m.tier == "national"), None)
    for m in members.values():
        public = load_public(m.directory / "node.pub")
        nats_key = read_nats_public(m.directory / "nats.pub")
        subject = dict(origin=m.origin, region=m.region, tier=m.tier, public=public, nats=nats_key)
        if m.parent is None or m.tier in ROOT_TIERS:
            doc = certify(root_key, ROOT, **subject)  # type: ignore[arg-type]
            recorder: Member | None = national
            m.docs = [doc]
        else:
            assert m.parent is not None
            key = load_key(m.parent.directory / "node.key")
            doc = certify(key, m.parent.origin, **subject)  # type: ignore[arg-type]
            recorder = m.parent
            m.docs = [*m.parent.docs, doc]
        trust = m.directory / "trust"
        trust.mkdir(exist_ok=True)
        (trust / "root.pub").write_bytes(public_pem(root_key.public))
        for i, d in enumerate(m.docs):
            (trust / f"{i}.doc").write_bytes(d)
        if recorder is not None:
            node = recorder.open()
            try:
                node.record_key_document(doc, user="admin")
            finally:
                node.close()
    for m in members.values():  # each server from its tier's trust, as `anjian nats config`
        if m.nats is not None:
            config = config_mod.load(m.directory, environ={})
            server_tls = None
            if tls is not None:
                f = config.federation
                server_tls = ServerTLS(Path(str(f.tls_cert)), Path(str(f.tls_key)), tls.ca, True)
            write_config(config, m.nats.directory, tls=server_tls)
    return root_key, members


class Server:
    """`anjian serve DIR --port 0` as a process; ``url`` read off its log line."""

    def __init__(self, directory: Path, timeout: float = 30.0) -> None:
        self.log = directory / "serve.log"
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "serve", str(directory), "--port", "0"],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            if match := SERVING.search(text):
                self.url = match.group(1)
                return
            if self.proc.poll() is not None:
                raise ConfigError(
                    _(
                        "{directory}: the node did not start: {log}",
                        directory=str(directory),
                        log=text[-1500:],
                    )
                )
            time.sleep(0.05)
        self.kill()
        raise ConfigError(
            _(
                "{directory}: the node did not start within {seconds}s",
                directory=str(directory),
                seconds=format(timeout, ".0f"),
            )
        )

    def stop(self) -> int:
        """SIGTERM (a clean stop: the closing checkpoint is signed); the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


class Relay:
    """A TCP relay from a local port to a NATS server that can be cut and restored: a county's
    line to its city. Runs its own event loop in a thread."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        ready.set()
        with contextlib.suppress(RuntimeError):
            self._loop.run_until_complete(server.serve_forever())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        def close_all() -> None:
            self.open = False
            for w in list(self._writers):
                w.close()

        self._loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "open", True)


# -- a realistic day at a county ---------------------------------------------------------------
INDUSTRIES = ["coal_mine", "non_coal_mine", "hazardous_chemicals", "fireworks", "industry_trade"]
PLACES = ["一号井 3201 工作面", "储罐区", "装置区", "仓库", "车间"]


def credit_code(serial: int, region: str) -> str:
    first17 = f"91{region}{serial:08d}X"[:17]
    return first17 + credit_code_check_character(first17)


def day_at_county(node: Node, rng: random.Random, enterprises: int = 60) -> int:
    """A county bureau's day: enterprises registered, inspections with hidden dangers found
    and orders to rectify, and an accident report. Returns how many commands were recorded."""
    region = node.config.node.region
    now = datetime.fromtimestamp(node.clock() / 1000, UTC)
    commands: list[dict[str, Any]] = []
    names = [
        f"{region}某{rng.choice(['煤业', '化工', '矿业', '钢铁'])}有限公司{i}"
        for i in range(enterprises)
    ]
    for i in range(enterprises):
        commands.append(
            {
                "kind": "enterprise.register",
                "body": {
                    "name": names[i],
                    "credit_code": credit_code(i, region),
                    "industry": rng.choice(INDUSTRIES),
                    "division": region,
                    "address": f"某路{i}号",
                },
            }
        )
    node.execute_batch(json.dumps({"commands": commands}, ensure_ascii=False), user="clerk")
    recorded = len(commands)
    for i in rng.sample(range(enterprises), k=enterprises // 3):
        case = node.execute(
            "case.open-inspection",
            json.dumps(
                {
                    "enterprise_credit_code": credit_code(i, region),
                    "enterprise_name": names[i],
                    "division": region,
                    "inspectors": [
                        {"name": "王建国", "badge": f"{region[:4]}0001"},
                        {"name": "李明", "badge": f"{region[:4]}0002"},
                    ],
                    "started_at": (now - timedelta(hours=rng.randint(1, 8))).isoformat(),
                    "subject": "日常执法检查",
                },
                ensure_ascii=False,
            ),
            user="inspector",
        )["id"]
        recorded += 1
        for _hazard in range(rng.randint(0, 3)):
            node.execute(
                "case.record-hazard",
                json.dumps(
                    {
                        "hazard_class": rng.choice(["general", "general", "major"]),
                        "description": "安全出口堵塞",
                    },
                    ensure_ascii=False,
                ),
                user="inspector",
                target=case,
            )
            recorded += 1
    i = rng.randrange(enterprises)
    occurred = now - timedelta(hours=3)
    node.execute(
        "accident.report",
        json.dumps(
            {
                "enterprise_credit_code": credit_code(i, region),
                "enterprise_name": names[i],
                "occurred_at": occurred.isoformat(),
                "place": rng.choice(PLACES),
                "division": region,
                "industry": "coal_mine",
                "summary": "顶板冒落",
                "measures_taken": "启动应急预案, 组织救援",
                "reported_at": (occurred + timedelta(minutes=40)).isoformat(),
                "deaths": rng.choice([0, 0, 1]),
                "missing": 0,
                "serious_injuries": rng.randint(0, 2),
                "direct_loss_yuan": rng.randint(0, 500) * 1000,
            },
            ensure_ascii=False,
        ),
        user="clerk",
    )
    return recorded + 1


# -- watching it converge -----------------------------------------------------------------------
@contextlib.contextmanager
def opened(member: Member) -> Iterator[Node]:
    node = member.open()
    try:
        yield node
    finally:
        node.close()


def snapshot(members: dict[str, Member]) -> dict[str, dict[str, Any]]:
    """Per node: the envelopes it holds per origin, and the digest of its own subtree."""
    found: dict[str, dict[str, Any]] = {}
    for m in members.values():
        with opened(m) as node:
            node.project()
            assert node._projector is not None
            held = tree_sizes(node.log)
            region = None if m.tier == "national" else m.region
            found[m.name] = {
                "held": held,
                "digest": node._projector.store.digest(region)["all"],
                "national_digest_of_it": None,
            }
    national = next(m for m in members.values() if m.tier == "national")
    with opened(national) as node:
        node.project()
        assert node._projector is not None
        for m in members.values():
            if m.tier != "national":
                found[m.name]["national_digest_of_it"] = node._projector.store.digest(m.region)[
                    "all"
                ]
    return found


def converged(members: dict[str, Member], snap: dict[str, dict[str, Any]]) -> bool:
    """The national centre holds every origin's whole log, and its view of each subtree equals
    the digest the subtree's own node computes."""
    national = next(m for m in members.values() if m.tier == "national")
    whole = all(
        snap[national.name]["held"].get(m.origin, 0) == snap[m.name]["held"].get(m.origin, 0)
        for m in members.values()
    )
    views = all(
        snap[m.name]["digest"] == snap[m.name]["national_digest_of_it"]
        for m in members.values()
        if m.tier != "national"
    )
    return whole and views


def show(members: dict[str, Member], snap: dict[str, dict[str, Any]], elapsed: float) -> None:
    national = next(m for m in members.values() if m.tier == "national")
    click.echo(_("-- {seconds}s", seconds=format(elapsed, "5.1f")))
    for m in members.values():
        own = snap[m.name]["held"].get(m.origin, 0)
        at_national = snap[national.name]["held"].get(m.origin, 0)
        digest = snap[m.name]["digest"][:12]
        mark: object = ""
        if m.tier != "national":
            same = snap[m.name]["digest"] == snap[m.name]["national_digest_of_it"]
            mark = _("view at national: same") if same else _("view at national: differs")
        click.echo(
            _(
                "{name} {tier} {region}  recorded {own}  at national {at_national}"
                "  digest {digest}  {mark}",
                name=m.name.ljust(9),
                tier=m.tier.ljust(8),
                region=m.region,
                own=format(own, "5"),
                at_national=format(at_national, "5"),
                digest=digest,
                mark=mark,
            )
        )


def run(directory: Path, smoke: bool, timeout: float = 180.0) -> bool:
    """The demo; True once the national view equals its subtree (within ``timeout``)."""
    started = time.monotonic()
    relays: dict[str, Relay] = {}

    def via_relay(member: Member) -> str:
        assert member.parent is not None and member.parent.nats is not None
        if member.name != "county-b":
            return member.parent.nats.url
        relays[member.name] = Relay(member.parent.nats.port)
        return relays[member.name].url

    members: dict[str, Member]
    _root, members = build(directory, LAYOUT, via_relay)
    servers: list[Server] = []
    # SIGTERM (a service manager, `kill`, a test's timeout) stops the demo as Ctrl-C does: its
    # nats-servers and nodes are stopped below, not left running without it
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        for m in members.values():
            if m.nats is not None:
                m.nats.start()
                click.echo(_("nats-server for {name} on {url}", name=m.name, url=m.nats.url))
        for m in members.values():
            servers.append(Server(m.directory))
            click.echo(
                _(
                    "{name} ({tier} {region}) serving on {url}",
                    name=m.name,
                    tier=m.tier,
                    region=m.region,
                    url=servers[-1].url,
                )
            )
        rng = random.Random(2026)
        relays["county-b"].cut()
        click.echo(_("county-b's line to its city is cut: it records offline"))
        for name in ("county-a", "county-b"):
            with opened(members[name]) as node:
                n = day_at_county(node, rng, enterprises=30 if smoke else 120)
            click.echo(_("{name} recorded {count} commands", name=name, count=n))
        cut_until = time.monotonic() + (5 if smoke else 15)
        while time.monotonic() < started + timeout:
            if relays["county-b"].open is False and time.monotonic() > cut_until:
                relays["county-b"].restore()
                click.echo(_("county-b's line is back: it catches up"))
            snap = snapshot(members)
            show(members, snap, time.monotonic() - started)
            if relays["county-b"].open and converged(members, snap):
                click.echo(
                    _(
                        "converged in {seconds}s: the national view equals its subtree",
                        seconds=format(time.monotonic() - started, ".1f"),
                    )
                )
                return True
            time.sleep(2)
        click.echo(_("not converged within {seconds}s", seconds=format(timeout, ".0f")), err=True)
        return False
    finally:
        for s in reversed(servers):
            s.stop()
        for m in members.values():
            if m.nats is not None:
                m.nats.stop()
        for relay in relays.values():
            relay.cut()
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
