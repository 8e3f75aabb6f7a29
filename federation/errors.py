"""The federation package's one exception root. Every verification failure has a named reason
(a stable code an auditor's report can group by) and a message."""

from __future__ import annotations


class FederationError(Exception):
    """Root of every error raised by federation/."""


class VerificationError(FederationError):
    """Something does not verify; ``reason`` is a stable code, e.g. ``bad_signature``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class NonCanonical(VerificationError):
    def __init__(self, message: str) -> None:
        super().__init__("non_canonical", message)
