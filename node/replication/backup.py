"""The backup centre and node recovery (docs/architecture.md §6 "Archive", §8).

- ``Follower``: a backup node follows the national centre's archive stream with a durable
  consumer and applies everything through the verified import, so it holds every envelope and
  checkpoint, verified, in a node of its own (log, projections, digest) — and publishes its own
  archive stream in turn, so either centre can restore the other.
- ``restore``: `anjian backup restore` rebuilds a node from an archive stream alone, from zero.
- ``recover``: `anjian recover` takes a node's own history back from its parent (which answers
  on ``anjian.history.<child>``), after which the node continues its own sequence."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from domain.i18n import _
from federation.envelope import parse
from federation.errors import VerificationError
from federation.jetstream import NATSTransport
from federation.keys import chaining
from federation.suite import load_public, public_pem
from federation.transport import (
    ARCHIVE,
    DOWN,
    SUBJECTS,
    UP,
    Connection,
    ConsumerSpec,
    Delivery,
    Refused,
    Transport,
    backup_durable,
    down_durables,
    history_subject,
    restore_durable,
    up_subject,
)
from node.errors import ConfigError
from node.keys import credentials
from node.replication.archive import last_seq
from node.replication.importer import KEY_DOCUMENT, Importer
from node.replication.outbox import tree_sizes
from node.replication.part import describe, item
from node.replication.receiver import Taker
from node.service import Node

log = logging.getLogger("anjian.federation")
Progress = Callable[[int], None]
FETCH_TIMEOUT = 5.0  # seconds a restore waits for the next batch before it gives up


class Documents:
    """The key documents carried by key-document envelopes seen so far, given with every take:
    a log that holds its own node's certification (the national centre's) can only be judged
    by it, and it may wait in a run behind envelopes that need it. Each document still counts
    only if it verifies up to the root."""

    NEEDLE = KEY_DOCUMENT.encode()

    def __init__(self, waiting: Sequence[bytes] = ()) -> None:
        self.seen: dict[bytes, None] = {}
        self.scan([("envelope", raw) for raw in waiting])

    def scan(self, items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """``items`` and every document seen so far (these included)."""
        for kind, data in items:
            if kind == "envelope" and self.NEEDLE in data:
                with contextlib.suppress(VerificationError, KeyError, ValueError, TypeError):
                    env = parse(data)
                    if env.type == KEY_DOCUMENT:
                        self.seen[base64.b64decode(env.payload["document"])] = None
        return items + [("document", d) for d in self.seen]


def waiting_envelopes(node: Node) -> list[bytes]:
    return [bytes(r["raw"]) for r in node.log.query("SELECT raw FROM import_pending")]


class Follower(Taker):
    """The backup centre's task: the national archive, applied as it grows."""

    name = "backup"
    stream = ARCHIVE

    async def session(self, nc: Connection) -> None:
        self.durable = backup_durable(self.node.config.node.origin)
        self.documents = Documents(await self.read(waiting_envelopes, self.node))
        await self.consume(nc)

    def items(self, msgs: list[Delivery]) -> list[tuple[str, bytes]]:
        return self.documents.scan(super().items(msgs))


# -- rebuilding a node ---------------------------------------------------------------------------
async def restore(
    node: Node,
    url: str,
    progress: Progress | None = None,
    total: Progress | None = None,
    transport: Transport | None = None,
) -> dict[str, Any]:
    """Apply an archive stream from its first message into ``node``, verified: the whole
    country's log, for a national or a backup centre."""
    if node.config.node.tier.value not in ("national", "backup"):
        raise ConfigError(
            _(
                "an archive holds the whole country: restore a national or a backup centre with"
                " it; a bureau below takes its history from its parent (anjian recover)"
            )
        )
    importer = Importer(node, restoring=True)
    nc = await _connect(transport, url, node, "restore")
    try:
        info = await nc.stream_info(ARCHIVE)
        if info is None:
            raise ConfigError(_("no archive stream ({stream}) at {url}", stream=ARCHIVE, url=url))
        last, count = info.last_seq, info.messages
        if total is not None:
            total(count)
        # this very stream (its address and when it was made): where an earlier run stopped
        source = f"{url} {ARCHIVE} {info.created}"
        seen = _restored(node, source)
        # named after the node (what the server's permissions let it make); made anew, at
        # where this restore goes on
        durable = restore_durable(node.config.node.origin)
        await nc.delete_consumer(ARCHIVE, durable)
        sub = await nc.consumer(
            ConsumerSpec(
                ARCHIVE,
                durable,
                SUBJECTS[ARCHIVE],
                ack_all=True,
                after=seen,
                max_ack_pending=-1,
                inactive=300.0,  # a restore killed midway leaves no consumer behind for long
            )
        )
        totals = _Totals()
        docs = Documents(waiting_envelopes(node))
        resumed, taken = seen, 0
        try:
            while seen < last:
                msgs = await sub.fetch(node.config.federation.batch, FETCH_TIMEOUT)
                if not msgs:
                    raise ConfigError(
                        _(
                            "the archive at {url} stopped delivering at message {seen} of {last}",
                            url=url,
                            seen=seen,
                            last=last,
                        )
                    )
                seen = msgs[-1].seq
                items = docs.scan([item(m.subject, m.data) for m in msgs])
                totals.add(importer.take(items, hold_tail=seen < last))
                node.log.write(  # what waits is in import_pending: safe to go on from here
                    "INSERT INTO restore_positions (source, seq) VALUES (?, ?)"
                    " ON CONFLICT (source) DO UPDATE SET seq = excluded.seq",
                    (source, seen),
                )
                taken += len(msgs)
                await msgs[-1].ack()
                if progress is not None:
                    progress(len(msgs))
        finally:
            with contextlib.suppress(Exception):
                await nc.delete_consumer(ARCHIVE, durable)
    finally:
        await nc.close()
    totals.add(importer.take(docs.scan([]), hold_tail=False))
    report: dict[str, Any] = {"messages": count, "resumed_after": resumed, "taken": taken}
    report |= {**totals.report(importer), **_finish(node)}
    report["continue"] = _next_key(node, importer, report["own_sequence"])
    return report


def _restored(node: Node, source: str) -> int:
    rows = node.log.query("SELECT seq FROM restore_positions WHERE source = ?", (source,))
    return int(rows[0]["seq"]) if rows else 0


async def recover(
    node: Node,
    url: str,
    progress: Progress | None = None,
    total: Progress | None = None,
    transport: Transport | None = None,
) -> dict[str, Any]:
    """Take back from the parent everything it applied of the origins this node relayed (its
    own first), verified; then forget this node's place in the parent's downward stream so
    that what came down is delivered again."""
    me = node.config.node.origin
    importer = Importer(node, restoring=True)
    nc = await _connect(transport, url, node, "recover")
    try:
        index = await _ask(nc, me, {"origin": None})
        origins: dict[str, int] = index["origins"]
        if not origins:
            raise ConfigError(
                _("the parent at {url} holds no history of {origin}", url=url, origin=me)
            )
        if total is not None:
            total(sum(origins.values()))
        _install(node, [bytes(d) for d in index["documents"]])
        docs = Documents(waiting_envelopes(node))
        totals = _Totals()
        for origin in sorted(origins, key=lambda o: (o != me, o)):
            after = 0
            while after < origins[origin]:
                page = await _ask(nc, me, {"origin": origin, "after": after})
                if not page["envelopes"]:
                    break
                items = [("envelope", bytes(e)) for e in page["envelopes"]]
                items += [("checkpoint", str(c).encode()) for c in page["checkpoints"]]
                totals.add(importer.take(docs.scan(items), hold_tail=True))
                after += len(page["envelopes"])
                if progress is not None:
                    progress(len(page["envelopes"]))
        totals.add(importer.take(docs.scan([]), hold_tail=False))
        unapplied = {}  # published to the parent, not applied there yet: must not be re-signed
        for origin, applied in origins.items():
            last = await last_seq(nc, UP, up_subject(me, "env", origin))
            if last > applied:
                unapplied[origin] = last - applied
        for durable in down_durables(me):
            await nc.delete_consumer(DOWN, durable)
    finally:
        await nc.close()
    report = {"parent_held": origins, **totals.report(importer), **_finish(node)}
    report["continue"] = _next_key(node, importer, report["own_sequence"])
    if unapplied:
        report["continue"] = {
            "ready": False,
            "reason": str(
                _(
                    "the parent has not applied all that was sent to it yet: {unapplied}",
                    unapplied=unapplied,
                )
            ),
            "todo": str(
                _(
                    "record nothing yet: run `anjian recover` again once the parent has applied"
                    " them (its `anjian status`), so that this node signs no sequence twice"
                )
            ),
        }
    return report


async def _connect(transport: Transport | None, url: str, node: Node, what: str) -> Connection:
    try:
        return await (transport or NATSTransport()).connect(
            url, f"anjian {node.config.node.origin} {what}", credentials(node.config)
        )
    except Refused as e:
        raise ConfigError(
            _(
                "NATS at {url} refused this node: {error}. A node on a new disk has a new NATS key"
                " ({nats_key}, nats.pub): have the certifier certify it with the node's key"
                " (anjian keys certify ... --public node.pub --nats-key nats.pub), and the"
                " server's tier reload its authorisation",
                url=url,
                error=e,
                nats_key=node.config.federation.nats_key,
            )
        ) from None
    except Exception as e:
        raise ConfigError(
            _("cannot reach NATS at {url}: {error}", url=url, error=describe(e))
        ) from None


async def _ask(nc: Connection, me: str, request: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = await nc.request(history_subject(me), msgpack.packb(request), timeout=30)
    except Refused as e:
        raise ConfigError(_("the parent's NATS server refused: {error}", error=e)) from None
    except Exception as e:
        raise ConfigError(
            _(
                "the parent did not answer for the history of {origin} ({error}): is its node"
                " running (`anjian serve`) with [federation] nats set?",
                origin=me,
                error=describe(e),
            )
        ) from None
    answer: dict[str, Any] = msgpack.unpackb(reply)
    if "error" in answer:
        raise ConfigError(_("the parent refused: {error}", error=answer["error"]))
    return answer


def _install(node: Node, documents: list[bytes]) -> None:
    """Keep the key documents that chain to the root in the trust directory: the node's own
    certification among them (its disk was lost with it)."""
    trust_dir = node.config.trust_dir
    trust_dir.mkdir(exist_ok=True)
    if not node.config.root_key_file.exists():
        raise ConfigError(_("no root key in the node's trust directory: give --root-key"))
    for raw in chaining(load_public(node.config.root_key_file), documents):
        (trust_dir / f"{hashlib.sha256(raw).hexdigest()[:16]}.doc").write_bytes(raw)


class _Totals:
    def __init__(self) -> None:
        self.applied = 0
        self.quarantined: list[dict[str, Any]] = []

    def add(self, summary: dict[str, Any]) -> None:
        self.applied += summary["applied"]
        self.quarantined += summary["quarantined"]

    def report(self, importer: Importer) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "quarantined": self.quarantined,
            "held": importer.held(),
        }


def _finish(node: Node) -> dict[str, Any]:
    """Sign what the node now holds of its own log and bring its projections up to date."""
    node.project()
    sizes = tree_sizes(node.log)
    return {
        "origins": len(sizes),
        "envelopes": sum(sizes.values()),
        "own_sequence": sizes.get(node.config.node.origin, 0),
    }


def _next_key(node: Node, importer: Importer, size: int) -> dict[str, Any]:
    """Whether the node's key may sign its next envelope; if not, what the operator does."""
    me = node.config.node.origin
    try:
        importer.trust().key_for(me, node.key.key_id, size + 1)
    except VerificationError as e:
        (node.config.directory / "node.pub").write_bytes(public_pem(node.key.public))
        return {
            "ready": False,
            "reason": str(e),
            "todo": str(
                _(
                    "have the certifier certify node.pub for origin {origin} from sequence"
                    " {next} (anjian keys certify ... --from-seq {next}), revoke the lost key at"
                    " {last} (anjian keys revoke ... --last-seq {last}), and install both here"
                    " (anjian keys install) before recording",
                    origin=me,
                    next=size + 1,
                    last=size,
                )
            ),
        }
    return {"ready": True, "next_sequence": size + 1, "key_id": node.key.key_id}
