"""The node as a library: record any command by kind, read records back, report status.
Synchronous; the HTTP server calls it from its writer thread, the CLI calls it directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from domain.base import Actor, Aggregate, Context, iso
from domain.commands import BY_KIND, CommandSpec
from domain.errors import FieldError, Invalid
from node.config import Config
from node.errors import Conflict, NotFound
from node.store import EventLog


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_command(spec: CommandSpec, body: bytes | str) -> Any:
    """Validate a JSON body against the command's model; Invalid names every bad field."""
    try:
        return spec.model.model_validate_json(body)
    except ValidationError as e:
        raise Invalid([_field_error(err) for err in e.errors()]) from None


def _field_error(err: Any) -> FieldError:
    loc = ".".join(str(p) for p in err["loc"]) or "*"
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field (see the command's schema in /api/v1/openapi.json)"
    elif err["type"] == "json_invalid":
        message = f"the body is not valid JSON: {err['ctx']['error']}" if "ctx" in err else message
    elif err["type"] == "model_type":
        message = "the body must be a JSON object"
    return FieldError(loc, message)


def parse_id(kind: str, raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"no {kind} with id {raw!r}: ids are UUIDs") from None


class Node:
    def __init__(self, config: Config, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        self.log = EventLog(config)

    def context(self, user: str) -> Context:
        node = self.config.node
        return Context(Actor(user, node.origin), self.clock(), node.tier.value, node.region, uuid4)

    def execute(
        self, kind: str, body: bytes | str, *, user: str, target: str | None = None
    ) -> dict[str, Any]:
        """Record one command; on Invalid, Refused, NotFound or Conflict nothing is recorded."""
        spec = BY_KIND.get(kind)
        if spec is None:
            raise NotFound(f"no command kind {kind!r}; known kinds: {', '.join(BY_KIND)}")
        command = parse_command(spec, body)
        ctx = self.context(user)
        if spec.create is not None:
            agg = spec.create(command, ctx)
            existing = self.log.load(agg.id)
            if existing is not None:
                if existing.voided is None:
                    raise Conflict(
                        f"{agg.KIND} {agg.id} already exists (version {existing.version})"
                    )
                existing.register_again(agg)
                agg = existing
        else:
            assert spec.update is not None
            if target is None:
                raise Invalid.field(
                    "id", f"{kind} acts on an existing {spec.aggregate.KIND}: give its id"
                )
            agg = self.load(spec.aggregate.KIND, target)
            expected = getattr(command, "expected_version", None)
            if expected is not None and expected != agg.version:
                raise Conflict(
                    f"{agg.KIND} {agg.id} is at version {agg.version}, not {expected}: "
                    "it changed since you read it; reload and retry"
                )
            spec.update(agg, command, ctx)
        position = self.log.append(agg)
        return {
            "id": str(agg.id),
            "kind": agg.KIND,
            "version": agg.version,
            "position": position,
            "record": agg.view(),
        }

    def load(self, kind: str | None, raw_id: str) -> Aggregate:
        what = kind or "record"
        agg = self.log.load(parse_id(what, raw_id))
        if agg is None or (kind is not None and kind != agg.KIND):
            raise NotFound(f"no {what} with id {raw_id}")
        return agg

    def show(self, raw_id: str, kind: str | None = None) -> dict[str, Any]:
        return self.load(kind, raw_id).view()

    def status(self) -> dict[str, Any]:
        node = self.config.node
        return {
            "origin": node.origin,
            "tier": node.tier.value,
            "region": node.region,
            "parent": node.parent,
            "store": self.config.store.backend,
            "event_count": self.log.count(),
            "last_position": self.log.last_position(),
            "clock": iso(self.clock()),
        }

    def close(self) -> None:
        self.log.close()
