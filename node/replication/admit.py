"""What a verified envelope may do to the records (docs/architecture.md §6 "In"): a signature
proves who wrote an envelope, not that its writer may write that record. Before an imported
envelope is stored, its event must fit its type's schema, and it must be its origin's to write:
one writing origin per record, the origin that created it, and an id derived from a real-world
code only in the origin's own scope. Whatever fails is quarantined with its reason; nothing of
it reaches the records."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from domain.base import EVENT_TYPES, Event
from domain.codes import division_level, enterprise_id, in_subtree, scoped_to
from domain.i18n import _
from domain.investigation import Investigation
from domain.keys import register_id
from domain.receipt import receipt_id
from domain.sensors.site import site_id
from federation.envelope import Envelope
from federation.errors import VerificationError
from node.store import EventLog

COMMON = {"originator_id", "originator_version", "recorded_at", "actor"}
OWNERS = 50_000  # aggregates whose writing origin is kept in memory between takes


# The id each creating event of a record named by a code must carry, recorded by ``origin``
# certified for ``region`` (KeyError/ValueError/TypeError: the payload lacks the code).
DERIVED: dict[str, Callable[[Mapping[str, Any], str, str], UUID]] = {
    "enterprise.registered/1": lambda p, origin, region: enterprise_id(p["credit_code"], region),
    "sensor.site_registered/1": lambda p, origin, region: site_id(p["site_code"], region),
    "accident.receipt_recorded/1": lambda p, origin, region: receipt_id(origin, p["accident_id"]),
    "investigation.opened/1": lambda p, origin, region: Investigation.id_for(
        p["accident_id"], region
    ),
    "keys.register_opened/1": lambda p, origin, region: register_id(origin),
}


# events whose payload names the recording node's own tier and region
RECORDER_FIELDS = (
    "accident.receipt_recorded/1",
    "accident.finding_recorded/1",
    "investigation.opened/1",
)


class Admission:
    """The record-level checks of one importer (not thread-safe, like the importer)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._owners: dict[str, str] = {}  # aggregate id -> its writing origin

    def check(self, env: Envelope, region: str | None, run: dict[str, str]) -> None:
        """Raise VerificationError (``bad_payload``, ``foreign_aggregate``) unless ``env`` may be
        stored; ``region``: the area its origin is certified for (None for a backup centre's
        own history, judged by the origin alone); ``run``: the records created by the
        envelopes before it in the same run (to be stored with it), updated."""
        event_class = EVENT_TYPES.get(env.type)
        if event_class is not None:
            _check_schema(event_class, env)
        if region is not None:
            _check_area(env, region)
        creates = event_class is not None and event_class.CREATES is not None
        record = _uuid(env.aggregate)
        own = record is not None and scoped_to(record, env.origin)
        owner = run.get(env.aggregate)
        if owner is None and not (creates and env.version == 1 and (own or env.type in DERIVED)):
            # (a first creation at an id derived or scoped in its origin's own scope needs no
            # look: no one else can have created it; a version taken is the store's to refuse)
            owner = self._owner(env.aggregate)
        if owner is None and event_class is None:
            # a type of a newer version is kept on its origin's own records; one that would
            # create a record waits until this node knows the type (versions are rolled out
            # from the top down): it could otherwise take an id a known type derives
            raise VerificationError(
                "unknown_type",
                _(
                    "{origin}:{seq} {type} would create record {record}; this node does not know"
                    " the type: it waits for an upgrade",
                    origin=env.origin,
                    seq=env.seq,
                    type=env.type,
                    record=env.aggregate,
                ),
            )
        if owner is None and event_class is not None and not creates:
            raise VerificationError(
                "foreign_aggregate",
                _(
                    "{origin}:{seq} writes {type} on record {record}, which {origin} never"
                    " created (one writing origin per record)",
                    origin=env.origin,
                    seq=env.seq,
                    type=env.type,
                    record=env.aggregate,
                ),
            )
        if owner is not None and owner != env.origin:
            raise VerificationError(
                "foreign_aggregate",
                _(
                    "{origin}:{seq} writes {type} on record {record}, which {owner} created and"
                    " alone writes (one writing origin per record)",
                    origin=env.origin,
                    seq=env.seq,
                    type=env.type,
                    record=env.aggregate,
                    owner=owner,
                ),
            )
        legacy = record is not None and record.version == 4
        if owner is None and creates and env.type not in DERIVED and not (own or legacy):
            # every other record is named by an id scoped to its creator (domain.codes.record_id)
            # or, made before those, a random one (uuid4): one of these types at another origin's
            # id, or at a derived one, would take the id a record, a receipt, an enterprise... of
            # another node is to have
            raise VerificationError(
                "foreign_aggregate",
                _(
                    "{origin}:{seq} {type} creates record {record}, which is not an id of its own",
                    origin=env.origin,
                    seq=env.seq,
                    type=env.type,
                    record=env.aggregate,
                ),
            )
        if owner is None and env.type in DERIVED:
            try:
                expected = DERIVED[env.type](env.payload, env.origin, region or env.origin)
            except (KeyError, ValueError, TypeError):
                raise VerificationError(
                    "bad_payload",
                    _("{type} without the code its id derives from", type=env.type),
                ) from None
            if str(expected) != env.aggregate:
                raise VerificationError(
                    "foreign_aggregate",
                    _(
                        "{origin}:{seq} creates record {record}, which is not the id {type}"
                        " derives in its own scope ({expected})",
                        origin=env.origin,
                        seq=env.seq,
                        record=env.aggregate,
                        type=env.type,
                        expected=str(expected),
                    ),
                )
        run.setdefault(env.aggregate, env.origin)

    def stored(self, envs: list[Envelope]) -> None:
        """Envelopes now stored: the records they created are their origins'."""
        if len(self._owners) > OWNERS:
            self._owners.clear()
        for env in envs:
            self._owners.setdefault(env.aggregate, env.origin)

    def _owner(self, aggregate: str) -> str | None:
        """The origin that created the record (the node in its first event's actor)."""
        owner = self._owners.get(aggregate)
        if owner is not None:
            return owner
        try:
            stored = self.log.app.recorder.select_events(UUID(aggregate), lte=1, limit=1)
        except ValueError:
            return None
        if not stored:
            return None
        owner = str(json.loads(stored[0].state)["actor"]["node"])
        self._owners[aggregate] = owner
        return owner


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _check_area(env: Envelope, region: str) -> None:
    """What a payload says of where and by whom it was recorded must be its origin's: a
    ``division`` (also one a correction changes) inside the origin's certified area, and a
    ``region``/``tier`` of the recording node (a receipt, a finding, an investigation) its own."""
    payload = env.payload
    changes = payload.get("changes")
    divisions = [payload.get("division")]
    if isinstance(changes, dict):
        divisions.append(changes.get("division"))
    for division in divisions:
        if isinstance(division, str) and not in_subtree(region, division):
            raise VerificationError(
                "foreign_aggregate",
                _(
                    "{origin}:{seq} records {type} in division {division}, outside the area"
                    " {region} it is certified for",
                    origin=env.origin,
                    seq=env.seq,
                    type=env.type,
                    division=division,
                    region=region,
                ),
            )
    claimed_region, claimed_tier = payload.get("region"), payload.get("tier")
    if env.type in RECORDER_FIELDS and claimed_region not in (None, region):
        raise VerificationError(
            "foreign_aggregate",
            _(
                "{origin}:{seq} {type} names region {claimed!r}; its origin is certified for"
                " {region}",
                origin=env.origin,
                seq=env.seq,
                type=env.type,
                claimed=claimed_region,
                region=region,
            ),
        )
    if env.type in RECORDER_FIELDS and claimed_tier not in (None, division_level(region).value):
        raise VerificationError(
            "foreign_aggregate",
            _(
                "{origin}:{seq} {type} names tier {claimed!r}; its origin is the {tier} of"
                " {region}",
                origin=env.origin,
                seq=env.seq,
                type=env.type,
                claimed=claimed_tier,
                tier=division_level(region).value,
                region=region,
            ),
        )


def _check_schema(event_class: type[Event], env: Envelope) -> None:
    try:
        model = _MODELS.get(env.type)
        if model is None:
            model = _MODELS[env.type] = _payload_model(event_class)
        model.model_validate(env.payload)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['type']}"
            for err in e.errors()[:5]
        )
        raise VerificationError(
            "bad_payload",
            _(
                "{origin}:{seq} {type} does not fit its schema: {problems}",
                origin=env.origin,
                seq=env.seq,
                type=env.type,
                problems=problems,
            ),
        ) from None


_MODELS: dict[str, type[BaseModel]] = {}


def _payload_model(event_class: type[Event]) -> type[BaseModel]:
    """A strict model of an event type's own fields: exactly those, of exactly their types."""
    hints = typing.get_type_hints(event_class)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(event_class):
        if f.name in COMMON:
            continue
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default_factory())
        else:
            fields[f.name] = (hints[f.name], ...)
    config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)
    return create_model(f"{event_class.__name__}Payload", __config__=config, **fields)
