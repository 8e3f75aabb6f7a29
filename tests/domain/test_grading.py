import pytest

from domain.grading import Grade, grade_accident

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
