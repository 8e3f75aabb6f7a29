import pytest

from domain.grading import Grade, grade_accident, investigated_by, must_reach

G, L, M, E = Grade.GENERAL, Grade.LARGER, Grade.MAJOR, Grade.ESPECIALLY_MAJOR


@pytest.mark.parametrize(
    ("deaths", "grade"), [(0, G), (2, G), (3, L), (9, L), (10, M), (29, M), (30, E), (300, E)]
)
def test_deaths_at_every_boundary(deaths, grade):
    assert grade_accident(deaths, 0, 0, 0).grade == grade


@pytest.mark.parametrize(("missing", "grade"), [(2, G), (3, L), (9, L), (10, M), (29, M), (30, E)])
def test_missing_persons_alone_count_as_deaths(missing, grade):
    assert grade_accident(0, missing, 0, 0).grade == grade


@pytest.mark.parametrize(
    ("deaths", "missing", "grade"),
    [(2, 1, L), (1, 1, G), (9, 1, M), (5, 4, L), (29, 1, E), (20, 9, M)],
)
def test_missing_persons_are_added_to_deaths(deaths, missing, grade):
    assert grade_accident(deaths, missing, 0, 0).grade == grade


@pytest.mark.parametrize(
    ("injuries", "grade"), [(0, G), (9, G), (10, L), (49, L), (50, M), (99, M), (100, E)]
)
def test_serious_injuries_at_every_boundary(injuries, grade):
    assert grade_accident(0, 0, injuries, 0).grade == grade


@pytest.mark.parametrize(
    ("loss", "grade"),
    [
        (9_999_999, G),
        (10_000_000, L),
        (10_000_001, L),
        (49_999_999, L),
        (50_000_000, M),
        (50_000_001, M),
        (99_999_999, M),
        (100_000_000, E),
        (100_000_001, E),
    ],
)
def test_direct_loss_one_yuan_either_side_of_each_threshold(loss, grade):
    assert grade_accident(0, 0, 0, loss).grade == grade


def test_the_highest_criterion_wins_and_is_named():
    g = grade_accident(1, 0, 55, 12_000_000)
    assert g.grade == M and g.criteria == ("serious_injuries",)
    g = grade_accident(3, 0, 10, 10_000_000)
    assert g.grade == L and g.criteria == ("deaths_and_missing", "serious_injuries", "direct_loss")


def test_labels_and_codes_round_trip():
    for grade in Grade:
        assert Grade.from_code(grade.code) is grade
    assert E.label == "特别重大" and Grade.NEAR_MISS.label == "较大涉险"


@pytest.mark.parametrize(
    ("division", "by"),
    [
        ("130102", {G: "130102", L: "130100", M: "130000", E: "000000"}),
        ("441900", {G: "441900", L: "441900", M: "440000", E: "000000"}),  # 东莞: no county
        ("419001", {G: "419001", L: "410000", M: "410000", E: "000000"}),  # 济源: no city
        ("110101", {G: "110101", L: "110000", M: "110000", E: "000000"}),  # a municipality
    ],
)
def test_who_investigates_in_each_kind_of_division(division, by):
    """493号令 Art. 19, each tier's part done by the next bureau up where the tier is missing."""
    assert {g: investigated_by(g, division) for g in by} == by


def test_the_tier_a_report_must_reach_in_each_kind_of_division():
    assert [must_reach(g, "130102") for g in (G, L, M)] == ["130100", "130000", "000000"]
    assert must_reach(G, "419001") == "410000" and must_reach(G, "441900") == "441900"
