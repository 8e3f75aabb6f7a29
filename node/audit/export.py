"""Audit exports: a self-contained SQLite file of whole origins' envelopes, their signed
checkpoints and the key documents that chain every key to the national root, so an auditor
verifies it with nothing but the root public key. And the ``Source`` that reads the same
tables from an export or from a node directory, for verify, replay and proofs.

An export has the tables ``envelopes (origin, seq, raw)``, ``checkpoints (origin, size, note)``,
``documents (raw)`` and ``meta (key, value)``; anything in it is checked, nothing trusted."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.codes import in_subtree
from domain.i18n import _
from federation.envelope import Envelope, parse
from federation.errors import FederationError
from federation.keys import build_trust
from federation.suite import load_public
from node import config as config_mod
from node.config import Config
from node.errors import ConfigError
from node.keys import documents_from_above, key_documents
from node.readonly import Rows, read_only

FORMAT = "anjian-export/1"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE envelopes (origin TEXT NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
    PRIMARY KEY (origin, seq));
CREATE TABLE checkpoints (origin TEXT NOT NULL, size INTEGER NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (origin, size));
CREATE TABLE documents (id INTEGER PRIMARY KEY, raw BLOB NOT NULL);
"""
PAGE = 5000


def envelope_count(config: Config) -> int:
    with read_only(config) as (rows, _db):
        return int(rows("SELECT COUNT(*) AS n FROM envelopes")[0]["n"])


@dataclass
class Source:
    """Envelopes, checkpoints and key documents of an export file or a node directory."""

    path: Path
    rows: Rows
    documents: list[bytes]
    config: Config | None = None  # a node directory's
    meta: dict[str, str] = field(default_factory=dict)  # an export's

    def origins(self) -> list[tuple[str, int]]:
        """Each origin with its highest sequence held."""
        return [
            (str(r["origin"]), int(r["n"]))
            for r in self.rows("SELECT origin, MAX(seq) AS n FROM envelopes GROUP BY origin")
        ]

    def envelopes(self, origin: str, first: int = 1, last: int | None = None) -> Iterator[bytes]:
        """The envelope bytes of ``origin`` from ``first`` to ``last`` (inclusive), in order."""
        if last is None:
            row = self.rows("SELECT MAX(seq) AS n FROM envelopes WHERE origin = ?", origin)[0]
            last = int(row["n"] or 0)
        for after in range(first - 1, last, PAGE):
            yield from (
                bytes(r["raw"])
                for r in self.rows(
                    "SELECT raw FROM envelopes WHERE origin = ? AND seq > ? AND seq <= ?"
                    " ORDER BY seq",
                    origin,
                    after,
                    min(after + PAGE, last),
                )
            )

    def checkpoints(self, origin: str) -> list[str]:
        return [
            str(r["note"])
            for r in self.rows(
                "SELECT note FROM checkpoints WHERE origin = ? ORDER BY size", origin
            )
        ]

    @property
    def kind(self) -> str:
        return "node" if self.config is not None else "export"


@contextmanager
def node_source(config: Config) -> Iterator[Source]:
    with read_only(config) as (rows, _db):
        yield Source(config.directory, rows, documents_of(config, rows), config)


@contextmanager
def open_source(path: Path) -> Iterator[Source]:
    """A node directory (read-only) or an export file; a clear error for anything else."""
    if path.is_dir():
        with node_source(config_mod.load(path)) as source:
            yield source
        return
    if not path.is_file():
        raise ConfigError(_("{path}: no such export file or node directory", path=path))
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        with closing(db):
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise ConfigError(
                    _("{path}: not an anjian export ({detail})", path=path, detail=FORMAT)
                )
            docs = [bytes(r["raw"]) for r in db.execute("SELECT raw FROM documents ORDER BY id")]
            yield Source(
                path, lambda sql, *params: db.execute(sql, params).fetchall(), docs, meta=meta
            )
    except sqlite3.DatabaseError as e:
        raise ConfigError(
            _("{path}: not an anjian export ({detail})", path=path, detail=e)
        ) from None


def prefix_until(envelopes: Iterable[Envelope], until: int | None) -> Iterator[Envelope]:
    """The longest prefix recorded at or before ``until`` (docs/architecture.md §7: "as it stood
    at T")."""
    for env in envelopes:
        if until is not None and env.at > until:
            return
        yield env


def selected_origins(source: Source, region: str | None, config: Config) -> list[tuple[str, int]]:
    """The source's origins, or those whose certified area lies inside ``region`` (by the
    node's trust: its certifications that chain to the root)."""
    origins = source.origins()
    if region is None:
        return origins
    if not config.root_key_file.exists():
        raise ConfigError(_("--region needs the node's trust chain (anjian keys install)"))
    try:
        root = load_public(config.root_key_file)
    except FederationError as e:
        raise ConfigError(str(e)) from None
    trust, _problems = build_trust(root, source.documents)
    return [
        (o, n) for o, n in origins if o in trust.regions and in_subtree(region, trust.regions[o])
    ]


def documents_of(config: Config, rows: Rows) -> list[bytes]:
    """Every key document the node knows: its trust chain, its log's, and those from above."""
    found = key_documents(config) + documents_from_above(rows)
    return list(dict.fromkeys(found))


def export(
    config: Config,
    out: Path,
    *,
    region: str | None = None,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the node's whole-origin logs (within ``region``, as they stood at ``until``)."""
    if out.exists():
        raise ConfigError(_("{path} exists: choose a new file for the export", path=out))
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    with closing(db), read_only(config) as (rows, _db):
        source = Source(config.directory, rows, documents_of(config, rows), config)
        db.executescript(SCHEMA)
        db.execute("BEGIN")
        meta = {"format": FORMAT, "origin": config.node.origin, "region": region or ""}
        meta["until"] = "" if until is None else str(until)
        db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        db.executemany("INSERT INTO documents (raw) VALUES (?)", [(d,) for d in source.documents])
        total = 0
        origins = selected_origins(source, region, config)
        for origin, _size in origins:
            size = 0
            batch: list[tuple[str, int, bytes]] = []
            raws = source.envelopes(origin)
            if until is not None:  # only then is each envelope's time needed
                raws = (e.raw for e in prefix_until(map(parse, raws), until))
            for raw in raws:
                size += 1
                batch.append((origin, size, raw))
                if len(batch) >= PAGE:
                    db.executemany("INSERT INTO envelopes VALUES (?, ?, ?)", batch)
                    if progress is not None:
                        progress(len(batch))
                    batch = []
            db.executemany("INSERT INTO envelopes VALUES (?, ?, ?)", batch)
            if progress is not None:
                progress(len(batch))
            total += size
            db.executemany(
                "INSERT INTO checkpoints VALUES (?, ?, ?)",
                [
                    (origin, int(r["size"]), str(r["note"]))
                    for r in rows(
                        "SELECT size, note FROM checkpoints WHERE origin = ? AND size <= ?"
                        " ORDER BY size",
                        origin,
                        size,
                    )
                ],
            )
        db.execute("COMMIT")
    tmp.rename(out)
    return {
        "export": str(out),
        "origins": len(origins),
        "envelopes": total,
        "documents": len(source.documents),
        "region": region,
        "until": until,
    }
