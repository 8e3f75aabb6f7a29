"""A real federation for integration tests: nats-server processes for the tiers that run one,
`anjian serve` processes for the nodes, keys certified down the chain from an offline root
(each certification recorded in its certifier's log, as bureaus do), and ways to record at a
node, look into any node's store read-only, and wait for convergence."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.codes import Tier
from federation.keys import ROOT, certify
from federation.suite import SigningKey, load_key, load_public, public_pem
from node import config as config_mod
from node.config import NodeSection
from node.keys import generate_node_key
from node.natsd import NatsServer, nats_server_binary
from node.service import Node
from tests.conftest import Clock
from tests.factories import credit_code, enterprise, js
from tests.integration.helpers import Server
from tests.servers import missing


@dataclass
class Member:
    name: str
    tier: str
    region: str
    directory: Path
    parent: Member | None = None
    nats: NatsServer | None = None
    server: Server | None = None
    docs: list[bytes] = field(default_factory=list)  # its trust chain, root first

    @property
    def origin(self) -> str:
        return self.region

    def start(self) -> None:
        if self.nats is not None and self.nats.proc is None:
            self.nats.start()
        if self.server is None or self.server.proc.poll() is not None:
            self.server = Server(self.directory)

    def stop(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            self.server.stop()

    def kill(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            self.server.kill()

    def open(self, clock: Callable[[], int] | None = None) -> Node:
        """The node's store in this process (alongside a running server: SQLite allows it)."""
        return Node(
            config_mod.load(self.directory, environ={}), **({"clock": clock} if clock else {})
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        uri = f"file:{self.directory / 'events.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params))

    def applied(self) -> dict[str, int]:
        return {r["origin"]: r["size"] for r in self.query("SELECT origin, size FROM merkle")}

    def envelopes(self, origin: str) -> list[bytes]:
        rows = self.query("SELECT raw FROM envelopes WHERE origin = ? ORDER BY seq", (origin,))
        return [bytes(r["raw"]) for r in rows]

    def quarantine(self) -> list[tuple[str, int, str]]:
        rows = self.query("SELECT origin, seq, reason FROM quarantine ORDER BY origin, seq")
        return [(r["origin"], r["seq"], r["reason"]) for r in rows]


class Federation:
    """Members by name; ``layout``: (name, tier, region, parent name or None), parents first."""

    def __init__(self, root: Path, layout: list[tuple[str, str, str, str | None]]) -> None:
        try:
            nats_server_binary()
        except Exception:
            missing("nats-server", "apt-get install -y nats-server")
        self.root_key = SigningKey.generate()
        self.members: dict[str, Member] = {}
        leaves = {name for name, *_ in layout} - {p for *_, p in layout if p}
        for name, tier, region, parent_name in layout:
            parent = self.members[parent_name] if parent_name else None
            directory = root / name
            directory.mkdir(parents=True)
            nats = None if name in leaves else NatsServer(root / f"{name}-nats", name=name)
            assert parent is None or parent.nats is not None
            section = NodeSection(
                origin=region,
                tier=Tier(tier),
                region=region,
                parent=parent.nats.url if parent and parent.nats else None,
            )
            (directory / config_mod.CONFIG_FILE).write_text(
                config_mod.render(section, nats.url if nats else None), encoding="utf-8"
            )
            generate_node_key(directory)
            self.members[name] = Member(name, tier, region, directory, parent, nats)
        self._certify_all()

    def _certify_all(self) -> None:
        """Root certifies the national centre and the provinces (recorded in the national
        log); each other tier is certified by its parent (recorded in the parent's log)."""
        national = next(m for m in self.members.values() if m.tier == "national")
        for m in self.members.values():
            public = load_public(m.directory / "node.pub")
            if m.parent is None or m.tier == "province":
                doc = certify(
                    self.root_key,
                    ROOT,
                    origin=m.origin,
                    region=m.region,
                    tier=m.tier,
                    public=public,
                )
                recorder = national
                m.docs = [doc]
            else:
                assert m.parent is not None
                doc = certify(
                    load_key(m.parent.directory / "node.key"),
                    m.parent.origin,
                    origin=m.origin,
                    region=m.region,
                    tier=m.tier,
                    public=public,
                )
                recorder = m.parent
                m.docs = [*m.parent.docs, doc]
            trust = m.directory / "trust"
            trust.mkdir(exist_ok=True)
            (trust / "root.pub").write_bytes(public_pem(self.root_key.public))
            for i, d in enumerate(m.docs):
                (trust / f"{i}.doc").write_bytes(d)
            with closing_node(recorder) as node:
                node.record_key_document(doc, user="admin")

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def start(self, *names: str) -> None:
        for m in self.members.values():  # servers first, top down
            if m.nats is not None and m.nats.proc is None and (not names or m.name in names):
                m.nats.start()
        for m in self.members.values():
            if not names or m.name in names:
                m.start()

    def stop(self) -> None:
        """Stop every node gracefully (closing checkpoints signed), leaving NATS running."""
        for m in self.members.values():
            m.stop()

    def close(self) -> None:
        for m in self.members.values():
            m.kill()
        for m in self.members.values():
            if m.nats is not None:
                m.nats.kill()


class closing_node:
    def __init__(self, member: Member) -> None:
        self.member = member

    def __enter__(self) -> Node:
        self.node = self.member.open()
        return self.node

    def __exit__(self, *exc: object) -> None:
        self.node.close()


def register_enterprises(member: Member, count: int, start: int = 0, batch: int = 500) -> None:
    """Record ``count`` enterprise registrations at a node, ``batch`` per transaction."""
    import json

    with closing_node(member) as node:
        for first in range(start, start + count, batch):
            n = min(batch, start + count - first)
            commands = [
                {
                    "kind": "enterprise.register",
                    "body": enterprise(
                        credit_code=credit_code(i, member.region), division=member.region
                    ),
                }
                for i in range(first, first + n)
            ]
            node.execute_batch(json.dumps({"commands": commands}), user="clerk")


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, show: Callable[[], Any] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except sqlite3.OperationalError:
            pass  # a store being created or locked: look again
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout:.0f}s: {show()}")


def converged(federation: Federation, top: str, origins: list[str]) -> Callable[[], bool]:
    """True once ``top`` holds every envelope each of ``origins`` recorded, byte for byte."""

    def check() -> bool:
        held = federation[top].applied()
        return all(
            held.get(o, 0) == federation.members[n].applied().get(o, 0)
            for n in federation.members
            for o in origins
            if federation.members[n].origin == o
        )

    return check


__all__ = ["Clock", "Federation", "js"]


def inject(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish raw messages on a tier's JetStream subjects, as an intruder or a faulty relay
    would (each with a fresh message id, so the server's duplicate window lets them in)."""
    import asyncio
    import uuid

    import nats

    async def run() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for subject, data in messages:
            await js.publish(subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await nc.close()

    asyncio.run(run())


def forge(raw: bytes, key: SigningKey, **change: Any) -> bytes:
    """An envelope like ``raw`` with fields changed, sealed with ``key``."""
    from federation.envelope import parse, seal

    env = parse(raw)
    fields = dict(
        origin=env.origin,
        seq=env.seq,
        prev=env.prev,
        at=env.at,
        type=env.type,
        aggregate=env.aggregate,
        version=env.version,
        actor=env.actor,
        payload=env.payload,
    )
    fields.update(change)
    return seal(key, **fields)


def tamper(raw: bytes, **payload: Any) -> bytes:
    """The same envelope with its payload changed after signing (signature kept)."""
    from federation.canonical import decode, encode

    outer = decode(raw)
    body = decode(outer["body"])
    body["payload"] = {**body["payload"], **payload}
    outer["body"] = encode(body)
    return encode(outer)


def bad_signature(raw: bytes) -> bytes:
    from federation.canonical import decode, encode

    outer = decode(raw)
    outer["sig"] = bytes(b ^ 0x5A for b in outer["sig"])
    return encode(outer)
