"""The domain's one exception root and its two kinds of refusal.

``Invalid`` says a command's input is wrong (field by field); ``Refused`` says the input is
well-formed but the rules or the aggregate's state do not allow it. Neither records anything.
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Root of every error the domain raises."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Invalid(DomainError):
    """The command's input is wrong; ``errors`` names each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        return cls([FieldError(field, message)])


class Refused(DomainError):
    """The rules or the aggregate's current state do not allow the command."""
