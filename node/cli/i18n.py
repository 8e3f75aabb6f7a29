"""The command line in its reader's language: which language (``--lang``, ``ANJIAN_LANG``, the
locale; zh-CN when none says), its help and click's own texts (``Usage:``, ``Missing option``)
read through the product's catalogue (``domain.i18n``).

Help is written in English in the code (a command's docstring, an option's ``help=``) and
translated when the command line starts, before click reads its arguments: the language must
be known first, so ``--lang`` is looked for in the arguments before click parses them (click
checks it again as an option of its own)."""

from __future__ import annotations

import gettext as stdlib_gettext
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import click

from domain.i18n import LANGUAGES, ZH, gettext, parse_language, set_process_language

ENV = "ANJIAN_LANG"
LOCALE_ENV = ("LC_ALL", "LC_MESSAGES", "LANG")  # POSIX's order: the first set one wins
_ORIGINAL = "_anjian_english"


class LanguageError(click.UsageError):
    """A language asked for that the product does not speak."""


def choose(args: Sequence[str], environ: Mapping[str, str]) -> str:
    """The CLI's language: ``--lang`` in ``args``, else ``ANJIAN_LANG``, else the locale, else
    zh-CN. A ``--lang`` or ``ANJIAN_LANG`` this product does not speak is an error that names
    where it came from; a locale it does not speak (``fr_FR``) reads as zh-CN."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = None
        if arg == "--lang" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--lang="):
            value = arg.partition("=")[2]
        if value is not None:
            lang = parse_language(value)
            if lang is None:
                raise LanguageError(_unknown("--lang", value))
            return lang
    if environ.get(ENV):
        lang = parse_language(environ[ENV])
        if lang is None:
            raise LanguageError(_unknown(ENV, environ[ENV]))
        return lang
    for name in LOCALE_ENV:
        if environ.get(name):
            return parse_language(environ[name]) or ZH
    return ZH


def _unknown(where: str, value: str) -> str:
    # said in both languages: the reader's language is what is in question
    return (
        f"{where}: 不支持的语言 {value!r}（可选：{'、'.join(LANGUAGES)}）/ "
        f"{where}: {value!r} is not a language anjian speaks (one of {', '.join(LANGUAGES)})"
    )


def original(thing: Any, attribute: str) -> str | None:
    """The English text of a command's or parameter's help attribute, as the code wrote it."""
    kept = getattr(thing, _ORIGINAL, None)
    if kept is not None:
        return kept.get(attribute)  # type: ignore[no-any-return]
    return getattr(thing, attribute, None)


def localise(command: click.Command, lang: str) -> None:
    """Put every help text of ``command`` and its subcommands into ``lang`` (from the English
    each was written in, so a process may change language again)."""
    for thing, attributes in _helped(command):
        kept = getattr(thing, _ORIGINAL, None)
        if kept is None:
            kept = {a: getattr(thing, a, None) for a in attributes}
            setattr(thing, _ORIGINAL, kept)
        for attribute, english in kept.items():
            if english:
                msgid = inspect.cleandoc(english).partition("\f")[0].strip()
                setattr(thing, attribute, gettext(msgid, lang))


def _helped(command: click.Command) -> list[tuple[Any, tuple[str, ...]]]:
    found: list[tuple[Any, tuple[str, ...]]] = [(command, ("help", "short_help", "epilog"))]
    found += [(p, ("help",)) for p in command.params if isinstance(p, click.Option)]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += _helped(sub)
    return found


def _click_gettext(message: str) -> str:
    return gettext(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


def install() -> None:
    """Have click read its own texts through the catalogue (click marks them with the
    standard library's gettext, which knows nothing of this product's catalogues)."""
    for name in (
        "core",
        "decorators",
        "exceptions",
        "formatting",
        "parser",
        "termui",
        "types",
        "utils",
        "shell_completion",
        "_termui_impl",
    ):
        module = getattr(click, name, None)
        if module is None:
            continue
        if getattr(module, "_", None) is stdlib_gettext.gettext:
            module._ = _click_gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is stdlib_gettext.ngettext:
            module.ngettext = _click_ngettext  # type: ignore[attr-defined]


def start(command: click.Command, args: Sequence[str], environ: Mapping[str, str]) -> str:
    """Choose the language, and read the process's messages and ``command``'s help in it."""
    lang = choose(args, environ)
    set_process_language(lang)
    install()
    localise(command, lang)
    return lang


def language_option(f: Any) -> Any:
    """``--lang``: shown in the help and checked by click (``start`` already used it)."""
    return click.option(
        "--lang",
        metavar="|".join(LANGUAGES),
        callback=_check_language,
        expose_value=False,
        is_eager=True,
        help=_help_lang,
    )(f)


def _check_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """What ``start`` took from the arguments (zh, zh-CN, zh_CN.UTF-8, en…), checked again."""
    if value is not None and parse_language(value) is None:
        raise LanguageError(_unknown("--lang", value))


_help_lang = "Language of messages and help: zh-CN (the default) or en; also ANJIAN_LANG."
