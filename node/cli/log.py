"""`anjian log ...`: a node's log as a bundle file, carried by hand where no line reaches
(a county cut off for long), and imported through the verified import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from federation.bundle import pack, unpack
from federation.errors import FederationError
from node.cli.base import NODE_DIR, emit, format_option, open_node
from node.errors import ConfigError
from node.keys import key_documents
from node.replication.importer import Importer


@click.group()
def log() -> None:
    """The node's signed log as a bundle file, and taking bundles of other origins."""


@log.command("bundle")
@NODE_DIR
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--after",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only envelopes after this sequence.",
)
@format_option()
def log_bundle(directory: Path, out: Path, after: int, fmt: str) -> None:
    """Write this node's envelopes, checkpoints and trust documents to a bundle file, for a
    parent to import (`anjian log import`) when there is no NATS link."""
    with open_node(directory) as node:
        items: list[tuple[Any, bytes]] = []
        seq = after
        while page := node.log.envelopes(seq, 1000):
            items += [("envelope", raw) for raw in page]
            seq += len(page)
        items += [("checkpoint", note.encode()) for note in node.log.checkpoints()]
        items += [("document", raw) for raw in key_documents(node.config)]
        out.write_bytes(pack(items))
        emit({"bundle": str(out), "envelopes": seq - after, "items": len(items)}, fmt)


@log.command("import")
@NODE_DIR
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option()
def log_import(directory: Path, bundle: Path, fmt: str) -> None:
    """Verify and apply a bundle of other origins' envelopes: each origin in sequence, once;
    gaps held; forgeries quarantined with their reason (printed)."""
    with open_node(directory) as node:
        try:
            summary = Importer(node).take(unpack(bundle.read_bytes()))
        except FederationError as e:
            raise ConfigError(str(e)) from None
        emit(summary, fmt)
