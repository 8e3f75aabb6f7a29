import pytest

from domain.codes import (
    Tier,
    check_division,
    check_region,
    credit_code_check_character,
    enterprise_id,
    in_subtree,
    normalize_credit_code,
    region_chain,
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
