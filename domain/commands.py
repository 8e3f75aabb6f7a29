"""Every command a bureau can record, by stable kind name: one table that the HTTP API, its
OpenAPI document and ``anjian record`` are all built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.accident import (
    Accident,
    CorrectAccident,
    ReportAccident,
    ReportNearMiss,
    SupplementAccident,
)
from domain.base import Aggregate, Command, Context, VoidCommand
from domain.enterprise import CloseEnterprise, CorrectEnterprise, Enterprise, RegisterEnterprise


@dataclass(frozen=True)
class CommandSpec:
    kind: str  # stable name, e.g. "accident.report"
    summary: str
    model: type[Command]
    aggregate: type[Aggregate]
    path: str  # under /api/v1; "{id}" when the command acts on an existing record
    create: Callable[[Any, Context], Aggregate] | None = None
    update: Callable[[Any, Any, Context], None] | None = None

    @property
    def creates(self) -> bool:
        return self.create is not None


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "enterprise.register",
        "Register an enterprise located in this node's area.",
        RegisterEnterprise,
        Enterprise,
        "/enterprises",
        create=Enterprise.register,
    ),
    CommandSpec(
        "enterprise.correct",
        "Correct an enterprise's details, with the reason.",
        CorrectEnterprise,
        Enterprise,
        "/enterprises/{id}/corrections",
        update=Enterprise.correct,
    ),
    CommandSpec(
        "enterprise.close",
        "Record that an enterprise has closed.",
        CloseEnterprise,
        Enterprise,
        "/enterprises/{id}/closure",
        update=Enterprise.close,
    ),
    CommandSpec(
        "enterprise.void",
        "Void an enterprise registered in error, with the reason.",
        VoidCommand,
        Enterprise,
        "/enterprises/{id}/void",
        update=Enterprise.void,
    ),
    CommandSpec(
        "accident.report",
        "Report an accident (事故快报); the grade is derived by 493号令.",
        ReportAccident,
        Accident,
        "/accidents",
        create=Accident.report,
    ),
    CommandSpec(
        "accident.report-near-miss",
        "Report a 较大涉险 near miss.",
        ReportNearMiss,
        Accident,
        "/near-misses",
        create=Accident.report_near_miss,
    ),
    CommandSpec(
        "accident.supplement",
        "补报: new totals after the report; the grade is re-derived.",
        SupplementAccident,
        Accident,
        "/accidents/{id}/supplements",
        update=Accident.supplement,
    ),
    CommandSpec(
        "accident.correct",
        "Correct an accident record made wrongly, with the reason.",
        CorrectAccident,
        Accident,
        "/accidents/{id}/corrections",
        update=Accident.correct,
    ),
    CommandSpec(
        "accident.void",
        "Void an accident record made in error, with the reason.",
        VoidCommand,
        Accident,
        "/accidents/{id}/void",
        update=Accident.void,
    ),
)

BY_KIND = {spec.kind: spec for spec in SPECS}
AGGREGATES: dict[str, type[Aggregate]] = {spec.aggregate.KIND: spec.aggregate for spec in SPECS}
