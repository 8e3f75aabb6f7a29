"""The domain's one exception root and its two kinds of refusal.

``Invalid`` says a command's input is wrong (field by field); ``Refused`` says the input is
well-formed but the rules or the aggregate's state do not allow it. Neither records anything.

Every error has a stable machine ``code`` (a program branches on it, never on the text) and a
message a person reads: a ``domain.i18n.Text``, read in the reader's language when it is shown
(``str(error)`` in the current one, ``error.message(lang)`` in another)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.i18n import N_, ZH, Joined, Text, _, language, placeholders, render


class DomainError(Exception):
    """Root of every error the domain raises. ``code``: the class's, or one given."""

    code = "error"

    def __init__(self, message: str | Text = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def message(self, lang: str | None = None) -> str:
        """The message, read in ``lang`` (the current language when None)."""
        return str(render(self.args[0], lang)) if self.args else ""

    def __str__(self) -> str:
        return self.message()


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str | Text
    code: str = "invalid"  # stable: pydantic's error type (missing, int_parsing...) or ours

    def render(self, lang: str | None = None) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": str(render(self.message, lang))}


class Invalid(DomainError):
    """The command's input is wrong; ``errors`` names each bad field."""

    code = "invalid"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(_("the request has invalid fields"))

    def message(self, lang: str | None = None) -> str:
        lang = lang or language()
        sep = "；" if lang == ZH else "; "
        return sep.join(f"{e.field}: {render(e.message, lang)}" for e in self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))

    @classmethod
    def field(cls, field: str, message: str | Text, code: str = "invalid") -> Invalid:
        return cls([FieldError(field, message, code)])


class Refused(DomainError):
    """The rules or the aggregate's current state do not allow the command."""

    code = "refused"


def said(error: BaseException) -> Text:
    """What an exception says, read when it is shown, in its reader's language (a message
    made of Texts, or a library's own text as it is)."""
    return Text("{error}", {"error": error})


# -- pydantic's errors, in our words -------------------------------------------------------------
# By pydantic's error type (https://docs.pydantic.dev/latest/errors/validation_errors/), with
# the values of its ``ctx``; a type not named here reads as "is not valid" with pydantic's own
# (English) detail. ``value_error``: the message our validator raised, read in the language.
PYDANTIC = {
    "missing": N_("this field is required"),
    "extra_forbidden": N_("unknown field (see the command's schema in /api/v1/openapi.json)"),
    "model_type": N_("must be a JSON object"),
    "model_attributes_type": N_("must be a JSON object"),
    "dict_type": N_("must be a JSON object"),
    "list_type": N_("must be a list"),
    "json_invalid": N_("the body is not valid JSON: {error}"),
    "json_type": N_("must be JSON text"),
    "string_type": N_("must be text"),
    "string_too_short": N_("must have at least {min_length} characters"),
    "string_too_long": N_("must have at most {max_length} characters"),
    "string_pattern_mismatch": N_("does not have the expected form ({pattern})"),
    "int_type": N_("must be a whole number"),
    "int_parsing": N_("must be a whole number"),
    "int_from_float": N_("must be a whole number"),
    "float_type": N_("must be a number"),
    "decimal_type": N_("must be a number"),
    "decimal_parsing": N_("must be a number"),
    "decimal_max_digits": N_("has too many digits"),
    "decimal_max_places": N_("has too many decimal places"),
    "finite_number": N_("must be a finite number"),
    "float_parsing": N_("must be a number"),
    "bool_type": N_("must be true or false"),
    "bool_parsing": N_("must be true or false"),
    "greater_than": N_("must be greater than {gt}"),
    "greater_than_equal": N_("must be at least {ge}"),
    "less_than": N_("must be less than {lt}"),
    "less_than_equal": N_("must be at most {le}"),
    "too_short": N_("must have at least {min_length} items"),
    "too_long": N_("must have at most {max_length} items"),
    "literal_error": N_("must be one of {expected}"),
    "enum": N_("must be one of {expected}"),
    "uuid_type": N_("must be a record id (a UUID)"),
    "uuid_parsing": N_("must be a record id (a UUID)"),
    "datetime_type": N_("must be a date and time (ISO 8601)"),
    "datetime_parsing": N_("must be a date and time (ISO 8601)"),
    "datetime_from_date_parsing": N_("must be a date and time (ISO 8601)"),
    "date_type": N_("must be a date (ISO 8601)"),
    "date_parsing": N_("must be a date (ISO 8601)"),
    "date_from_datetime_parsing": N_("must be a date (ISO 8601)"),
    "timezone_aware": N_("must say its time zone (+08:00)"),
    "url_parsing": N_("must be a URL"),
    "url_scheme": N_("must be a URL with scheme {expected_schemes}"),
    "union_tag_invalid": N_("must be one of {expected_tags}"),
    "union_tag_not_found": N_("must say which kind it is ({discriminator})"),
    "frozen_instance": N_("cannot be changed"),
    "frozen_field": N_("cannot be changed"),
}
OTHER = N_("is not valid: {detail}")


def pydantic_message(err: Mapping[str, Any]) -> Text | str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a message to read."""
    kind = str(err.get("type", ""))
    ctx = dict(err.get("ctx") or {})
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        cause = ctx["error"]
        if isinstance(cause, BaseException) and cause.args and isinstance(cause.args[0], Text):
            return cause.args[0]
        return str(err.get("msg", "")).removeprefix("Value error, ")
    template = PYDANTIC.get(kind)
    if template is None:
        return _(OTHER, detail=str(err.get("msg", kind)))
    values = {k: _context_value(v) for k, v in ctx.items()}
    return Text(template, {name: values.get(name, "") for name in placeholders(template)})


def _context_value(value: Any) -> Any:
    if isinstance(value, BaseException):
        return str(value)
    if isinstance(value, str) and "'" in value and " or " in value:  # 'a', 'b' or 'c'
        return Joined(re.findall(r"'([^']*)'", value))
    return value


# the parts of pydantic's locations that name a validator or a type, not a field
# (``readings.0.t.function-after[_plausible(), datetime]``, ``constrained-int``)
_NOT_A_FIELD = re.compile(r"^(?:[a-z]+(?:-[a-z]+)+(?:\[.*\])?|[a-z_]+\[.*\])$")


def field_errors(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[FieldError]:
    """pydantic's errors (``ValidationError.errors()``) as FieldErrors: the field's dotted
    path, our message for its type, the type as the code."""
    out = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if not _NOT_A_FIELD.match(str(p)))
        field = ".".join(p for p in (prefix, loc) if p) or "*"
        out.append(FieldError(field, pydantic_message(err), str(err.get("type", "invalid"))))
    return out
