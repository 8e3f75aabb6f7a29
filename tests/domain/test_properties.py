"""Property tests: the grading rules and the credit-code check hold for all inputs, not only
the boundaries the example tests pick."""

from hypothesis import given
from hypothesis import strategies as st

from domain.codes import CREDIT_CODE_ALPHABET, credit_code_check_character, normalize_credit_code
from domain.grading import DEATH_BOUNDS, INJURY_BOUNDS, LOSS_BOUNDS, Grade, grade_accident

counts = st.integers(min_value=0, max_value=500)
losses = st.integers(min_value=0, max_value=300_000_000)


def by(value, bounds):
    return next((g for lower, g in bounds if value >= lower), Grade.GENERAL)


@given(counts, counts, counts, losses)
def test_the_grade_is_the_highest_criterion(deaths, missing, injuries, loss):
    expected = max(
        by(deaths + missing, DEATH_BOUNDS), by(injuries, INJURY_BOUNDS), by(loss, LOSS_BOUNDS)
    )
    assert grade_accident(deaths, missing, injuries, loss).grade == expected


@given(counts, counts, counts, losses, st.sampled_from(range(4)), st.integers(1, 50))
def test_more_casualties_or_loss_never_lower_the_grade(
    deaths, missing, injuries, loss, which, more
):
    base = [deaths, missing, injuries, loss]
    raised = list(base)
    raised[which] += more if which < 3 else more * 1_000_000
    assert grade_accident(*raised).grade >= grade_accident(*base).grade


@given(st.text(CREDIT_CODE_ALPHABET, min_size=17, max_size=17), st.integers(0, 17), st.data())
def test_any_single_character_change_is_detected(body, position, data):
    code = body + credit_code_check_character(body)
    assert normalize_credit_code(code) == code
    replacement = data.draw(st.sampled_from(CREDIT_CODE_ALPHABET.replace(code[position], "")))
    typo = code[:position] + replacement + code[position + 1 :]
    try:
        normalize_credit_code(typo)
    except ValueError as e:
        assert "check character" in str(e)
    else:
        raise AssertionError(f"{typo} (from {code}) passed the check")
