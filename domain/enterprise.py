"""Enterprises under supervision. Registered by the node of the county where they are located
(or of a city without counties, which does the county's part); the id derives from the unified
social credit code, so every node names them alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from domain.base import (
    Aggregate,
    Command,
    Context,
    Corrected,
    Correction,
    Event,
    Reason,
    UpdateCommand,
    VoidCommand,
    Voided,
    changes,
    iso,
)
from domain.codes import enterprise_id, tier_label
from domain.divisions import does_county_part
from domain.errors import Invalid, Refused
from domain.fields import CreditCode, DivisionCode, Name, Text
from domain.i18n import _
from domain.industries import Industry

# -- commands ---------------------------------------------------------------------------------


class RegisterEnterprise(Command):
    name: Name
    credit_code: CreditCode
    industry: Industry
    division: DivisionCode = Field(description="Where the enterprise is located (GB/T 2260).")
    address: Text | None = None


class CorrectEnterprise(Correction):
    name: Name | None = None
    industry: Industry | None = None
    division: DivisionCode | None = None
    address: Text | None = None
    reason: str = Reason


class CloseEnterprise(UpdateCommand):
    reason: str = Reason


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Registered(Event):
    NAME = "enterprise.registered/1"
    name: str
    credit_code: str
    industry: str
    division: str
    address: str | None

    def apply(self, agg: Enterprise) -> None:
        agg.name = self.name
        agg.credit_code = self.credit_code
        agg.industry = self.industry
        agg.division = self.division
        agg.address = self.address


@dataclass(frozen=True, kw_only=True)
class EnterpriseCorrected(Corrected):
    NAME = "enterprise.corrected/1"


@dataclass(frozen=True, kw_only=True)
class Closed(Event):
    NAME = "enterprise.closed/1"
    reason: str

    def apply(self, agg: Enterprise) -> None:
        agg.closed = {"at": iso(self.recorded_at), "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class EnterpriseVoided(Voided):
    NAME = "enterprise.voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Enterprise(Aggregate):
    KIND = "enterprise"
    DERIVED_ID = True

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.name = ""
        self.credit_code = ""
        self.industry = ""
        self.division = ""
        self.address: str | None = None
        self.closed: dict[str, Any] | None = None

    @staticmethod
    def id_for(command: RegisterEnterprise) -> Any:
        return enterprise_id(command.credit_code, command.division)

    @classmethod
    def register(cls, cmd: RegisterEnterprise, ctx: Context) -> Enterprise:
        _check_located_here(cmd.division, ctx)
        return cls.start(
            enterprise_id(cmd.credit_code, cmd.division),
            Registered,
            ctx,
            name=cmd.name,
            credit_code=cmd.credit_code,
            industry=cmd.industry.value,
            division=cmd.division,
            address=cmd.address,
        )

    def correct(self, cmd: CorrectEnterprise, ctx: Context) -> None:
        self._ensure_open()
        fields = ("name", "industry", "division", "address")
        changed = changes(self.state(), cmd.model_dump(include=set(fields), mode="json"))
        if not changed:
            raise Invalid.field(
                "*",
                _(
                    "the correction changes nothing: give at least one of {fields} with a "
                    "value different from the record",
                    fields=", ".join(fields),
                ),
            )
        if "division" in changed:
            _check_located_here(changed["division"], ctx)
        self._trigger(EnterpriseCorrected, ctx, changes=changed, reason=cmd.reason)

    def close(self, cmd: CloseEnterprise, ctx: Context) -> None:
        self._ensure_open()
        self._trigger(Closed, ctx, reason=cmd.reason)

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self.ensure_live()
        self._trigger(EnterpriseVoided, ctx, reason=cmd.reason)

    def _ensure_open(self) -> None:
        self.ensure_live()
        if self.closed is not None:
            raise Refused(
                _(
                    "enterprise {name} ({code}) was closed at {at}; a closed enterprise's "
                    "record cannot change",
                    name=self.name,
                    code=self.credit_code,
                    at=self.closed["at"],
                )
            )

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credit_code": self.credit_code,
            "industry": self.industry,
            "division": self.division,
            "address": self.address,
            "closed": self.closed,
        }


Registered.CREATES = Enterprise


def _check_located_here(division: str, ctx: Context) -> None:
    """One writing origin per enterprise: the node of the county where it is located, or of a
    city without counties (东莞 441900), which does the county's part (domain.divisions)."""
    if division != ctx.region or not does_county_part(division):
        raise Invalid.field(
            "division",
            _(
                "an enterprise is registered by the node of the county where it is located "
                "({division}), or of a city without counties such as 东莞 441900; this is the "
                "{tier} node of {region}",
                division=division,
                tier=tier_label(ctx.tier),
                region=ctx.region,
            ),
        )
