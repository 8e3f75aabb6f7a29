"""pydantic's errors in our words: a choice lists its values as the reader's language lists
them, a field is named by its path alone (not by pydantic's validator tags), numbers that do
not parse say so."""

from domain.errors import field_errors

ERRORS = [
    {
        "type": "enum",
        "loc": ("industry",),
        "msg": "x",
        "ctx": {"expected": "'coal_mine' or 'fire'"},
    },
    {"type": "decimal_parsing", "loc": ("readings", 0, "value", "function-after[_x(), decimal]")},
    {"type": "int_parsing", "loc": ("readings", 0, "t", "constrained-int"), "msg": "x"},
]


def test_choices_fields_and_numbers_read_in_both_languages():
    choice, number, whole = field_errors(ERRORS)
    assert choice.render("zh-CN")["message"] == "须为以下之一：coal_mine、fire"
    assert choice.render("en")["message"] == "must be one of coal_mine, fire"
    assert (number.field, number.code) == ("readings.0.value", "decimal_parsing")
    assert number.render("zh-CN")["message"] == "须为数字"
    assert (
        whole.field == "readings.0.t" and whole.render("en")["message"] == "must be a whole number"
    )
