"""Verifying an audit export or a node directory on all cores: every origin's envelopes (chain,
sequence, each key's validity at its position, each signature), its checkpoints (signature and
Merkle root), and in a node directory every stored event held against its envelope, so a change
in either the log or the store is named. Reads read-only and needs no private key.

Each origin is cut into chunks that worker processes check independently (a chunk also reads
the envelope before it, for the chain); they return the chunk's leaf hashes, and this process
rebuilds each origin's tree from them to check its signed checkpoints.

The anchor is the national root key, through the certifications the history carries
(``federation.keys.build_trust``); a pinned node key is weaker. ``anchor_warnings`` says when a
key file given lies where whoever holds the verified log could have swapped it."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.i18n import Text, _, language, set_process_language
from federation.checkpoint import parse_checkpoint
from federation.envelope import GENESIS, Envelope, check_signature, parse
from federation.errors import VerificationError
from federation.merkle import CompactRange, leaf_hash
from federation.suite import key_id
from federation.verify import Failure, Trust, check_envelope, check_note
from node import config as config_mod
from node.audit.export import Source, node_source, open_source
from node.config import Config
from node.errors import ConfigError

CHUNK = 2000  # envelopes per task
# licence events that came down from the tiers above (kept with their envelopes, no chain)
ABOVE = (
    "SELECT origin, seq, raw FROM downward WHERE verified > 0 AND type LIKE ? ORDER BY verified",
    "licence.%",  # a parameter: PostgreSQL's driver reads a bare % as a placeholder
)
AHEAD = 4  # tasks queued per worker


@dataclass(frozen=True)
class Chunk:
    origin: str
    first: int
    last: int


@dataclass
class Checked:
    """What a worker found in one chunk: the leaf hashes of the envelopes that verified (in
    order from ``first``) and the failure that stopped it, if any."""

    chunk: Chunk
    leaves: bytes = b""
    failure: Failure | None = None
    store_failure: Failure | None = None

    @property
    def count(self) -> int:
        return len(self.leaves) // 32


@dataclass
class _Origin:
    name: str
    chunks: int
    done: list[Checked] = field(default_factory=list)


# -- a worker ----------------------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _start(
    where: Path | Config,
    trust: Trust,
    signatures: bool,
    covered: dict[str, int],
    lang: str,
) -> None:
    set_process_language(lang)  # a worker's failures read in the language of the report
    stack = ExitStack()
    opened = node_source(where) if isinstance(where, Config) else open_source(where)
    _worker.update(
        stack=stack,
        source=stack.enter_context(opened),
        trust=trust,
        signatures=signatures,
        covered=covered,
    )


def _check(chunk: Chunk) -> Checked:
    source: Source = _worker["source"]
    trust: Trust = _worker["trust"]
    covered = _worker["covered"].get(chunk.origin, 0)
    rows = source.rows(
        "SELECT seq, raw FROM envelopes WHERE origin = ? AND seq >= ? AND seq <= ? ORDER BY seq",
        chunk.origin,
        chunk.first - 1,
        chunk.last,
    )
    prev: bytes | None = GENESIS if chunk.first == 1 else None  # None: its chunk reports it
    leaves = bytearray()
    result = Checked(chunk)
    expected = chunk.first
    for row in rows:
        seq, raw = int(row["seq"]), bytes(row["raw"])
        if seq < chunk.first:
            prev = sha256(raw).digest()
            continue
        if seq != expected:
            result.failure = Failure(chunk.origin, expected, "sequence_gap", _missing(expected))
            break
        try:
            env = check_envelope(
                raw,
                chunk.origin,
                seq,
                prev,
                trust,
                _worker["signatures"] or seq > covered,  # --fast: what no checkpoint covers
            )
        except VerificationError as e:
            result.failure = Failure(chunk.origin, seq, e.reason, str(e))
            break
        if source.config is not None and result.store_failure is None:
            result.store_failure = _stored_differs(source, env)
        prev = env.hash
        leaves += leaf_hash(raw)
        expected += 1
    else:
        if expected <= chunk.last:
            result.failure = Failure(chunk.origin, expected, "sequence_gap", _missing(expected))
    result.leaves = bytes(leaves)
    return result


def _missing(seq: int) -> str:
    return str(_("envelope {seq} is missing", seq=seq))


def _stored_differs(source: Source, env: Envelope) -> Failure | None:
    """A node directory's stored event of ``env`` has the envelope's content."""
    assert source.config is not None
    pg = source.config.store.backend != "sqlite"
    rows = source.rows(
        "SELECT topic, state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        UUID(env.aggregate) if pg else UUID(env.aggregate).hex,  # as each recorder keeps it
        env.version,
    )
    where = f"{env.origin}:{env.seq} ({env.aggregate} v{env.version})"
    if not rows:
        return Failure(
            env.origin,
            env.seq,
            "missing_event",
            str(_("envelope {envelope} has no event", envelope=where)),
        )
    try:
        state = json.loads(bytes(rows[0]["state"]))
    except (ValueError, UnicodeDecodeError):
        state = None
    if rows[0]["topic"] != env.type or state != {
        "recorded_at": env.at,
        "actor": env.actor,
        **env.payload,
    }:
        return Failure(
            env.origin,
            env.seq,
            "event_differs",
            str(_("the stored event of {envelope} differs", envelope=where)),
        )
    return None


# -- this process ------------------------------------------------------------------------------
def verify(
    source: Source,
    trust: Trust,
    *,
    signatures: bool = True,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Verify everything in ``source``; the report names each origin's first failure."""
    origins, misplaced = _planned(source)
    notes = {o: _notes(source, o) for o, _size in origins}
    covered = {o: max(n, default=0) for o, n in notes.items()}  # --fast: signed up to there
    chunks = [
        Chunk(o, first, min(first + CHUNK - 1, last))
        for o, last in origins
        for first in range(1, last + 1, CHUNK)
    ]
    state = {o: _Origin(o, n) for o, n in Counter(c.origin for c in chunks).items()}
    reports: dict[str, dict[str, Any]] = {}

    def finish(checked: Checked) -> None:
        if progress is not None:
            progress(checked.count)
        o = state[checked.chunk.origin]
        o.done.append(checked)
        if len(o.done) == o.chunks:
            reports[o.name] = _assemble(o, notes[o.name], trust)
            del state[o.name]

    jobs = jobs or os.cpu_count() or 1
    args = (source.config or source.path, trust, signatures, covered, language())
    if jobs == 1 or len(chunks) <= 1:
        _start(*args)
        try:
            for c in chunks:
                finish(_check(c))
        finally:
            _worker.pop("stack").close()
    else:
        # fork starts workers at once; with other threads running only spawn is safe
        context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
        with ProcessPoolExecutor(jobs, context, initializer=_start, initargs=args) as pool:
            queue = list(reversed(chunks))
            running: set[Future[Checked]] = set()
            while True:
                while len(running) < jobs * AHEAD and queue:
                    running.add(pool.submit(_check, queue.pop()))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    finish(f.result())
    ordered = [reports[o] for o, _size in origins]
    failures = [misplaced.get(r["origin"], r.pop("failure")) for r in ordered]
    store = [r.pop("store_failure") for r in ordered]
    if source.config is not None:
        above = _from_above(source, trust, signatures)
        ordered += [above[0]] if above[0]["envelopes"] else []
        failures.append(above[1])
        if not any(failures) and not any(store):
            store.append(_unsigned_events(source, above[0]["envelopes"]))
    found = [f for f in failures if f] + [f for f in store if f]
    return {
        "ok": not found,
        "source": source.kind,
        "origins": ordered,
        "origins_checked": len(ordered),
        "events_checked": sum(r["envelopes"] for r in ordered),
        "checkpoints_checked": sum(r["checkpoints"] for r in ordered),
        "signatures": "every envelope" if signatures else "by checkpoint only",
        "failures": [f.__dict__ for f in found],
    }


def _planned(source: Source) -> tuple[list[tuple[str, int]], dict[str, Failure]]:
    """Each origin with how far to check it: its highest sequence, or — when rows are missing
    (fewer rows than the highest sequence) — one past its row count, where the first gap must
    lie; rows at a sequence below 1 are a failure of their own."""
    planned, misplaced = [], {}
    for r in source.rows(
        "SELECT origin, MIN(seq) AS low, MAX(seq) AS high, COUNT(*) AS n FROM envelopes"
        " GROUP BY origin ORDER BY origin"
    ):
        origin, low, high, n = str(r["origin"]), int(r["low"]), int(r["high"]), int(r["n"])
        if low < 1:
            misplaced[origin] = Failure(
                origin,
                low,
                "out_of_order",
                str(_("a row at sequence {seq}: sequences start at 1", seq=low)),
            )
        planned.append((origin, max(1, min(high, n + 1))))
    return planned, misplaced


def _notes(source: Source, origin: str) -> dict[int, list[str]]:
    """The origin's signed notes by the size they sign, every one checked there; under 0 those
    that do not parse, under -1 what rows claim another size than their note."""
    notes: dict[int, list[str]] = {}
    for row in source.rows(
        "SELECT size, note FROM checkpoints WHERE origin = ? ORDER BY size", origin
    ):
        text = str(row["note"])
        try:
            size = parse_checkpoint(text)[0].size
        except VerificationError:
            size = 0  # named with the origin
        notes.setdefault(size, []).append(text)
        if size and size != int(row["size"]):  # checked at its own size, and named
            notes.setdefault(-1, []).append(
                str(
                    _(
                        "the row of size {row} holds a note of {size}",
                        row=row["size"],
                        size=size,
                    )
                )
            )
    return notes


def _assemble(o: _Origin, notes: dict[int, list[str]], trust: Trust) -> dict[str, Any]:
    """One origin's chunks in order: its verified prefix, its checkpoints checked against the
    tree of that prefix, and the first failure."""
    done = sorted(o.done, key=lambda c: c.chunk.first)
    failure: Failure | None = None
    store_failure = next((c.store_failure for c in done if c.store_failure), None)
    tree = CompactRange()
    checked = 0
    for text in notes.get(0, []):
        try:
            parse_checkpoint(text)
        except VerificationError as e:
            failure = Failure(o.name, 0, e.reason, str(e))
            break
    for c in done:
        if failure is not None:
            break
        for i in range(0, len(c.leaves), 32):
            tree.append(c.leaves[i : i + 32])
            for note in notes.get(tree.size, []):
                try:
                    check_note(o.name, note, tree.root(), trust, tree.size)
                except VerificationError as e:
                    failure = Failure(o.name, tree.size, e.reason, str(e))
                    break
                checked += 1
            if failure is not None:
                break
        failure = failure or c.failure
    if failure is None and -1 in notes:
        failure = Failure(o.name, 0, "bad_checkpoint", notes[-1][0])
    beyond = [s for s in notes if s > tree.size]
    if failure is None and beyond:
        failure = Failure(
            o.name,
            tree.size + 1,
            "truncated",
            str(
                _(
                    "a checkpoint covers {covered} envelopes; only {held} are here",
                    covered=min(beyond),
                    held=tree.size,
                )
            ),
        )
    return {
        "origin": o.name,
        "envelopes": tree.size,
        "checkpoints": checked,
        "root": tree.root().hex(),
        "failure": failure,
        "store_failure": store_failure,
    }


def _from_above(
    source: Source, trust: Trust, signatures: bool
) -> tuple[dict[str, Any], Failure | None]:
    """Licence events that came down from the tiers above: a selection of their logs, each
    envelope standing on its own signature (no chain to follow here), and each held against
    its stored event."""
    count = 0
    failure: Failure | None = None
    for r in source.rows(*ABOVE):
        try:
            env = parse(bytes(r["raw"]))
            if (env.origin, env.seq) != (r["origin"], r["seq"]):
                raise VerificationError("wrong_origin", _("the row names another envelope"))
            public = trust.key_for(env.origin, env.key, env.seq)
            if signatures:
                check_signature(env, public)
        except VerificationError as e:
            failure = Failure(str(r["origin"]), int(r["seq"]), e.reason, str(e))
            break
        failure = _stored_differs(source, env)
        if failure is not None:
            break
        count += 1
    return {"origin": "above", "envelopes": count, "checkpoints": 0, "root": ""}, failure


def _unsigned_events(source: Source, above: int) -> Failure | None:
    """Every envelope has its stored event (the workers checked that); a stored event without
    an envelope shows as a surplus, then named by a full look."""
    stored = int(source.rows("SELECT COUNT(*) AS n FROM stored_events")[0]["n"])
    envelopes = int(source.rows("SELECT COUNT(*) AS n FROM envelopes")[0]["n"])
    if stored == envelopes + above:
        return None
    signed = set()
    for o, _size in source.origins():
        signed |= {(e.aggregate, e.version) for e in map(parse, source.envelopes(o))}
    for r in source.rows(*ABOVE):
        e = parse(bytes(r["raw"]))
        signed.add((e.aggregate, e.version))
    for row in source.rows("SELECT originator_id, originator_version FROM stored_events"):
        key = (str(UUID(str(row["originator_id"]))), int(row["originator_version"]))
        if key not in signed:
            return Failure(
                source.config.node.origin if source.config else "?",
                0,
                "unsigned_event",
                str(
                    _(
                        "stored event {record} v{version} has no envelope",
                        record=key[0],
                        version=key[1],
                    )
                ),
            )
    return None


def audit_node(config: Config, trust: Trust, **options: Any) -> dict[str, Any]:
    """Verify a node directory (see ``verify``)."""
    with node_source(config) as source:
        return verify(source, trust, **options)


# -- the auditor's trust anchor ----------------------------------------------------------------
def anchor_warnings(source: Path, held: Source, keys: dict[str, Path]) -> list[str]:
    """Why a key file given as the trust anchor (``keys``: option → path) is not independent of
    what it verifies: it lies inside the node directory being audited or the export itself, or
    inside the node directory of an origin whose log is verified (an export's own node). Whoever
    can change that log can change the key beside it, so a pass proves nothing then. Paths are
    judged as given and with every link resolved."""
    origins = {o for o, _size in held.origins()} | {held.meta.get("origin", "")}
    if held.config is not None:
        origins.add(held.config.node.origin)
    warnings = []
    for option, key in keys.items():
        where = _inside_history(source, key, origins - {""})
        if where is not None:
            warnings.append(
                str(
                    _(
                        "{option} {key} lies inside {where}: whoever can change that log can"
                        " change this key as well, so this verification proves nothing against"
                        " them. Verify with the national root public key, held apart from the"
                        " node (--root-key root.pub, as the national centre publishes it).",
                        option=option,
                        key=key,
                        where=where,
                    )
                )
            )
    return warnings


def _inside_history(source: Path, key: Path, origins: set[str]) -> Text | None:
    for path in dict.fromkeys((Path(os.path.abspath(key)), key.resolve())):
        for top in dict.fromkeys((Path(os.path.abspath(source)), source.resolve())):
            if path == top:
                return _("the export being verified ({path})", path=source)
            if path.is_relative_to(top):
                return _("the node directory being audited ({path})", path=source)
        for folder in path.parents:
            if not (folder / config_mod.CONFIG_FILE).is_file():
                continue
            origin = _origin_of(folder)
            if origin is None or origin in origins:
                if origin:
                    return _(
                        "the node directory {path} of origin {origin}, whose log is being verified",
                        path=folder,
                        origin=origin,
                    )
                return _("the node directory {path}, whose log is being verified", path=folder)
    return None


def _origin_of(directory: Path) -> str | None:
    try:
        return config_mod.load(directory, environ={}).node.origin
    except (ConfigError, ValueError, OSError):  # a node directory all the same: unknown whose
        return None


def anchor(trust: Trust, root: bytes | None, pinned: str | None = None) -> dict[str, Any]:
    """What the report was checked against, for the report."""
    if root is not None:
        return {
            "anchor": "root key",
            "key_id": key_id(root),
            "keys_certified": len(trust.grants),
            "origins_certified": len({g.origin for g in trust.grants}),
        }
    (grant,) = trust.grants
    return {"anchor": "pinned key", "key_id": grant.key_id, "origin": pinned or grant.origin}
