"""What every aggregate shares: events with stable wire names, the actor and clock of a
command, and folding events into state.

Events are frozen dataclasses whose fields are plain values (str, int, bool, None, lists and
dicts of them); times are integer milliseconds since the epoch, UTC. Each concrete event class
names itself with ``NAME = "kind.what/version"``, its stable wire name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from domain.calendar import CHINA as CHINA  # China Standard Time, where legal days are counted
from domain.calendar import WorkCalendar, china_day, end_of_day
from domain.errors import Invalid, Refused
from domain.i18n import N_, Text, _

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Every concrete event class by wire name, filled as the classes are defined.
EVENT_TYPES: dict[str, type[Event]] = {}

# What a person reads for an aggregate's KIND (the KIND itself stays in ids, URLs and codes).
KIND_LABELS = {
    "accident": N_("accident"),
    "case": N_("case"),
    "enterprise": N_("enterprise"),
    "finding": N_("finding"),
    "investigation": N_("investigation"),
    "keys": N_("keys"),
    "licence": N_("licence"),
    "receipt": N_("receipt"),
    "site": N_("site"),
}


def kind_label(kind: str) -> Text:
    """An aggregate's KIND as a person reads it, in their language."""
    return Text(KIND_LABELS.get(kind, kind), {})


def to_ms(moment: datetime) -> int:
    """Integer milliseconds since the epoch (UTC) of an aware datetime."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def iso(ms: int | None) -> str | None:
    """ISO 8601 text of a time in milliseconds, in China time as a person reads it
    (``2026-11-28T10:10:00+08:00``; milliseconds only when there are any)."""
    if ms is None:
        return None
    moment = from_ms(ms).astimezone(CHINA)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def last_day(end_ms: int | None) -> str | None:
    """The last day (ISO date, China time) of a period that ends at ``end_ms`` (exclusive: 24:00
    of that day is 00:00 of the next), as the law counts days and a person reads them:
    2026-12-29T00:00+08:00 ends the period on 2026-12-28."""
    if end_ms is None:
        return None
    return china_day(end_ms - 1).isoformat()


def period_end(start_ms: int, days: int) -> int:
    """The instant a period of ``days`` calendar days counted from ``start_ms`` ends, by the
    law's way of counting (民法典 Art. 201: the day it starts is not counted; the last day ends at
    24:00), in China Standard Time. Something is within the period while its time is before
    this. Periods in working days: ``Context.calendar.working_period_end``."""
    return end_of_day(china_day(start_ms) + timedelta(days=days))


def changes(current: Mapping[str, Any], proposed: Mapping[str, Any]) -> dict[str, Any]:
    """The proposed values (None: not given) that differ from the current ones."""
    return {k: v for k, v in proposed.items() if v is not None and v != current.get(k)}


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who recorded a command: a user, at a node (origin id)."""

    user: str
    node: str

    def as_dict(self) -> dict[str, str]:
        return {"user": self.user, "node": self.node}


@dataclasses.dataclass(frozen=True)
class Context:
    """Everything a command needs besides its input: who, where, and when (the node's clock),
    and the working days by which periods of the enforcement procedure count."""

    actor: Actor
    now_ms: int
    tier: str
    region: str
    new_id: Callable[[], UUID]  # ids of new records come from the application, not the domain
    # the node's (shipped schedule and node.toml [calendar]); the default knows no year, so a
    # working-day period counted without the node's calendar is refused, never guessed
    calendar: WorkCalendar = dataclasses.field(default_factory=WorkCalendar)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all domain events. ``originator_id``/``originator_version`` place the event in
    its aggregate's history; ``recorded_at`` is the recording node's clock."""

    NAME: ClassVar[str] = ""
    TOPIC: ClassVar[str] = ""  # read by the event store: the wire name, never a Python path
    CREATES: ClassVar[type[Aggregate] | None] = None  # set on the event that starts an aggregate

    originator_id: UUID
    originator_version: int
    recorded_at: int
    actor: dict[str, str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("NAME", "")
        if not name:
            return
        if name in EVENT_TYPES:
            raise TypeError(f"event name {name!r} is used twice")
        EVENT_TYPES[name] = cls
        cls.TOPIC = name

    @property
    def timestamp(self) -> datetime:
        return from_ms(self.recorded_at)

    def payload(self) -> dict[str, Any]:
        """The event's own fields, without its place in the log."""
        common = {"originator_id", "originator_version", "recorded_at", "actor"}
        return {k: v for k, v in vars(self).items() if k not in common}

    def apply(self, aggregate: Any) -> None:
        raise NotImplementedError


class Aggregate:
    """Base of event-sourced aggregates: state is the fold of the aggregate's events."""

    KIND: ClassVar[str]  # "enterprise", "accident": names the aggregate in errors and URLs
    HISTORY_LIMIT: ClassVar[int | None] = None  # keep only the latest entries in the view
    CACHED: ClassVar[bool] = False  # the application may keep it in memory between commands
    DERIVED_ID: ClassVar[bool] = False  # its id derives from a code: it may exist already

    def __init__(self, id: UUID) -> None:
        self.id = id
        self.version = 0
        self.created_at = 0
        self.modified_at = 0
        self.voided: dict[str, Any] | None = None
        self.origin = ""  # the node that created it: the only one that records on it
        self.history: list[dict[str, Any]] = []
        self.pending_events: list[Event] = []

    # -- recording -------------------------------------------------------------------------
    def _trigger(self, event_class: type[Event], ctx: Context, **payload: Any) -> None:
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            recorded_at=ctx.now_ms,
            actor=ctx.actor.as_dict(),
            **payload,
        )
        self._mutate(event)
        self.pending_events.append(event)

    def _mutate(self, event: Event) -> None:
        if event.CREATES is not None:
            self.voided = None  # registered again after a void (ids derived from codes)
        event.apply(self)
        self.version = event.originator_version
        if self.version == 1:
            self.created_at = event.recorded_at
            self.origin = event.actor["node"]
        self.modified_at = event.recorded_at
        self.history.append(
            {
                "version": event.originator_version,
                "event": event.NAME,
                "recorded_at": iso(event.recorded_at),
                "actor": event.actor,
            }
        )
        if self.HISTORY_LIMIT and len(self.history) > self.HISTORY_LIMIT:
            del self.history[0]

    def collect_events(self) -> list[Event]:
        """Hand over the events recorded since the last call (the event store's protocol)."""
        events, self.pending_events = self.pending_events, []
        return events

    @classmethod
    def start(
        cls, aggregate_id: UUID, event_class: type[Event], ctx: Context, **payload: Any
    ) -> Self:
        agg = cls(aggregate_id)
        agg._trigger(event_class, ctx, **payload)
        return agg

    @staticmethod
    def replay(events: Iterable[Event]) -> Aggregate | None:
        """Fold stored events (of one aggregate, in version order) into its current state."""
        agg: Aggregate | None = None
        for event in events:
            if agg is None:
                if event.CREATES is None:
                    raise ValueError(
                        _(
                            "history starts with {event}, not a creating event",
                            event=event.NAME,
                        )
                    )
                agg = event.CREATES(event.originator_id)
            agg._mutate(event)
        return agg

    # -- rules every aggregate shares --------------------------------------------------------
    def register_again(self, fresh: Aggregate) -> None:
        """Append the creating event of ``fresh`` (same id) to this voided record: an enterprise
        or a site registered in error and voided can be registered again under its code."""
        assert self.voided is not None and fresh.id == self.id
        (event,) = fresh.collect_events()
        again = dataclasses.replace(event, originator_version=self.version + 1)
        self._mutate(again)
        self.pending_events.append(again)

    def snapshot(self) -> dict[str, Any]:
        """The state as plain data, for a local snapshot (a cache of the log's fold)."""
        state = {k: v for k, v in vars(self).items() if k != "pending_events"}
        state["id"] = str(self.id)
        return state

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Aggregate:
        agg = cls.__new__(cls)
        agg.__dict__.update(state, id=UUID(state["id"]), pending_events=[])
        return agg

    def ensure_live(self) -> None:
        if self.voided is not None:
            raise Refused(
                _(
                    "{kind} {id} was voided at {at} ({reason}); nothing more can be recorded on it",
                    kind=kind_label(self.KIND),
                    id=str(self.id),
                    at=self.voided["at"],
                    reason=self.voided["reason"],
                )
            )

    def view(self) -> dict[str, Any]:
        """The aggregate as the API shows it."""
        state = self.state()
        clash = state.keys() & {
            "id",
            "kind",
            "version",
            "created_at",
            "modified_at",
            "voided",
            "history",
        }
        assert not clash, f"{self.KIND} state hides the record's own fields {clash}"
        return {
            "id": str(self.id),
            "kind": self.KIND,
            "version": self.version,
            "created_at": iso(self.created_at),
            "modified_at": iso(self.modified_at),
            "voided": self.voided,
            "origin": self.origin,
            **state,
            "history": self.history,
        }

    def state(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Corrected(Event):
    """Shared shape of the correction events of aggregates that keep their fields as
    attributes: the new values, and the reason."""

    changes: dict[str, Any]
    reason: str

    def apply(self, aggregate: Aggregate) -> None:
        for field, value in self.changes.items():
            setattr(aggregate, field, list(value) if isinstance(value, list) else value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Voided(Event):
    """Shared shape of the void events: the record was made in error."""

    reason: str

    def apply(self, aggregate: Aggregate) -> None:
        aggregate.voided = {"at": iso(self.recorded_at), "reason": self.reason, "by": self.actor}


# -- commands ---------------------------------------------------------------------------------
Reason = Field(min_length=2, max_length=2000, description="Why: kept in the log with the event.")


class Command(BaseModel):
    """Input of one command. Strict: no type coercion, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class UpdateCommand(Command):
    """A command on an existing aggregate."""

    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="Refuse with 409 unless the record is still at this version "
        "(optimistic concurrency).",
    )


class Revision(Command):
    """A command that replaces values of an existing record (a supplement's new totals, a
    correction): it must name the version it revises, so that of two clerks revising the same
    record at once one wins and the other is told to reload (409), never silently overwritten."""

    expected_version: int = Field(
        ge=1, description="The version of the record you read (from its `version`); required."
    )


class Correction(Revision):
    """Corrects a record made wrongly: the fields to correct, the reason, and the version."""

    reason: str = Reason

    @model_validator(mode="after")
    def _names_a_field(self) -> Self:
        if not self.model_dump(exclude_none=True, exclude={"reason", "expected_version"}):
            raise ValueError(_("the correction names no field to correct"))
        return self


class VoidCommand(UpdateCommand):
    reason: str = Reason


def not_in_future(ctx: Context, field: str, moment: AwareDatetime, slack_ms: int = 300_000) -> int:
    """A reported time in ms, refused if it is later than the node's clock (5 minutes' slack)."""
    ms = to_ms(moment)
    if ms > ctx.now_ms + slack_ms:
        raise Invalid.field(
            field,
            _(
                "{time} is in the future (the node's clock says {now})",
                time=iso(ms),
                now=iso(ctx.now_ms),
            ),
        )
    return ms
