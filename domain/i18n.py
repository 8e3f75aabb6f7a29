"""What a person reads, in their language: Chinese (zh-CN) first, English on request.

A message is written in the code as its English text, gettext's *msgid*, with ``{name}``
placeholders, and marked ``_("…", name=value)``. ``_`` returns a ``Text``: the message and its
values, translated only when it is read (``str(text)``, ``text.render(language)``), so one
refusal raised in the writer thread reads in Chinese to one HTTP client and in English to
another. Texts that must be plain strings when defined (CLI help, tables of labels) are marked
``N_("…")`` and looked up with ``gettext``.

The translations are gettext PO catalogues, ``domain/locale/zh_CN/*.po`` (one per part of the
product; read with Babel), shipped with the package like the division table. English needs no
catalogue: it is the source text. A message missing from the catalogue reads in English rather
than failing; ``tests/test_messages.py`` fails the build when one is missing, and
``python -m tests.messages missing`` prints the entries a new message needs.

Which language: the reader's, set for a request (``speaking``: the HTTP API by
``Accept-Language``) or for the process (``set_process_language``: the CLI by ``--lang``,
``ANJIAN_LANG`` or the locale); zh-CN when nothing says otherwise."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Any

from babel.messages.pofile import read_po

ZH = "zh-CN"
EN = "en"
LANGUAGES = (ZH, EN)
DEFAULT = ZH
LOCALE_DIR = "locale"
CATALOGUE_DIRS = {ZH: "zh_CN"}  # English is the source text

_process = [DEFAULT]
_current: ContextVar[str | None] = ContextVar("anjian_language", default=None)


def language() -> str:
    """The language of whoever reads now: the request's, else the process's."""
    return _current.get() or _process[0]


def process_language() -> str:
    """The language of this process's readers (its log), whatever a request speaks."""
    return _process[0]


def set_process_language(lang: str) -> None:
    """The language of this process's readers (its CLI output, its log)."""
    _process[0] = _check(lang)


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Render what is read within in ``lang`` (a request's language)."""
    token = _current.set(_check(lang))
    try:
        yield
    finally:
        _current.reset(token)


def _check(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(
            _(
                "unknown language {lang!r}: one of {languages}",
                lang=lang,
                languages=", ".join(LANGUAGES),
            )
        )
    return lang


_TAG = re.compile(r"^[a-z]{1,8}(?:[-_][a-z0-9]{1,8})*$")


def parse_language(tag: str | None) -> str | None:
    """One of ``LANGUAGES`` for a language tag or locale name (``zh``, ``zh-CN``, ``zh_CN.UTF-8``,
    ``zh-Hans``, ``en_US``, ``EN``), None for one this product does not speak (``fr``) or that
    names no language (``C``, ``POSIX``, empty)."""
    if not tag:
        return None
    tag = tag.strip().split(".", 1)[0].split("@", 1)[0].lower()
    if not _TAG.match(tag) or tag in ("c", "posix"):
        return None
    primary = re.split(r"[-_]", tag, maxsplit=1)[0]
    if primary == "zh":
        return ZH
    if primary == "en":
        return EN
    return None


def negotiate(header: str | None) -> str:
    """The language an HTTP ``Accept-Language`` header prefers among ours (RFC 9110 §12.5.4:
    weights, ``*``), zh-CN when it names none of them or is absent or malformed."""
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        lang = DEFAULT if tag.strip() == "*" else parse_language(tag)
        if lang is not None and weight > 0:
            choices.append((-weight, i, lang))
    return min(choices)[2] if choices else DEFAULT


class Text:
    """A message and its values, read (translated and filled in) only when someone reads it.
    Values that are Texts, or lists of them, are read in the same language."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: Mapping[str, Any]) -> None:
        self.msgid = msgid
        self.params = dict(params)

    def render(self, lang: str | None = None) -> str:
        lang = lang or language()
        template = gettext(self.msgid, lang)
        values = {k: render(v, lang) for k, v in self.params.items()}
        for text in (template, self.msgid):  # a broken translation: the source text
            try:
                return _FORMATTER.vformat(text, (), values)
            except Exception:  # a message must never fail whoever reads it
                continue
        return self.msgid

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Text):
            return (self.msgid, self.params) == (other.msgid, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.msgid)


class _Plain(string.Formatter):
    """``str.format`` with named placeholders only: ``{name}``, ``{name!r}``, never
    ``{name.attribute}`` or ``{name[0]}`` (a template never reaches into a value)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise ValueError(field_name)  # caught by Text.render
        return kwargs[field_name], field_name


_FORMATTER = _Plain()


def _(msgid: str, /, **params: Any) -> Text:
    """Mark a message for translation; its ``{name}`` placeholders take ``params``."""
    return Text(msgid, params)


def N_(msgid: str) -> str:
    """Mark a text for translation where a plain string is needed now (looked up with
    ``gettext`` when read)."""
    return msgid


def render(value: Any, lang: str | None = None) -> Any:
    """A value as a reader sees it: Texts read in ``lang``, lists of them joined (、 in
    Chinese); anything else as it is (str.format writes it)."""
    lang = lang or language()
    if isinstance(value, Text):
        return value.render(lang)
    if isinstance(value, BaseException):  # its message, read in the same language
        with speaking(lang):
            return str(value)
    if isinstance(value, list | tuple) and any(isinstance(v, Text) for v in value):
        return ("、" if lang == ZH else ", ").join(str(render(v, lang)) for v in value)
    return value


class Joined(Text):
    """Parts of a message (plain text, Texts) joined as the reader's language joins a list:
    ``en`` between them in English, ``zh`` in Chinese, each part read in the same language."""

    __slots__ = ("en", "parts", "zh")

    def __init__(self, parts: Iterable[str | Text], en: str = ", ", zh: str = "、") -> None:
        super().__init__("", {})
        self.parts, self.en, self.zh = list(parts), en, zh

    def render(self, lang: str | None = None) -> str:
        lang = lang or language()
        return (self.zh if lang == ZH else self.en).join(str(render(p, lang)) for p in self.parts)

    def __repr__(self) -> str:
        return f"Joined({self.parts!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Joined):
            return (self.parts, self.en, self.zh) == (other.parts, other.en, other.zh)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.parts))


def gettext(msgid: str, lang: str | None = None) -> str:
    """The translation of a plain text (a template, CLI help), the text itself in English or
    where the catalogue has none."""
    lang = lang or language()
    if lang == EN:
        return msgid
    return catalogue(lang).get(msgid) or msgid


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every translated message of ``lang``: msgid → text, from all its PO files."""
    found: dict[str, str] = {}
    if lang not in CATALOGUE_DIRS:
        return found
    for _name, entries in catalogue_files(lang):
        found.update((msgid, text) for msgid, text in entries if text)
    return found


def catalogue_files(lang: str) -> Iterable[tuple[str, list[tuple[str, str]]]]:
    """Each PO file of ``lang`` by name, with its entries (msgid, translation; "" for none or
    fuzzy)."""
    folder = resources.files("domain").joinpath(LOCALE_DIR, CATALOGUE_DIRS[lang])
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".po"):
            continue
        with item.open("rb") as f:
            po = read_po(f, locale=CATALOGUE_DIRS[lang])
        entries: list[tuple[str, str]] = []
        for m in po:
            if not m.id:
                continue
            ids = m.id if isinstance(m.id, tuple) else (m.id,)  # plural forms: one in Chinese
            texts = m.string if isinstance(m.string, tuple) else (m.string,)
            text = "" if m.fuzzy or not texts or not texts[0] else str(texts[0])
            entries += [(str(i), text) for i in ids]
        yield item.name, entries


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders of a template (what a translation must keep)."""
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name}
