"""The federation package's one exception root. Every verification failure has a named reason
(a stable code an auditor's report can group by, and a quarantine keeps) and a message.

The message a person reads is a ``domain.i18n.Text``, read in the reader's language when it is
shown: ``str(error)`` in the current one, ``error.message(lang)`` in another. A
VerificationError reads ``reason: message``, its reason never translated."""

from __future__ import annotations

from typing import Any

from domain.i18n import Text, _, render


class FederationError(Exception):
    """Root of every error raised by federation/."""

    def __init__(self, message: str | Text = "") -> None:
        super().__init__(message)

    def message(self, lang: str | None = None) -> str:
        """The message, read in ``lang`` (the current language when None)."""
        return str(render(self.args[0], lang)) if self.args else ""

    def __str__(self) -> str:
        return self.message()


class VerificationError(FederationError):
    """Something does not verify; ``reason`` is a stable code, e.g. ``bad_signature``, and
    ``detail`` what a person reads of it (``str(error)`` is ``reason: detail``)."""

    def __init__(self, reason: str, message: str | Text) -> None:
        self.reason = reason
        self.detail = message
        super().__init__(_("{reason}: {message}", reason=reason, message=message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.detail))


class NonCanonical(VerificationError):
    def __init__(self, message: str | Text) -> None:
        super().__init__("non_canonical", message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail,))
