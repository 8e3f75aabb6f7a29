"""A real federation for integration tests: nats-server processes for the tiers that run one
(configured by `anjian nats config`'s code: only certified NATS identities, each with what its
place allows; over mutual TLS if asked), `anjian serve` processes for the nodes, keys and NATS
identities certified down the chain from an offline root (each certification recorded in its
certifier's log, as bureaus do), and ways to record at a node, connect as a node, look into any
node's store read-only, and wait for convergence."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.jetstream import NATSTransport
from federation.transport import TransportError
from node import config as config_mod
from node.cli import demo
from node.errors import ConfigError
from node.keys import credentials
from node.replication.natsd import nats_server_binary
from tests.conftest import Clock
from tests.factories import credit_code, enterprise, js
from tests.integration.helpers import Server
from tests.node.replication.test_import import forge  # noqa: F401 (for the tests here)
from tests.servers import Deadline, missing


@dataclass
class Member(demo.Member):
    """A federation node under test: its server process, and read-only looks into its store."""

    server: Server | None = None

    def start(self, within: Deadline | None = None) -> None:
        """Its NATS server if it runs one and that is down, and its node; within START seconds
        (nats-server is ready in about one, a node serves in 2 s idle, 10 s on a busy machine)."""
        within = within or Deadline(START)
        if self.nats is not None and self.nats.proc is None:
            self.nats.start(timeout=within.left())
        if self.server is None or self.server.proc.poll() is not None:
            self.server = Server(self.directory, timeout=within.left())

    def stop(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            self.server.stop()

    def kill(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            self.server.kill()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        uri = f"file:{self.directory / 'events.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params))

    def nats_options(self) -> dict[str, Any]:
        """nats-py's connect options to connect as this node: its NATS identity, its inbox
        prefix, its TLS."""
        from federation.jetstream import _options

        return _options(credentials(config_mod.load(self.directory, environ={})))

    def applied(self) -> dict[str, int]:
        return {r["origin"]: r["size"] for r in self.query("SELECT origin, size FROM merkle")}

    def envelopes(self, origin: str) -> list[bytes]:
        rows = self.query("SELECT raw FROM envelopes WHERE origin = ? ORDER BY seq", (origin,))
        return [bytes(r["raw"]) for r in rows]

    def quarantine(self) -> list[tuple[str, int, str]]:
        rows = self.query("SELECT origin, seq, reason FROM quarantine ORDER BY origin, seq")
        return [(r["origin"], r["seq"], r["reason"]) for r in rows]


class PrivateCA:
    """A private CA (node.tls) that issues each member one certificate for 127.0.0.1, which
    serves as its server's and as its client's (mutual TLS)."""

    def __init__(self, directory: Path) -> None:
        from node.tls import make_ca

        self.directory = directory
        self.ca, _ = make_ca(directory)

    def issue(self, name: str, directory: Path) -> tuple[Path, Path]:
        from node.tls import issue

        return issue(self.directory, name, ["127.0.0.1"], directory / "tls", client=True)


class Federation:
    """Members by name; ``layout``: (name, tier, region, parent name or None), parents first."""

    def __init__(
        self,
        root: Path,
        layout: list[tuple[str, str, str, str | None]],
        tls: demo.Certificates | None = None,
    ) -> None:
        try:
            nats_server_binary()
        except ConfigError:
            missing("nats-server", "apt-get install -y nats-server")
        self.root_key, self.members = demo.build(root, layout, kind=Member, tls=tls)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def start(self, *names: str) -> None:
        """Start the members named (all by default), within FEDERATION_START seconds in all."""
        within = Deadline(FEDERATION_START)
        for m in self.members.values():  # servers first, top down
            if m.nats is not None and m.nats.proc is None and (not names or m.name in names):
                m.nats.start(timeout=within.left())
        for m in self.members.values():
            if not names or m.name in names:
                m.start(within)

    def stop(self) -> None:
        """Stop every node gracefully (closing checkpoints signed), top down, leaving NATS
        running; within STOP seconds in all (one not stopped by then is killed)."""
        within = Deadline(STOP)
        for m in self.members.values():
            if m.server is not None and m.server.proc.poll() is None:
                m.server.proc.terminate()
                try:
                    m.server.proc.wait(within.left())
                except subprocess.TimeoutExpired:
                    m.server.kill()

    def close(self) -> None:
        """Kill every node, then every NATS server (a SIGKILLed process is gone at once)."""
        for m in self.members.values():
            m.kill()
        for m in self.members.values():
            if m.nats is not None:
                m.nats.kill()


# the bounds of the waits above, for the tests' sums: START for a member (re)started alone,
# FEDERATION_START for a federation's start, STOP for its stop
START = 30
FEDERATION_START = 120
STOP = 30


closing_node = demo.opened


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
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    show: Callable[[], Any] = lambda: "",
    interval: float = 0.2,
) -> None:
    """Poll ``condition`` (at least once) until it holds; fail saying ``what`` did not happen
    within ``timeout`` seconds, and ``show()``. The integration tests wait for what they need
    with this, never with a sleep sized for an idle machine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except sqlite3.OperationalError:
            pass  # a store being created or locked: look again
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {timeout:.0f}s: {show()}")
        time.sleep(interval)


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


async def connect_as(server: Member, member: Member | None = None) -> Any:
    """A nats-py connection to ``server``'s NATS as ``member`` (default: the server's own
    node), with its NATS identity and inbox prefix, failing at once if refused."""
    import nats

    assert server.nats is not None
    options = (member or server).nats_options()
    return await nats.connect(server.nats.url, allow_reconnect=False, **options)


def inject(server: Member, messages: list[tuple[str, bytes]], member: Member | None = None) -> None:
    """Publish raw messages on a tier's JetStream subjects, as an intruder that got hold of a
    node's NATS key or a faulty relay would (as ``member``, default the tier's own node: it may
    publish anything there; each with a fresh message id, so the server's duplicate window
    lets them in)."""
    import asyncio
    import uuid

    async def run() -> None:
        nc = await connect_as(server, member)
        js = nc.jetstream()
        for subject, data in messages:
            await js.publish(subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await nc.close()

    asyncio.run(run())


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


def can_connect(server: Member, member: Member) -> bool:
    """Whether ``member``'s NATS identity is let into ``server``'s NATS now."""

    async def attempt() -> bool:
        creds = credentials(config_mod.load(member.directory, environ={}))
        try:
            nc = await NATSTransport().connect(server.nats.url, "test", creds)
        except TransportError:
            return False
        await nc.close()
        return True

    return asyncio.run(attempt())
