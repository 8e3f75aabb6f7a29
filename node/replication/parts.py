"""The federation tasks a node's configuration asks for, wired to its storage threads: what
``anjian serve`` runs beside the HTTP API."""

from __future__ import annotations

from federation.transport import Transport
from node.replication.archive import Archive
from node.replication.backup import Follower
from node.replication.down import DownConsumer, DownPublisher
from node.replication.importer import Importer
from node.replication.natsauth import Authoriser
from node.replication.part import Call, Part
from node.replication.receiver import Receiver
from node.replication.uplink import Uplink
from node.service import Node


def parts(
    node: Node, read: Call, write: Call, importer: Importer, transport: Transport | None = None
) -> list[Part]:
    """The federation tasks this node's configuration asks for: a backup centre follows the
    national archive (its parent) and republishes its own; every other tier sends up to its
    parent, takes what comes down, and with its own NATS receives from its children. They
    connect through ``transport`` (NATS JetStream unless given). A tier whose server
    configuration is in ``[federation] server_dir`` keeps its authorisation current."""
    t = transport
    config = node.config
    parent, nats = config.node.parent, config.federation.nats
    found: list[Part] = []
    if nats and config.federation.server_dir:  # this tier's server: its authorisation
        found.append(Authoriser(node, config.directory / config.federation.server_dir, read, write))
    if config.node.tier.value == "backup":
        follower = Follower(node, parent, read, write, importer, t) if parent else None
        found += [follower] if follower else []
        found += [Archive(node, nats, read, write, follower, t)] if nats else []
        return found
    if parent:
        found.append(Uplink(node, parent, read, write, t))
        found.append(DownConsumer(node, parent, read, write, importer, t))
    if nats:
        receiver = Receiver(node, nats, read, write, importer, t)
        found.append(receiver)
        found.append(DownPublisher(node, nats, read, write, t))
        if config.node.tier.value == "national":
            found.append(Archive(node, nats, read, write, receiver, t))
    return found
