"""The divisions of GB/T 2260 as the 民政部 publishes them (the table ``divisions.tsv`` shipped
with this package, with its source and date), and the shape of the hierarchy the table gives:
which bureaus a place has above it (docs/domain.md §7).

The hierarchy has three tiers below the national centre (province ``PP0000``, city ``PPCC00``,
county ``PPCCXX``), but not everywhere:

- a prefecture-level city with no county-level divisions under it (东莞 441900, 中山 442000,
  儋州 460400, 嘉峪关 620200) has no county bureau below it: the city does the county's part
  (registers enterprises, receives unit reports, investigates 一般 accidents);
- a county-level division whose ``PPCC00`` is no city (the 省直辖县级行政区划 济源 419001,
  仙桃 429004, ..., 4690xx, 6590xx; the districts and counties of the municipalities 北京, 天津,
  上海, 重庆) has no city above it: its province is next.

Both follow from which codes the table lists, never from a list in code. Codes newer than the
table are declared by the node at start (``declare``, from node.toml ``[divisions] extra``) and
count as listed from then on, in this process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from domain.i18n import _

NATIONAL = "000000"  # the national centre's region: not a division of GB/T 2260
TABLE_FILE = "divisions.tsv"

_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Table:
    """The divisions known: the shipped table and the codes declared on top of it."""

    names: Mapping[str, str]  # code -> name
    date: str  # the shipped table's date (YYYY-MM-DD)
    source: str  # where the shipped table comes from
    with_counties: frozenset[str]  # 4-digit prefixes of the cities with county-level divisions

    @classmethod
    def of(cls, names: Mapping[str, str], date: str, source: str) -> Table:
        prefixes = frozenset(c[:4] for c in names if _level(c) == "county")
        return cls(dict(names), date, source, prefixes)


@cache
def shipped() -> Table:
    """The table shipped with this package (read once)."""
    text = resources.files("domain").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    names: dict[str, str] = {}
    about: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() in ("date", "source"):
                about[key.strip()] = value.strip()
            continue
        code, _tab, name = line.partition("\t")
        if not _CODE.match(code) or not name or code in names:
            raise ValueError(
                _(
                    "{file} line {n}: not a new code<TAB>name: {line!r}",
                    file=TABLE_FILE,
                    n=n,
                    line=line,
                )
            )
        names[code] = name
    return Table.of(names, about["date"], about["source"])


_table: Table | None = None  # shipped() with the declared codes; None: not built yet
_declared: dict[str, str] = {}


def table() -> Table:
    global _table
    if _table is None:
        base = shipped()
        _table = Table.of({**base.names, **_declared}, base.date, base.source)
    return _table


def check_extra(extra: Mapping[str, str]) -> dict[str, str]:
    """Codes newer than the table, as node.toml ``[divisions] extra`` gives them (code -> name):
    returned as they are, or ValueError saying what is wrong with one."""
    provinces = {c for c in shipped().names if _level(c) == "province"}
    for code, name in extra.items():
        if not _CODE.match(code) or code == NATIONAL:
            raise ValueError(
                _("[divisions] extra: {code!r} is not a six-digit division code", code=code)
            )
        if code[:2] + "0000" not in provinces:
            raise ValueError(
                _(
                    "[divisions] extra: {code} lies in no province of GB/T 2260 ({province})",
                    code=code,
                    province=code[:2] + "0000",
                )
            )
        if not name.strip():
            raise ValueError(_("[divisions] extra: {code} needs its name", code=code))
    return dict(extra)


def declare(extra: Mapping[str, str]) -> None:
    """Count these codes (newer than the shipped table; a listed code takes the new name) as
    divisions from now on, in this process: the node calls it at start with node.toml
    ``[divisions] extra``. Declarations add up (several nodes may run in one process)."""
    global _table
    _declared.update(check_extra(extra))
    _table = None


def declared() -> dict[str, str]:
    return dict(_declared)


def forget_declared() -> None:
    """Back to the shipped table alone (for tests)."""
    global _table
    _declared.clear()
    _table = None


# -- what a code is -------------------------------------------------------------------------


def _level(code: str) -> str:
    """The tier a code's digits name: national, province, city (prefecture) or county."""
    if code == NATIONAL:
        return "national"
    if code[2:] == "0000":
        return "province"
    if code[4:] == "00":
        return "city"
    return "county"


def known(code: str) -> bool:
    """Whether ``code`` is a division: in the shipped table or declared."""
    return code in table().names


def name(code: str) -> str | None:
    """The division's name (东莞市 for 441900), None for a code that is not a division."""
    return table().names.get(code)


def without_counties(code: str) -> bool:
    """A prefecture-level city with no county-level division under it (东莞 441900): its bureau
    does the county's part."""
    t = table()
    return _level(code) == "city" and code in t.names and code[:4] not in t.with_counties


def directly_under_province(code: str) -> bool:
    """A county-level division with no city above it: 省直辖县级行政区划 (济源 419001), and the
    districts and counties of the four municipalities."""
    return _level(code) == "county" and known(code) and city_of(code) is None


def does_county_part(code: str) -> bool:
    """Whether the bureau of ``code`` is the one a place there first belongs to: a county-level
    division, or a city without counties. Enterprises are registered there."""
    return known(code) and (_level(code) == "county" or without_counties(code))


def city_of(code: str) -> str | None:
    """The city (prefecture-level division) a code lies in: the code itself for a city, the
    listed ``PPCC00`` for a county-level code, None for a province or where no city stands
    above (419001)."""
    level = _level(code)
    if level == "city":
        return code
    if level == "county" and code[:4] + "00" in table().names:
        return code[:4] + "00"
    return None


def chain(division: str) -> list[str]:
    """The regions of the bureaus a report climbs from the division's own bureau up to the
    national centre: 130102 -> [130102, 130100, 130000, 000000]; 419001 (no city) -> [419001,
    410000, 000000]; 441900 (a city without counties) -> [441900, 440000, 000000]. A
    well-formed code not in the table is placed by its digits (with its city only if that city
    is listed); ValueError for one that is not six digits."""
    if not _CODE.match(division):
        raise ValueError(
            _("a division code is six digits (GB/T 2260), got {code!r}", code=division)
        )
    if division == NATIONAL:
        return [NATIONAL]
    up = [division]
    city = city_of(division)
    if city is not None and city != division:
        up.append(city)
    province = division[:2] + "0000"
    if province != division:
        up.append(province)
    return [*up, NATIONAL]
