"""The node's log as an operator reads it: each line's time in China time (ISO 8601, +08:00),
and its message in the process's language (``--lang``, ``ANJIAN_LANG``, the locale), also
when the line is written while serving a request in another language."""

from __future__ import annotations

import logging
from datetime import datetime

from domain.base import CHINA
from domain.i18n import Text, process_language, set_process_language

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Formatter(logging.Formatter):
    """China time, and messages (``domain.i18n.Text``) read in the process's language."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, CHINA)
        return moment.isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, Text):
            record.msg = record.msg.render(process_language())
        return super().format(record)


def configure(level: int, fmt: str = FORMAT, lang: str | None = None) -> None:
    """Log to stderr at ``level`` in ``fmt`` (once per process; a process started for the
    node, such as its projections', passes its parent's ``lang``)."""
    if lang is not None:
        set_process_language(lang)
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(Formatter(fmt))
