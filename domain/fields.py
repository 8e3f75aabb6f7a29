"""Field types shared by commands, each validated with a message that says what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

from domain.codes import check_division, normalize_credit_code

CreditCode = Annotated[
    str,
    AfterValidator(normalize_credit_code),
    Field(description="Unified social credit code, 18 characters (GB 32100-2015)."),
]
DivisionCode = Annotated[
    str,
    AfterValidator(check_division),
    Field(description="Six-digit GB/T 2260 division code."),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Yuan = Annotated[
    int, Field(ge=0, le=10**13, description="Integer yuan (元); no fractions, no negatives.")
]


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _plausible(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the years 1970-2099 this system records")
    return moment


Moment = Annotated[
    AwareDatetime,
    AfterValidator(_plausible),
    Field(
        description="ISO 8601 date and time with its UTC offset, e.g. 2026-11-28T09:10:00+08:00."
    ),
]
