"""Field types shared by commands, each validated with a message that says what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

from domain import divisions
from domain.codes import check_division, division_level, normalize_credit_code, tier_label
from domain.i18n import _

CreditCode = Annotated[
    str,
    AfterValidator(normalize_credit_code),
    Field(description="Unified social credit code, 18 characters (GB 32100-2015)."),
]


def _division(code: str) -> str:
    """A division of the 民政部 table, or one the node declared (node.toml [divisions] extra)."""
    return check_division(code)


def _place(code: str) -> str:
    """Where something is: a division that holds places itself, a county-level division or a
    city without counties (东莞 441900); a province or a city with counties is an area."""
    check_division(code)
    if not divisions.does_county_part(code):
        raise ValueError(
            _(
                "{code} {name} is a {level}-level division with county-level divisions in it: "
                "give the county-level division where it is (or the city itself where the city "
                "has none, such as 东莞 441900)",
                code=code,
                name=divisions.name(code),
                level=tier_label(division_level(code)),
            )
        )
    return code


DivisionCode = Annotated[
    str,
    AfterValidator(_division),
    Field(
        description="Six-digit GB/T 2260 division code, as the 民政部 table lists it (or a newer "
        "one the node lists in node.toml [divisions] extra)."
    ),
]
PlaceCode = Annotated[
    str,
    AfterValidator(_place),
    Field(
        description="Six-digit GB/T 2260 code of the county-level division where it is (or of a "
        "city without counties, such as 441900), as the 民政部 table lists it or node.toml "
        "[divisions] extra adds it."
    ),
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
        raise ValueError(
            _(
                "{moment} is outside the years 1970-2099 this system records",
                moment=moment.isoformat(),
            )
        )
    return moment


Moment = Annotated[
    AwareDatetime,
    AfterValidator(_plausible),
    Field(
        description="ISO 8601 date and time with its UTC offset, e.g. 2026-11-28T09:10:00+08:00."
    ),
]
