"""The node as a library: record any command by kind, take batches of sensor readings, read
records back, report status. Synchronous; the HTTP server calls it from its writer thread, the
CLI calls it directly."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any
from uuid import UUID

import chinese_calendar  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain import divisions
from domain.accident import Accident
from domain.base import DAY_MS, Actor, Aggregate, Context, iso, kind_label
from domain.calendar import WorkCalendar
from domain.codes import record_id
from domain.commands import AGGREGATES, BY_KIND
from domain.errors import DomainError, Invalid, Refused, field_errors
from domain.i18n import _
from domain.keys import KeyRegister, RecordKeyDocument, register_id
from domain.labels import labelled
from domain.licence import Licence
from domain.sensors.readings import window_of
from domain.sensors.site import ReadingBatch, Site, site_id
from federation.checkpoint import sign_checkpoint
from federation.envelope import parse as parse_envelope
from federation.errors import FederationError
from federation.keys import ROOT, parse_document, verify_document
from federation.suite import key_id, load_key, load_public
from hardware.errors import Misconfigured
from hardware.filedrop import prune_kept
from node.config import CalendarSection, Config
from node.errors import ConfigError, Conflict, NodeError, NotFound, said
from node.projector import Projector
from node.readings import ReadingsStore
from node.signedlog import Oversized
from node.store import EventLog
from projections.present import present
from projections.queries import QUERIES, Filters
from projections.queries import run as run_query
from projections.store import reading

log = logging.getLogger("anjian.node")

WINDOW_GRACE_MS = 60_000  # a 5-minute window closes a minute after its end (stragglers)
SNAPSHOT_EVERY = 100  # events between local snapshots of large aggregates
CHECKPOINT_EVERY = 1000  # events between checkpoints at the latest


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def work_calendar(section: CalendarSection) -> WorkCalendar:
    """China's working days: the schedule chinese-calendar ships (1.11: 2004–2026) and the years
    node.toml [calendar] adds from the State Council's notices."""
    try:
        return WorkCalendar.build(
            chinese_calendar.holidays,
            chinese_calendar.workdays,
            extra_holidays=section.holidays,
            extra_workdays=section.workdays,
        )
    except ValueError as e:
        raise ConfigError(_("[calendar]: {error}", error=said(e))) from None


def parse(model: type[BaseModel], body: bytes | str) -> Any:
    """Validate a JSON body against a model; Invalid names every bad field (in our words, with
    pydantic's error type as the field's code: ``domain.errors.field_errors``)."""
    if isinstance(body, bytes):  # a byte-order mark, as an editor on Windows saves it
        body = body.removeprefix(b"\xef\xbb\xbf")
    else:
        body = body.removeprefix("\ufeff")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise Invalid(field_errors(e.errors())) from None


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    id: str | None = None
    body: dict[str, Any]


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    commands: list[BatchItem] = Field(min_length=1, max_length=10_000)


def parse_id(kind: str | None, raw: str) -> UUID:
    """A record id; NotFound names the kind of record asked for (None: any)."""
    try:
        return UUID(raw)
    except ValueError:
        if kind is None:
            raise NotFound(_("no record with id {id!r}: ids are UUIDs", id=raw)) from None
        raise NotFound(
            _("no {kind} with id {id!r}: ids are UUIDs", kind=kind_label(kind), id=raw)
        ) from None


class Node:
    def __init__(self, config: Config, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        divisions.declare(config.divisions.extra)  # codes newer than the shipped table
        self.calendar = work_calendar(config.calendar)  # before any store opens: may refuse
        self.log = EventLog(config)
        recorder: Any = self.log.app.recorder  # the signed recorder (node.signedlog)
        recorder.writer.max_bytes = config.federation.max_envelope
        self.key = load_key(config.key_file)
        self.readings = ReadingsStore(config.readings_file)
        self._closed = False
        self._projector: Projector | None = None
        self._projecting = threading.Lock()
        self._cache: dict[UUID, Aggregate] = {}  # aggregates marked CACHED (monitoring sites)

    def context(self, user: str) -> Context:
        node = self.config.node
        return Context(
            Actor(user, node.origin),
            self.clock(),
            node.tier.value,
            node.region,
            partial(record_id, node.origin),
            self.calendar,
        )

    # -- commands -------------------------------------------------------------------------------
    def execute(
        self, kind: str, body: bytes | str, *, user: str, target: str | None = None
    ) -> dict[str, Any]:
        """Record one command; on Invalid, Refused, NotFound or Conflict nothing is recorded."""
        agg = self._prepare(kind, body, target, self.context(user), {})
        return self._save(agg)

    def execute_batch(self, body: bytes | str, *, user: str) -> dict[str, Any]:
        """Record many commands in one transaction: all of them, or (on any error, which
        names the command by its index) none. Later commands see the earlier ones."""
        batch = parse(Batch, body)
        ctx = self.context(user)
        touched: dict[UUID, Aggregate] = {}
        try:
            for i, item in enumerate(batch.commands):
                try:
                    agg = self._prepare(item.kind, json.dumps(item.body), item.id, ctx, touched)
                except Invalid as e:  # each field named from the batch: commands.{i}.field
                    raise Invalid(
                        [
                            replace(f, field=".".join(("commands", str(i), f.field)))
                            for f in e.errors
                        ]
                    ) from None
                except (Refused, NotFound, Conflict) as e:
                    raise type(e)(
                        _("commands.{i} ({kind}): {error}", i=i, kind=item.kind, error=e),
                        code=e.code,
                    ) from None
                touched[agg.id] = agg
            position = self._append(list(touched.values()))
        except BaseException:
            for agg_id in touched:
                self._cache.pop(agg_id, None)
            raise
        return {
            "recorded": len(batch.commands),
            "position": position,
            "records": [
                {"id": str(a.id), "kind": a.KIND, "version": a.version} for a in touched.values()
            ],
        }

    def _prepare(
        self,
        kind: str,
        body: bytes | str,
        target: str | None,
        ctx: Context,
        touched: dict[UUID, Aggregate],
    ) -> Aggregate:
        """Validate a command and apply it to its aggregate in memory (nothing is stored)."""
        spec = BY_KIND.get(kind)
        if spec is None:
            raise NotFound(
                _(
                    "no command kind {kind!r}; known kinds: {kinds}",
                    kind=kind,
                    kinds=", ".join(BY_KIND),
                )
            )
        command = parse(spec.model, body)
        if spec.update is not None and target is None:
            raise Invalid.field(
                "id",
                _(
                    "{kind} acts on an existing {record}: give its id",
                    kind=kind,
                    record=kind_label(spec.aggregate.KIND),
                ),
            )
        facts = () if spec.needs is None else (self._fact(spec.needs, command, target),)
        if spec.create is not None:
            agg = spec.create(command, ctx, *facts)
            existing = touched.get(agg.id) or (self.log.load(agg.id) if agg.DERIVED_ID else None)
            if existing is not None:
                if existing.voided is None:
                    raise Conflict(
                        _(
                            "{kind} {id} already exists (version {version})",
                            kind=kind_label(agg.KIND),
                            id=str(agg.id),
                            version=existing.version,
                        )
                    )
                existing.register_again(agg)
                agg = existing
            return agg
        assert spec.update is not None and target is not None
        agg = touched.get(parse_id(spec.aggregate.KIND, target)) or self.load(
            spec.aggregate.KIND, target
        )
        if agg.KIND != spec.aggregate.KIND:
            raise NotFound(
                _("no {kind} with id {id}", kind=kind_label(spec.aggregate.KIND), id=target)
            )
        if agg.origin != self.config.node.origin:
            raise Refused(
                _(
                    "{kind} {id} belongs to node {origin}, which alone records on it "
                    "(one writing origin per record); record your own record that refers to it",
                    kind=kind_label(agg.KIND),
                    id=str(agg.id),
                    origin=agg.origin,
                ),
            )
        expected = getattr(command, "expected_version", None)
        if expected is not None and expected != agg.version:
            raise Conflict(
                _(
                    "{kind} {id} is at version {version}, not {expected}: "
                    "it changed since you read it; reload and retry",
                    kind=kind_label(agg.KIND),
                    id=str(agg.id),
                    version=agg.version,
                    expected=expected,
                )
            )
        with self._evict_on_error(agg):
            spec.update(agg, command, ctx, *facts)
        return agg

    def _save(self, agg: Aggregate) -> dict[str, Any]:
        position = self._append([agg])
        return {
            "id": str(agg.id),
            "kind": agg.KIND,
            "version": agg.version,
            "position": position,
            "record": labelled(agg.view()),
        }

    def _append(self, aggs: list[Aggregate]) -> int:
        """Store the aggregates' new events in one transaction (envelopes included)."""
        counts = {agg.id: len(agg.pending_events) for agg in aggs}
        try:
            position = self.log.append(*aggs)
        except BaseException as e:
            for agg in aggs:
                self._cache.pop(agg.id, None)
            if isinstance(e, Oversized):
                raise Invalid.field("*", said(e)) from None
            raise
        if position % CHECKPOINT_EVERY < sum(counts.values()):  # crossed a multiple of 1,000
            self.checkpoint()
        for agg in aggs:
            if agg.CACHED:
                self._cache[agg.id] = agg
                if (
                    agg.version // SNAPSHOT_EVERY
                    != (agg.version - counts[agg.id]) // SNAPSHOT_EVERY
                ):
                    self.readings.save_snapshot(
                        str(agg.id), agg.KIND, agg.version, json.dumps(agg.snapshot())
                    )
        return position

    @contextmanager
    def _evict_on_error(self, agg: Aggregate) -> Iterator[None]:
        """A command that fails half-way must not leave its changes in the cached aggregate."""
        try:
            yield
        except BaseException:
            self._cache.pop(agg.id, None)
            raise

    def _fact(self, need: str, command: Any, target: str | None) -> Any:
        """Facts a rule needs from other records of this node."""
        if need == "accident":
            accident = self.load("accident", str(command.accident_id))
            assert isinstance(accident, Accident)
            return {
                "id": str(accident.id),
                "grade": accident.grade.code,
                "voided": accident.voided is not None,
                "occurred_at": accident.facts["occurred_at"],
                "division": accident.facts["division"],
            }
        if need == "fatal_accidents":
            assert target is not None
            licence = self.load("licence", target)
            assert isinstance(licence, Licence)
            return self.fatal_accidents(licence.enterprise_id)
        raise AssertionError(need)

    def fatal_accidents(self, enterprise: str) -> list[dict[str, Any]]:
        """Accidents with deaths or missing persons at an enterprise, as they stand now."""
        found = []
        for accident_id in self.log.accidents_of(enterprise):
            a = self.log.load(accident_id)
            if (
                isinstance(a, Accident)
                and a.voided is None
                and not a.near_miss
                and a.facts["enterprise_id"] == enterprise
                and a.facts["deaths"] + a.facts["missing"] > 0
            ):
                found.append(
                    {
                        "id": str(a.id),
                        "occurred_at": a.facts["occurred_at"],
                        "deaths": a.facts["deaths"],
                        "missing": a.facts["missing"],
                    }
                )
        return found

    # -- sensor readings --------------------------------------------------------------------------
    def ingest(self, site_code: str, body: bytes | str, *, user: str) -> dict[str, Any]:
        """Take a batch of raw readings: store them (the local readings store, not the log),
        then derive alarms, power cuts and the summaries of closed 5-minute windows into the
        log. A retried batch is stored once."""
        batch = parse(ReadingBatch, body)
        if len(batch.readings) > self.config.readings.max_batch:
            raise Invalid.field(
                "readings",
                _("at most {limit} per batch", limit=self.config.readings.max_batch),
            )
        site = self._site(site_code)
        ctx = self.context(user)
        rows = site.accept(batch, ctx)
        stored = self.readings.append(site_code, rows, ctx.now_ms)
        late = sum(1 for _, t, _, _ in rows if t < site.summarized_until)
        try:
            derived = self.derive(site_code, user)
        except Conflict:  # another process wrote to the site meanwhile: derive again, once
            self._cache.pop(site.id, None)
            derived = self.derive(site_code, user)
        return {
            "site": site_code,
            "stored": stored,
            "duplicates": len(rows) - stored,
            "late": late,
            **derived,
        }

    def derive(self, site_code: str, user: str = "anjian") -> dict[str, Any]:
        """Derive the site's events: alarms and power cuts from every stored reading not yet
        derived, and a summary for each window that has closed by the node's clock (its end
        plus a grace for stragglers). Safe to repeat: after a crash between storing and
        deriving the next call picks the readings up, and nothing already in the log is
        recorded again."""
        site = self._site(site_code)
        ctx = self.context(user)
        pending = self.readings.after(site_code, self.readings.marked(site_code))
        closed_before = window_of(ctx.now_ms - WINDOW_GRACE_MS)
        windows = self.readings.windows(site_code, site.summarized_until, closed_before)
        if not pending and not windows:
            return {"events": [], "position": None}
        latest = self.readings.latest(site_code)
        with self._evict_on_error(site):
            site.observe(pending, ctx, latest)
            for start in windows:
                site.summarize(start, self.readings.window(site_code, start), ctx)
            names = [e.NAME for e in site.pending_events]
            position = self._save(site)["position"] if names else None
        if pending:
            self.readings.mark(site_code, pending[-1].id, latest)
        return {"events": names, "position": position}

    def derive_all(self) -> dict[str, list[str]]:
        """Derive every site with readings: at start-up (what a crash left pending) and
        periodically (windows that closed since the last batch)."""
        return {code: self.derive(code)["events"] for code in self.readings.sites()}

    def prune_readings(self, now_ms: int | None = None) -> dict[str, Any]:
        """Drop raw readings past the retention period, and the dropped monitoring files kept
        in the file-drop folders' done/ and rejected/ (the raw data they carried) as well."""
        cutoff = (
            self.clock() if now_ms is None else now_ms
        ) - self.config.readings.retention_days * DAY_MS
        files = 0
        for drop in self.config.hardware.filedrop:
            try:  # never through a link (hardware/dropfolder.py)
                files += prune_kept(self.config.directory / drop.directory, cutoff)
            except Misconfigured as e:
                log.warning("%s", e)
        return {"pruned": self.readings.prune(cutoff), "files": files, "before": iso(cutoff)}

    def _site(self, code: str) -> Site:
        site = self._load_by_id(site_id(code, self.config.node.region))
        if not isinstance(site, Site):
            raise NotFound(
                _("no monitoring site {code!r}: register it with sensor.register-site", code=code)
            )
        return site

    # -- reading ----------------------------------------------------------------------------------
    def _load_by_id(self, aggregate_id: UUID) -> Aggregate | None:
        cached = self._cache.get(aggregate_id)
        if cached is not None:
            self.log.catch_up(cached)  # events written by another process since
            return cached
        agg = self._from_snapshot(aggregate_id) or self.log.load(aggregate_id)
        if agg is not None and agg.CACHED:
            self._cache[agg.id] = agg
        return agg

    def _from_snapshot(self, aggregate_id: UUID) -> Aggregate | None:
        """Large aggregates (sites) start from a local snapshot and catch up with the log."""
        found = self.readings.snapshot(str(aggregate_id))
        if found is None:
            return None
        kind, version, state = found
        if version > self.log.version_of(aggregate_id):  # the log was restored to before it
            return None
        agg: Aggregate = AGGREGATES[kind].restore(json.loads(state))
        self.log.catch_up(agg)
        return agg

    def load(self, kind: str | None, raw_id: str) -> Aggregate:
        agg = self._load_by_id(parse_id(kind, raw_id))
        if agg is None and kind is None:
            raise NotFound(_("no record with id {id}", id=raw_id))
        if agg is None or (kind is not None and kind != agg.KIND):
            raise NotFound(_("no {kind} with id {id}", kind=kind_label(kind or ""), id=raw_id))
        return agg

    def show(self, raw_id: str, kind: str | None = None) -> dict[str, Any]:
        if kind == "site" and not _is_uuid(raw_id):
            return labelled(self._site(raw_id).view())  # sites may also be named by their code
        try:
            view = labelled(self.load(kind, raw_id).view())
        except (DomainError, NodeError):
            raise
        except Exception as e:  # a stored history this version cannot fold: shown as stored
            return self._as_stored(parse_id(kind, raw_id), e)
        # what the registers say of it (they may trail the log by a second while serving)
        if view["kind"] in ("accident", "case"):
            flags = self.query("exceptions", Filters(record=view["id"]))
            view["flags"] = present("exceptions", flags)
        if view["kind"] == "accident":
            findings = self.query("accident-findings", Filters(accident=view["id"]))
            view["findings"] = present("accident-findings", findings)
        return view

    def _as_stored(self, aggregate_id: UUID, error: Exception) -> dict[str, Any]:
        """A record whose stored events this node cannot fold into a view (a type it does not
        know, from a newer version; values outside what its rules know): each event as stored,
        and why no view could be made, instead of a failure."""
        stored = self.log.app.recorder.select_events(aggregate_id)
        if not stored:
            raise NotFound(_("no record with id {id}", id=str(aggregate_id)))
        return {
            "id": str(aggregate_id),
            "version": stored[-1].originator_version,
            "unreadable": str(
                _("this node cannot make a view of the record: {error}", error=repr(error))
            )[:500],
            "events": [
                {
                    "version": s.originator_version,
                    "event": s.topic,
                    "stored": json.loads(s.state),
                }
                for s in stored
            ],
        }

    def status(self) -> dict[str, Any]:
        node = self.config.node
        tree = self.log.tree()
        return {
            "origin": node.origin,
            "tier": node.tier.value,
            "region": node.region,
            "parent": node.parent,
            "store": self.config.store.backend,
            "event_count": self.log.count(),
            "last_position": self.log.last_position(),
            "raw_readings": self.readings.count(),
            "signed_log": {
                "key_id": self.key.key_id,
                "envelopes": tree[0],
                "root": tree[1].hex(),
                "last_checkpoint": self.log.last_checkpoint_size(),
            },
            "clock": iso(self.clock()),
        }

    # -- key documents ------------------------------------------------------------------------
    def record_key_document(self, raw: bytes, user: str) -> dict[str, Any]:
        """Record a certification or revocation this node (or, at the national centre, the
        root) signed, in this node's log, after checking the signature."""
        try:
            doc = parse_document(raw)
        except FederationError as e:
            raise Invalid.field("document", said(e)) from None
        signer = doc.body["certifier"]
        if signer["origin"] == self.config.node.origin and signer["key"] == self.key.key_id:
            public = self.key.public
        elif signer["origin"] == ROOT and self.config.root_key_file.exists():
            public = load_public(self.config.root_key_file)
        else:
            raise Refused(
                _(
                    "a {kind} signed by {signer} is recorded in that signer's log "
                    "(root documents in the national centre's, with trust/root.pub installed)",
                    kind=doc.kind,
                    signer=signer["origin"],
                )
            )
        if not verify_document(doc, public):
            raise Invalid.field(
                "document",
                _("the {kind} does not verify with its signer's key", kind=doc.kind),
            )
        subject = doc.body["subject"]
        subject_key = subject["key"] if doc.kind == "revocation" else key_id(subject["key"])
        command = RecordKeyDocument.model_validate(
            {
                "kind": doc.kind,
                "subject_origin": subject["origin"],
                "subject_key": subject_key,
                "document": base64.b64encode(raw).decode(),
            }
        )
        ctx = self.context(user)
        register = self.log.load(register_id(self.config.node.origin))
        if register is None:
            register = KeyRegister.open(ctx)
        assert isinstance(register, KeyRegister)
        register.record(command, ctx)
        return self._save(register)

    # -- projections --------------------------------------------------------------------------
    def project(self) -> int:
        with self._projecting:  # one thread at a time on the projections connection
            return self._project()

    def _project(self) -> int:
        """Bring the projections up to the log; returns how many events were applied."""
        if self._projector is None:
            self._projector = Projector(self.config, self.log)
        return self._projector.catch_up()

    def query(self, name: str, filters: Filters) -> list[dict[str, Any]]:
        if name not in QUERIES:
            raise NotFound(
                _("no query {name!r}; known: {known}", name=name, known=", ".join(QUERIES))
            )
        with reading(self.config.projections_file) as db:
            return [] if db is None else run_query(db, name, filters)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any] | None:
        """Sign a checkpoint of this node's log if it grew since the last one (every second
        while serving, every 1,000 events, and at every stop)."""
        size, root = self.log.tree()
        if size == 0 or size <= self.log.last_checkpoint_size():
            return None
        if parse_envelope(self.log.envelopes(size - 1, 1)[0]).key != self.key.key_id:
            # history taken back (a restore, a recovery) under another key: this key may
            # vouch only for a tree it extended itself
            return None
        cp = sign_checkpoint(self.key, self.config.node.origin, size, root)
        self.log.add_checkpoint(size, root, cp.text)
        return {"size": size, "root": root.hex()}

    def close(self) -> None:
        """Sign the closing checkpoint and release the stores; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.checkpoint()
        finally:
            if self._projector is not None:
                self._projector.close()
            self.log.close()
            self.readings.close()


def _is_uuid(raw: str) -> bool:
    try:
        UUID(raw)
    except ValueError:
        return False
    return True
