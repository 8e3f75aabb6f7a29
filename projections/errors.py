"""The projections package's one exception root.

ProjectionError
 └── BadFilter        a query filter no query can mean (also a ValueError), with what was
                      wrong and which parameter

A message is a ``domain.i18n.Text``, read in the reader's language when it is shown
(``str(error)`` in the current one, ``error.message(lang)`` in another); ``code`` is stable
for a program to branch on."""

from __future__ import annotations

from typing import Any

from domain.i18n import Text, render


class ProjectionError(Exception):
    """Root of every error raised by projections/."""

    code = "projection"

    def message(self, lang: str | None = None) -> str:
        """The message, read in ``lang`` (the current language when None)."""
        return str(render(self.args[0], lang)) if self.args else ""

    def __str__(self) -> str:
        return self.message()


class BadFilter(ProjectionError, ValueError):
    """A query filter that no query can mean; the message names the parameter.
    ``parameter``: the filter's name as the query parameters spell it (``since``, ``limit``),
    None when no one parameter is at fault; ``problem``: what is wrong with it, without its
    name (for an edge that names the parameter its own way, ``--since``)."""

    code = "bad_filter"

    def __init__(
        self,
        message: str | Text,
        *,
        parameter: str | None = None,
        problem: str | Text | None = None,
    ) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.problem = message if problem is None else problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bad_filter, (self.args[0], self.parameter, self.problem))


def _bad_filter(message: str | Text, parameter: str | None, problem: str | Text) -> BadFilter:
    return BadFilter(message, parameter=parameter, problem=problem)
