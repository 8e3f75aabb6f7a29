"""Replaying an export or a node directory into a new node directory as it stood at a moment
(docs/architecture.md §7: per origin, the longest prefix recorded at or before T), with its
projections rebuilt, so that `anjian query` and `anjian projections digest` answer about that
moment.

The envelopes are stored verbatim (with their checkpoints and the key documents), so the
replayed directory verifies with `anjian audit verify --root-key` like any node; the replay
itself trusts its input (verifying is that command's work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from domain.base import iso
from domain.codes import NATIONAL_REGION, Tier, in_subtree
from domain.i18n import _
from federation.checkpoint import parse_checkpoint
from federation.envelope import Envelope, parse
from federation.keys import build_trust
from node import config as config_mod
from node.audit.export import Source, prefix_until
from node.config import NodeSection
from node.errors import ConfigError
from node.keys import generate_node_key
from node.projector import rebuild
from node.signedlog import stored_event
from node.store import EventLog

ORIGIN = "replay"  # the replayed directory's own name: never an origin of the history
RUN = 1000


def replay(
    source: Source,
    out: Path,
    *,
    until: int | None = None,
    region: str | None = None,
    root: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``region`` selects origins by their certified area, which needs the ``root`` key: only
    certifications that chain to it count."""
    if out.exists() and any(out.iterdir()):
        raise ConfigError(_("{path} is not empty: replay into a new directory", path=out))
    if region is not None and root is None:
        raise ConfigError(_("--region selects origins by their certified area: give --root-key"))
    regions = build_trust(root, source.documents)[0].regions if root is not None else {}
    origins = [
        (o, n)
        for o, n in source.origins()
        if region is None or (o in regions and in_subtree(region, regions[o]))
    ]
    out.mkdir(parents=True, exist_ok=True)
    node = NodeSection(origin=ORIGIN, tier=Tier.BACKUP, region=NATIONAL_REGION)
    (out / config_mod.CONFIG_FILE).write_text(config_mod.render(node), encoding="utf-8")
    generate_node_key(out)
    config = config_mod.load(out, environ={})
    config.trust_dir.mkdir(exist_ok=True)
    for i, doc in enumerate(source.documents):
        (config.trust_dir / f"{i:06d}.doc").write_bytes(doc)
    log = EventLog(config)
    counts = {}
    try:
        for origin, _size in origins:
            run: list[Envelope] = []
            size = 0
            for env in prefix_until(map(parse, source.envelopes(origin)), until):
                run.append(env)
                if len(run) == RUN:
                    size += _store(log, run, progress)
                    run = []
            size += _store(log, run, progress)
            counts[origin] = size
            notes = []
            for text in source.checkpoints(origin):
                cp = parse_checkpoint(text)[0]
                if cp.size <= size:
                    notes.append((origin, cp.size, cp.root, text))
            log.write_many(
                "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)", notes
            )
        built = rebuild(config, log)
    finally:
        log.close()
    return {
        "replayed": str(out),
        "until": iso(until),
        "region": region,
        "origins": len(counts),
        "envelopes": sum(counts.values()),
        "projected": built["events"],
    }


def _store(log: EventLog, run: list[Envelope], progress: Callable[[int], None] | None) -> int:
    if run:
        log.app.recorder.insert_events([stored_event(env) for env in run], imported=run)
        if progress is not None:
            progress(len(run))
    return len(run)
