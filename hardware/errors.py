"""The errors of the sensor adapters, under one root::

    HardwareError                     everything an adapter raises, or catches and counts
    ├── Refused                       the sink (the node) refused a batch or point definitions;
    │                                 ``reason`` says why. The adapter counts it (``refused``)
    │                                 and goes on: it is not retried as it stands.
    ├── Malformed (ValueError)        input from a device, file or message that is not what the
    │                                 adapter expects: a Modbus exception response or short
    │                                 reply, an MQTT payload, a monitoring-system file. Counted
    │                                 (``malformed``), logged, and nothing of it is recorded.
    ├── ConnectionLost                no usable connection to a device: it went away or stopped
    │                                 answering. The source reconnects with backoff
    │                                 (``reconnects``); nothing is recorded from the failed poll.
    └── Misconfigured (ValueError)    an adapter's configuration that cannot work (a register
                                      beyond 0–65535, a point configured twice, a zero scale,
                                      a file-drop folder that is a symbolic link), raised when
                                      the configuration is made, before any run. The file drop
                                      also meets it on a later look (its folder, done/ or
                                      rejected/ replaced by a link): counted as a failure, and
                                      nothing is taken or written until it is mended.

A source never lets these escape ``run()``: they are its counters and log lines.
``Malformed`` and ``Misconfigured`` are ``ValueError``s too, as they were before this root
existed, so code catching ``ValueError`` still catches them.

A sink that fails otherwise (the node down, its store busy: an ``OSError``, a
``ConnectionError``) raises no ``HardwareError``: that is not a refusal, and the adapter keeps
or retries what it could not deliver, as each one documents.

A message is a ``domain.i18n.Text`` (or plain text, such as a reason the node gave): read in
the reader's language when shown (``str(error)``, ``error.message(lang)``); ``text`` is the
message itself, to pass on unread into a larger one (a reason file, a log line)."""

from __future__ import annotations

from domain.i18n import Text, render


class HardwareError(Exception):
    """The root of the sensor adapters' errors."""

    @property
    def text(self) -> str | Text:
        """The message as it was given (a Text stays a Text: read when shown)."""
        message = self.args[0] if self.args else ""
        return message if isinstance(message, Text) else str(message)

    def message(self, lang: str | None = None) -> str:
        """The message, read in ``lang`` (the current language when None)."""
        return str(render(self.text, lang))

    def __str__(self) -> str:
        return self.message()


class Refused(HardwareError):
    """The sink refused a batch or a definition; ``reason`` (the message) says why."""

    def __init__(self, reason: str | Text) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(HardwareError, ValueError):
    """Input that is not what the adapter expects; the message says where and what."""


class ConnectionLost(HardwareError):
    """No usable connection to a device: it went away or stopped answering."""


class Misconfigured(HardwareError, ValueError):
    """An adapter configuration that cannot work; the message names the setting."""
