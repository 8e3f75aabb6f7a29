import pytest

from domain.codes import (
    Tier,
    bureau_for,
    check_division,
    check_division_shape,
    check_region,
    credit_code_check_character,
    division_level,
    enterprise_id,
    in_subtree,
    normalize_credit_code,
    region_chain,
    tier_rank,
)
from tests.factories import credit_code

# Codes published on real registrations (the worked example quoted with GB 32100-2015 and two
# Shenzhen enterprises), then codes built by the test factory.
PUBLISHED = ["91350100M000100Y43", "914403001922038216", "9144030071526726XG"]
REAL = [*PUBLISHED, credit_code(7), credit_code(123456, "650102"), credit_code(99, "419001")]


@pytest.mark.parametrize("code", REAL)
def test_published_codes_are_accepted(code):
    assert normalize_credit_code(code) == code


@pytest.mark.parametrize("code", REAL)
def test_every_wrong_check_character_is_refused(code):
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if c == code[-1]:
            continue
        with pytest.raises(ValueError, match="check character"):
            normalize_credit_code(code[:-1] + c)


def test_a_single_typo_in_the_body_is_caught():
    code = REAL[0]
    typo = code[:5] + ("2" if code[5] != "2" else "3") + code[6:]
    with pytest.raises(ValueError, match=f"check character is '{code[-1]}'"):
        normalize_credit_code(typo)


def test_lower_case_and_spaces_are_normalised():
    assert normalize_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y4", "18 characters, this one has 17"),
        ("91350100M000100Y433", "this one has 19"),
        ("91350100M0001O0Y43", "'O'"),
        ("91350100M000I00Y43", "'I'"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code, message):
    with pytest.raises(ValueError, match=message):
        normalize_credit_code(code)


def test_check_character_zero_when_sum_is_a_multiple_of_31():
    # find a body whose weighted sum is ≡ 0 (mod 31): the check character is then '0', not 31
    for serial in range(10_000):
        code = credit_code(serial)
        if code[-1] == "0":
            assert credit_code_check_character(code[:17]) == "0"
            return
    pytest.fail("no code with check character 0 in the range searched")


def test_enterprise_ids_derive_from_the_code_and_the_registering_division():
    assert enterprise_id(REAL[0], "130102") == enterprise_id(REAL[0], "130102")
    assert enterprise_id(REAL[0], "130102") != enterprise_id(REAL[1], "130102")
    # another county cannot take the id of an enterprise registered here by registering first
    assert enterprise_id(REAL[0], "130102") != enterprise_id(REAL[0], "130104")


@pytest.mark.parametrize("bad", ["13010", "1301020", "13a102", "990102", ""])
def test_bad_division_codes(bad):
    with pytest.raises(ValueError):
        check_division(bad)


def test_regions_must_fit_tiers():
    assert check_region(Tier.COUNTY, "130102") == "130102"
    assert check_region(Tier.CITY, "130100") == "130100"
    assert check_region(Tier.PROVINCE, "130000") == "130000"
    assert check_region(Tier.NATIONAL, "000000") == "000000"
    with pytest.raises(ValueError, match="city-level"):
        check_region(Tier.COUNTY, "130100")
    with pytest.raises(ValueError, match="000000"):
        check_region(Tier.NATIONAL, "130000")


def test_subtrees():
    assert in_subtree("000000", "650102")
    assert in_subtree("130000", "130102") and not in_subtree("130000", "140102")
    assert in_subtree("130100", "130102") and not in_subtree("130100", "130202")
    assert in_subtree("130102", "130102") and not in_subtree("130102", "130103")


def test_region_chain_including_counties_directly_under_a_province():
    assert region_chain("130102") == {"county": "130102", "city": "130100", "province": "130000"}
    assert region_chain("419001") == {"county": "419001", "city": None, "province": "410000"}
    assert region_chain("130100") == {"county": None, "city": "130100", "province": "130000"}


def test_region_chain_has_no_city_where_the_table_has_none():
    assert region_chain("110101") == {"county": "110101", "city": None, "province": "110000"}
    assert region_chain("441900") == {"county": None, "city": "441900", "province": "440000"}


# -- the table (GB/T 2260 as the 民政部 publishes it) ------------------------------------------


@pytest.mark.parametrize("code", ["139999", "130199", "130103", "110100", "419000", "449001"])
def test_codes_not_in_the_table_are_refused(code):
    """Well-formed codes that name no division: invented (139999, 130199), abolished (130103
    桥东区, 2014), or groupings (110100 市辖区, 419000 省直辖县级行政区划)."""
    assert check_division_shape(code) == code
    with pytest.raises(ValueError, match=rf"{code} is not a division code of GB/T 2260"):
        check_division(code)


@pytest.mark.parametrize("code", ["130102", "130100", "130000", "441900", "419001", "659013"])
def test_codes_in_the_table_are_accepted(code):
    assert check_division(code) == code


def test_130199_is_not_a_county_and_139999_no_region():
    with pytest.raises(ValueError, match="130199 is not a division code"):
        check_region(Tier.COUNTY, "130199")
    with pytest.raises(ValueError, match="139999 is not a division code"):
        check_region(Tier.COUNTY, "139999")
    with pytest.raises(ValueError, match="110100 is not a division code"):
        check_region(Tier.CITY, "110100")
    # a node's own [divisions] extra
    assert check_region(Tier.COUNTY, "139999", {"139999": "测试新区"}) == "139999"
    assert check_division("139999", {"139999"}) == "139999"
    with pytest.raises(ValueError, match="county-level division, not a city"):
        check_region(Tier.CITY, "139999", {"139999": "测试新区"})


def test_regions_of_divisions_without_a_middle_tier():
    assert check_region(Tier.CITY, "441900") == "441900"  # 东莞: a city, with no county
    assert check_region(Tier.COUNTY, "419001") == "419001"  # 济源: a county, with no city
    with pytest.raises(ValueError, match="city-level division, not a county"):
        check_region(Tier.COUNTY, "441900")


def test_levels_and_ranks():
    assert division_level("000000") == Tier.NATIONAL
    assert [division_level(c) for c in ("130000", "130100", "441900", "419001")] == [
        Tier.PROVINCE,
        Tier.CITY,
        Tier.CITY,
        Tier.COUNTY,
    ]
    assert [tier_rank(t) for t in ("county", "city", "province", "national")] == [0, 1, 2, 3]
    assert tier_rank("backup") is None and tier_rank("hamlet") is None


@pytest.mark.parametrize(
    ("division", "tier", "region"),
    [
        ("130102", Tier.COUNTY, "130102"),
        ("130102", Tier.CITY, "130100"),
        ("130102", Tier.PROVINCE, "130000"),
        ("130102", Tier.NATIONAL, "000000"),
        ("441900", Tier.COUNTY, "441900"),  # 东莞: the city does the county's part
        ("441900", Tier.CITY, "441900"),
        ("441900", Tier.PROVINCE, "440000"),
        ("419001", Tier.COUNTY, "419001"),
        ("419001", Tier.CITY, "410000"),  # 济源: no city, the province is next
        ("110101", Tier.CITY, "110000"),  # 东城区: the municipality
        ("130100", Tier.COUNTY, "130100"),
    ],
)
def test_the_bureau_that_does_a_tiers_part(division, tier, region):
    assert bureau_for(division, tier) == region
