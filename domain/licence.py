"""安全生产许可证 (《安全生产许可证条例》, 国务院令第397号) as the issuing authority's node
records them: application, acceptance, issue or refusal, renewal and extension, 暂扣, 吊销,
注销 and expiry, with corrections and voids.

A licence belongs to the node of the issuing authority (Arts. 3–5: the province, or the
national authority for centrally managed enterprises); county and city nodes record nothing on
it. Calendar arithmetic (3 years of validity, renewal due 3 months before expiry) is done in
China time (UTC+8), where the licence's dates are read; times are stored as UTC ms. The 45 days
of the decision (Art. 7) count from receipt of the application, as the law counts days.
"""

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
    last_day,
    period_end,
    to_ms,
)
from domain.codes import Tier, enterprise_id, in_subtree, tier_label
from domain.errors import Invalid, Refused
from domain.fields import CreditCode, Moment, Name, PlaceCode, Text
from domain.i18n import N_, _
from domain.i18n import Text as Message
from domain.licence_rules import (
    INDUSTRY_LABELS,
    ISSUING_AUTHORITY,
    LicenceIndustry,
    LicenceNumber,
    LicenceStatus,
    add_months,
    add_years,
    parse_licence_number,
)

VALIDITY_YEARS = 3  # Art. 9
EXTENSION_YEARS = 3  # Art. 9
RENEWAL_MONTHS = 3  # Art. 9: 应当于期满前3个月 apply for renewal (later: late, not refused)
DECISION_DAYS = 45  # Art. 7: 自收到申请之日起45日内
ISSUING_TIERS = (Tier.PROVINCE, Tier.NATIONAL)
S = LicenceStatus

# What cannot be done to a licence in the wrong status, by action ({what}: the licence)
CANNOT = {
    "accept": N_("cannot accept {what}"),
    "issue": N_("cannot issue {what}"),
    "refuse": N_("cannot refuse {what}"),
    "apply for renewal of": N_("cannot apply for renewal of {what}"),
    "extend": N_("cannot extend {what}"),
    "suspend": N_("cannot suspend {what}"),
    "reinstate": N_("cannot reinstate {what}"),
    "revoke": N_("cannot revoke {what}"),
    "cancel": N_("cannot cancel {what}"),
    "record the expiry of": N_("cannot record the expiry of {what}"),
}


# -- commands ---------------------------------------------------------------------------------


class ApplyLicence(Command):
    """申请: an enterprise applies for a licence."""

    enterprise_credit_code: CreditCode
    enterprise_name: Name
    industry: LicenceIndustry
    division: PlaceCode = Field(description="Where the enterprise (or mine) is (GB/T 2260).")
    scope: Text = Field(description="许可范围: what the licence is to cover.")


class AcceptLicence(UpdateCommand):
    """受理: the application is complete; the decision stays due 45 days from receipt (Art. 7)."""


class IssueLicence(UpdateCommand):
    """颁发: the licence is issued, valid for 3 years from valid_from (Art. 9)."""

    number: LicenceNumber
    valid_from: Moment = Field(description="Start of validity (ISO 8601 with offset).")


class RefuseLicence(UpdateCommand):
    """不予颁发, with the written reasons (Art. 7)."""

    reasons: list[Text] = Field(min_length=1, max_length=50)


class ApplyRenewal(UpdateCommand):
    """延期申请 (Art. 9): taken at any time while the licence is valid; one later than 3 months
    before expiry is recorded as late (the issuer decides on it); after expiry the enterprise
    applies anew (重新申请)."""


class ExtendLicence(UpdateCommand):
    """延期 by 3 years without review: no fatal accident during the validity (Art. 9)."""

    note: Text | None = None


class SuspendLicence(UpdateCommand):
    """暂扣 (Art. 14)."""

    reason: str = Reason


class ReinstateLicence(UpdateCommand):
    """A suspended licence is returned (e.g. after 整改)."""

    reason: str = Reason


class RevokeLicence(UpdateCommand):
    """吊销 (Arts. 14, 21)."""

    reason: str = Reason


class CancelLicence(UpdateCommand):
    """注销."""

    reason: str = Reason


class ExpireLicence(UpdateCommand):
    """Record that the validity ended without extension."""


class CorrectLicence(Correction):
    """A record made wrongly is corrected, with the reason (names the version it revises)."""

    enterprise_credit_code: CreditCode | None = None
    enterprise_name: Name | None = None
    industry: LicenceIndustry | None = None
    division: PlaceCode | None = None
    scope: Text | None = None
    number: LicenceNumber | None = None
    valid_from: Moment | None = None


CORRECTABLE = tuple(
    f for f in CorrectLicence.model_fields if f not in ("reason", "expected_version")
)


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Applied(Event):
    NAME = "licence.applied/1"
    enterprise_id: str
    enterprise_credit_code: str
    enterprise_name: str
    industry: str
    division: str
    scope: str

    def apply(self, agg: Licence) -> None:
        for field, value in self.payload().items():
            setattr(agg, field, value)
        agg.status = S.APPLIED
        agg.applied_at = self.recorded_at


@dataclass(frozen=True, kw_only=True)
class Accepted(Event):
    NAME = "licence.accepted/1"

    def apply(self, agg: Licence) -> None:
        agg.status = S.ACCEPTED
        agg.accepted_at = self.recorded_at


@dataclass(frozen=True, kw_only=True)
class Issued(Event):
    NAME = "licence.issued/1"
    number: str
    number_parsed: dict[str, Any] | None
    valid_from: int
    valid_until: int

    def apply(self, agg: Licence) -> None:
        agg.status = S.ISSUED
        agg.decided_at = self.recorded_at
        agg.number = self.number
        agg.number_parsed = self.number_parsed
        agg.valid_from = self.valid_from
        agg.valid_until = self.valid_until


@dataclass(frozen=True, kw_only=True)
class RefusedToIssue(Event):
    NAME = "licence.refused/1"
    reasons: list[str]

    def apply(self, agg: Licence) -> None:
        agg.status = S.REFUSED
        agg.decided_at = self.recorded_at
        agg.refusal_reasons = list(self.reasons)


@dataclass(frozen=True, kw_only=True)
class RenewalApplied(Event):
    NAME = "licence.renewal_applied/1"
    # later than 3 months before expiry (Art. 9); None in applications recorded before the flag
    # was kept (all of them within those 3 months, then the only time renewal was taken)
    late: bool | None = None

    def apply(self, agg: Licence) -> None:
        agg.renewal_applied_at = self.recorded_at
        agg.renewal_late = self.recorded_at > agg.renewal_due() if self.late is None else self.late


@dataclass(frozen=True, kw_only=True)
class Extended(Event):
    NAME = "licence.extended/1"
    valid_from: int
    valid_until: int
    note: str | None

    def apply(self, agg: Licence) -> None:
        agg.extensions.append(
            {
                "at": iso(self.recorded_at),
                "renewal_applied_at": iso(agg.renewal_applied_at),
                "renewal_late": agg.renewal_late,
                "previous_until": iso(agg.valid_until),
                "valid_until": iso(self.valid_until),
                "note": self.note,
            }
        )
        agg.valid_from = self.valid_from
        agg.valid_until = self.valid_until
        agg.renewal_applied_at = None
        agg.renewal_late = None


@dataclass(frozen=True, kw_only=True)
class Suspended(Event):
    NAME = "licence.suspended/1"
    reason: str

    def apply(self, agg: Licence) -> None:
        agg.status = S.SUSPENDED
        agg.suspension = {"at": iso(self.recorded_at), "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class Reinstated(Event):
    NAME = "licence.reinstated/1"
    reason: str

    def apply(self, agg: Licence) -> None:
        agg.status = S.ISSUED
        agg.suspensions.append(
            {
                **(agg.suspension or {}),
                "reinstated_at": iso(self.recorded_at),
                "reinstate_reason": self.reason,
            }
        )
        agg.suspension = None


@dataclass(frozen=True, kw_only=True)
class _Ended(Event):
    STATUS = S.REVOKED
    reason: str

    def apply(self, agg: Licence) -> None:
        agg.status = self.STATUS
        agg.ended = {"at": iso(self.recorded_at), "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class Revoked(_Ended):
    NAME = "licence.revoked/1"
    STATUS = S.REVOKED


@dataclass(frozen=True, kw_only=True)
class Cancelled(_Ended):
    NAME = "licence.cancelled/1"
    STATUS = S.CANCELLED


@dataclass(frozen=True, kw_only=True)
class Expired(Event):
    NAME = "licence.expired/1"

    def apply(self, agg: Licence) -> None:
        agg.status = S.EXPIRED
        agg.ended = {"at": iso(self.recorded_at), "reason": None}


@dataclass(frozen=True, kw_only=True)
class LicenceCorrected(Corrected):
    NAME = "licence.corrected/1"


@dataclass(frozen=True, kw_only=True)
class LicenceVoided(Voided):
    NAME = "licence.voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Licence(Aggregate):
    KIND = "licence"

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.status = S.APPLIED
        self.enterprise_id = ""
        self.enterprise_credit_code = ""
        self.enterprise_name = ""
        self.industry = ""
        self.division = ""
        self.scope = ""
        self.applied_at = 0
        self.accepted_at: int | None = None
        self.decided_at: int | None = None
        self.refusal_reasons: list[str] = []
        self.number: str | None = None
        self.number_parsed: dict[str, Any] | None = None
        self.valid_from: int | None = None
        self.valid_until: int | None = None
        self.renewal_applied_at: int | None = None
        self.renewal_late: bool | None = None
        self.extensions: list[dict[str, Any]] = []
        self.suspension: dict[str, Any] | None = None
        self.suspensions: list[dict[str, Any]] = []
        self.ended: dict[str, Any] | None = None

    # -- commands ---------------------------------------------------------------------------
    @classmethod
    def apply_for(cls, cmd: ApplyLicence, ctx: Context) -> Licence:
        _check_issuer(ctx)
        _check_area(cmd.division, ctx)
        return cls.start(
            ctx.new_id(),
            Applied,
            ctx,
            enterprise_id=str(enterprise_id(cmd.enterprise_credit_code, cmd.division)),
            enterprise_credit_code=cmd.enterprise_credit_code,
            enterprise_name=cmd.enterprise_name,
            industry=cmd.industry,
            division=cmd.division,
            scope=cmd.scope,
        )

    def accept(self, cmd: AcceptLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require("accept", (S.APPLIED,), _("only a new application is accepted (受理)"))
        self._trigger(Accepted, ctx)

    def issue(self, cmd: IssueLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "issue", (S.ACCEPTED,), _("a licence is issued on an accepted (受理) application")
        )
        valid_from = to_ms(cmd.valid_from)
        self._trigger(
            Issued,
            ctx,
            number=cmd.number,
            number_parsed=parse_licence_number(cmd.number),
            valid_from=valid_from,
            valid_until=add_years(valid_from, VALIDITY_YEARS),
        )

    def refuse(self, cmd: RefuseLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "refuse", (S.ACCEPTED,), _("an accepted (受理) application is issued or refused")
        )
        self._trigger(RefusedToIssue, ctx, reasons=list(cmd.reasons))

    def apply_renewal(self, cmd: ApplyRenewal, ctx: Context) -> None:
        self._guard(ctx)
        self._require("apply for renewal of", (S.ISSUED,), _("only a valid licence is renewed"))
        if self.renewal_applied_at is not None:
            raise Refused(
                _(
                    "a renewal of licence {number} was already applied for at {at}; extend it "
                    "or wait for the decision",
                    number=self.number,
                    at=iso(self.renewal_applied_at),
                )
            )
        until = self._until()
        if ctx.now_ms > until:
            raise Refused(
                _(
                    "licence {number} expired at {until}; it is now {now}: a renewal is applied "
                    "for while the licence is valid (《安全生产许可证条例》 Art. 9); the "
                    "enterprise must apply anew (重新申请, licence.apply)",
                    number=self.number,
                    until=iso(until),
                    now=iso(ctx.now_ms),
                )
            )
        self._trigger(RenewalApplied, ctx, late=ctx.now_ms > self.renewal_due())

    def extend(
        self, cmd: ExtendLicence, ctx: Context, fatal_accidents: list[dict[str, Any]]
    ) -> None:
        """Extend by 3 years without review. ``fatal_accidents``: the accidents recorded at this
        enterprise, each {"id", "occurred_at" (ms), "deaths", "missing"}; any with deaths or
        missing persons during the validity period bars the extension (Art. 9)."""
        self._guard(ctx)
        self._require("extend", (S.ISSUED,), _("only a valid licence is extended"))
        if self.renewal_applied_at is None:
            raise Refused(
                _(
                    "licence {number} cannot be extended: no renewal application was recorded "
                    "(due by {due}, 3 months before expiry at {until}, Art. 9)",
                    number=self.number,
                    due=iso(self.renewal_due()),
                    until=iso(self._until()),
                )
            )
        start, until = self._from(), self._until()
        barring = [
            a
            for a in fatal_accidents
            if not a.get("voided")
            and a["deaths"] + a["missing"] > 0
            and start <= a["occurred_at"] <= until
        ]
        if barring:
            named = [
                _(
                    "accident {id} at {at} ({deaths} dead, {missing} missing)",
                    id=a["id"],
                    at=iso(a["occurred_at"]),
                    deaths=a["deaths"],
                    missing=a["missing"],
                )
                for a in barring
            ]
            raise Refused(
                _(
                    "licence {number} cannot be extended without review: the enterprise had a "
                    "fatal accident during the validity period {start} – {until}: {accidents} "
                    "(《安全生产许可证条例》 Art. 9); the renewal needs a full review",
                    number=self.number,
                    start=iso(start),
                    until=iso(until),
                    accidents=named,
                )
            )
        self._trigger(
            Extended,
            ctx,
            valid_from=until,
            valid_until=add_years(until, EXTENSION_YEARS),
            note=cmd.note,
        )

    def suspend(self, cmd: SuspendLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require("suspend", (S.ISSUED,), _("only a valid licence is suspended (暂扣)"))
        self._refuse_past_expiry("suspend", ctx)
        self._trigger(Suspended, ctx, reason=cmd.reason)

    def reinstate(self, cmd: ReinstateLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "reinstate", (S.SUSPENDED,), _("only a suspended (暂扣) licence is reinstated")
        )
        self._refuse_past_expiry("reinstate", ctx)
        self._trigger(Reinstated, ctx, reason=cmd.reason)

    def revoke(self, cmd: RevokeLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "revoke", (S.ISSUED, S.SUSPENDED), _("only an issued licence is revoked (吊销)")
        )
        self._trigger(Revoked, ctx, reason=cmd.reason)

    def cancel(self, cmd: CancelLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "cancel", (S.ISSUED, S.SUSPENDED), _("only an issued licence is cancelled (注销)")
        )
        self._trigger(Cancelled, ctx, reason=cmd.reason)

    def expire(self, cmd: ExpireLicence, ctx: Context) -> None:
        self._guard(ctx)
        self._require(
            "record the expiry of", (S.ISSUED, S.SUSPENDED), _("only an issued one expires")
        )
        if ctx.now_ms <= self._until():
            raise Refused(
                _(
                    "licence {number} is valid until {until}; it is now {now}: its expiry can "
                    "be recorded only after that",
                    number=self.number,
                    until=iso(self._until()),
                    now=iso(ctx.now_ms),
                )
            )
        self._trigger(Expired, ctx)

    def correct(self, cmd: CorrectLicence, ctx: Context) -> None:
        self._guard(ctx)
        proposed: dict[str, Any] = {f: getattr(cmd, f) for f in CORRECTABLE}
        for field in ("number", "valid_from"):
            if proposed[field] is not None and self.number is None:
                raise Invalid.field(
                    field,
                    _(
                        "licence {id} is {status} and has no {field} to correct yet",
                        id=str(self.id),
                        status=self.status.value,
                        field=field,
                    ),
                )
        if proposed["valid_from"] is not None:
            proposed["valid_from"] = to_ms(proposed["valid_from"])
        found = changes({f: getattr(self, f) for f in CORRECTABLE}, proposed)
        if not found:
            raise Invalid.field(
                "*", _("the correction changes nothing: every value given equals the record")
            )
        if "division" in found:
            _check_area(found["division"], ctx)
        if "enterprise_credit_code" in found or "division" in found:
            code = found.get("enterprise_credit_code", self.enterprise_credit_code)
            division = found.get("division", self.division)
            found["enterprise_id"] = str(enterprise_id(code, division))
        if "number" in found:
            found["number_parsed"] = parse_licence_number(found["number"])
        if "valid_from" in found:
            if self.extensions:
                raise Refused(
                    _(
                        "the licence has been extended: its validity now runs from the "
                        "extension, so the issue date can no longer be corrected"
                    )
                )
            found["valid_until"] = add_years(found["valid_from"], VALIDITY_YEARS)
        self._trigger(LicenceCorrected, ctx, changes=found, reason=cmd.reason)

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self._guard(ctx)
        self._trigger(LicenceVoided, ctx, reason=cmd.reason)

    # -- rules ------------------------------------------------------------------------------
    def _guard(self, ctx: Context) -> None:
        self.ensure_live()
        _check_issuer(ctx)

    def _require(self, action: str, allowed: tuple[LicenceStatus, ...], rule: Message) -> None:
        """Refused unless the status is one of ``allowed``; ``action``: a key of CANNOT."""
        if self.status in allowed:
            return
        what = (
            _("licence {number}", number=self.number)
            if self.number
            else _("licence application {id}", id=str(self.id))
        )
        raise Refused(
            _(
                "{cannot}: it is {status} ({label}); {rule} (needs: {needs})",
                cannot=Message(CANNOT[action], {"what": what}),
                status=self.status.value,
                label=self.status.label,
                rule=rule,
                needs=" or ".join(s.value for s in allowed),
            )
        )

    def _refuse_past_expiry(self, action: str, ctx: Context) -> None:
        if ctx.now_ms > self._until():
            raise Refused(
                _(
                    "{cannot}: it expired at {until} (it is now {now}); record its expiry instead",
                    cannot=Message(
                        CANNOT[action], {"what": _("licence {number}", number=self.number)}
                    ),
                    until=iso(self._until()),
                    now=iso(ctx.now_ms),
                )
            )

    def _from(self) -> int:
        assert self.valid_from is not None
        return self.valid_from

    def _until(self) -> int:
        assert self.valid_until is not None
        return self.valid_until

    def renewal_due(self) -> int:
        """Art. 9: 应当于期满前3个月 — the renewal is applied for by 3 months before expiry (the
        same moment, China time); later it is still taken, and recorded as late."""
        return add_months(self._until(), -RENEWAL_MONTHS)

    def decision_due(self) -> int:
        """Art. 7: 自收到申请之日起45日内 — counted from receipt (the application's record),
        not from acceptance; the decision is in time while it is recorded before this."""
        return period_end(self.applied_at, DECISION_DAYS)

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        due = self.decision_due()
        return {
            "status": self.status.value,
            "status_label": self.status.label,
            "enterprise_id": self.enterprise_id,
            "enterprise_credit_code": self.enterprise_credit_code,
            "enterprise_name": self.enterprise_name,
            "industry": self.industry,
            "industry_label": INDUSTRY_LABELS.get(self.industry),
            "issuing_authority": ISSUING_AUTHORITY.get(self.industry),
            "division": self.division,
            "scope": self.scope,
            "applied_at": iso(self.applied_at),
            "accepted_at": iso(self.accepted_at),
            "decision_due": iso(due),
            "decision_last_day": last_day(due),
            "decided_at": iso(self.decided_at),
            "decision_late": None if self.decided_at is None else self.decided_at >= due,
            "refusal_reasons": self.refusal_reasons,
            "number": self.number,
            "number_parsed": self.number_parsed,
            "valid_from": iso(self.valid_from),
            "valid_until": iso(self.valid_until),
            "valid_until_last_day": last_day(self.valid_until),
            "renewal_due": None if self.valid_until is None else iso(self.renewal_due()),
            "renewal_last_day": None if self.valid_until is None else last_day(self.renewal_due()),
            "renewal_applied_at": iso(self.renewal_applied_at),
            "renewal_late": self.renewal_late,
            "extensions": self.extensions,
            "suspension": self.suspension,
            "past_suspensions": self.suspensions,
            "ended": self.ended,
        }


Applied.CREATES = Licence


def _check_issuer(ctx: Context) -> None:
    if ctx.tier not in ISSUING_TIERS:
        raise Refused(
            _(
                "a licence is recorded only by the issuing authority's node: "
                "《安全生产许可证条例》 Arts. 3–5 give 安全生产许可证 to the provincial "
                "authority (the national one for centrally managed enterprises), and this is a "
                "{tier} node; a {tier} bureau records its findings in its own enforcement case",
                tier=tier_label(ctx.tier),
            )
        )


def _check_area(division: str, ctx: Context) -> None:
    if not in_subtree(ctx.region, division):
        raise Invalid.field(
            "division",
            _(
                "{division} is outside this node's area ({region}): a licence is issued by the "
                "authority of the province where the enterprise is",
                division=division,
                region=ctx.region,
            ),
        )
