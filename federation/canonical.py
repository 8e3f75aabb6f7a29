"""Canonical msgpack: the one encoding of signed bytes (docs/architecture.md §4).

Maps have string keys sorted by their UTF-8 bytes; integers take their shortest form; strings
and binaries their shortest headers; no floats and no extension types (times are integer
milliseconds, measurements scaled integers). The decoder accepts only bytes that re-encode to
themselves, so a value has exactly one accepted encoding."""

from __future__ import annotations

from typing import Any

import msgpack

from domain.i18n import _
from federation.errors import NonCanonical

Value = None | bool | int | str | bytes | list["Value"] | dict[str, "Value"]

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class _Bad(Exception):
    pass


def _fast(value: Any) -> Any:
    """Sorted maps and plain types; _Bad on anything not allowed (the path is found later)."""
    kind = type(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        raise _Bad
    if kind is dict:
        # code-point order of str is the byte order of their UTF-8 encodings
        try:
            keys = sorted(value)
        except TypeError:
            raise _Bad from None
        if any(type(k) is not str for k in keys):
            raise _Bad
        return {k: _fast(value[k]) for k in keys}
    if kind is list or kind is tuple:
        return [_fast(v) for v in value]
    if isinstance(value, (int, str, dict, list, tuple)) and not isinstance(value, bool):
        return _fast(_base(value))  # subclasses such as enums: as their base type
    raise _Bad


def _base(value: Any) -> Any:
    base: Any = next(b for b in (int, str, dict, list, tuple) if isinstance(value, b))
    return base(value)


def _explain(value: Any, path: str) -> None:
    """Raise NonCanonical naming where and why a value cannot be encoded."""
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise NonCanonical(
                _("{path}: integer {value} does not fit 64 bits", path=path, value=value)
            )
        return
    if isinstance(value, float):
        raise NonCanonical(_("{path}: floats are not allowed (use a scaled integer)", path=path))
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise NonCanonical(_("{path}: map key {key!r} is not a string", path=path, key=k))
            _explain(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _explain(v, f"{path}[{i}]")
        return
    raise NonCanonical(_("{path}: {kind} cannot be encoded", path=path, kind=type(value).__name__))


def encode(value: Any) -> bytes:
    """The canonical bytes of a value; NonCanonical if it holds something not allowed."""
    try:
        normalized = _fast(value)
    except _Bad:
        _explain(value, "$")
        raise NonCanonical(_("{path}: cannot be encoded", path="$")) from None
    data: bytes = msgpack.packb(normalized, use_bin_type=True)
    return data


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if not isinstance(k, str):
            raise NonCanonical(_("map key {key!r} is not a string", key=k))
        if k in out:
            raise NonCanonical(_("duplicate map key {key!r}", key=k))
        out[k] = v
    return out


def _no_ext(code: int, data: bytes) -> Any:
    raise NonCanonical(_("extension type {code} is not allowed", code=code))


MAX_DEPTH = 64  # nesting of maps and lists no event needs


def _check(value: Any, depth: int = 0) -> None:
    """Raise NonCanonical unless every map has string keys in sorted order and there is no
    float anywhere (the byte comparison in ``decode`` settles everything else)."""
    if depth > MAX_DEPTH:
        raise NonCanonical(_("nested too deeply"))
    kind = type(value)
    if kind is dict:
        keys = list(value)
        for k in keys:
            if type(k) is not str:
                raise NonCanonical(_("map key {key!r} is not a string", key=k))
        if keys != sorted(keys):
            raise NonCanonical(_("bytes are not the canonical encoding of their value"))
        for v in value.values():
            if type(v) in _NESTED:
                _check(v, depth + 1)
    elif kind is list:
        for v in value:
            if type(v) in _NESTED:
                _check(v, depth + 1)
    elif kind is float:
        raise NonCanonical(_("floats are not allowed (use a scaled integer)"))


_NESTED = (dict, list, float)


def decode(data: bytes) -> Any:
    """The value of canonical bytes; NonCanonical for anything else (other encodings of the
    same value, duplicate keys, floats, extension types, trailing bytes).

    Fast path: msgpack decodes maps in the order of the bytes, so checking that the keys are
    sorted strings and that encoding the value again gives the very same bytes proves the
    bytes canonical (a duplicate key loses an entry and changes the bytes)."""
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=False, ext_hook=_no_ext
        )
    except NonCanonical:
        raise
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise NonCanonical(_("not a single msgpack value: {error}", error=str(e))) from None
    except TypeError as e:  # a map or list as a map key
        raise NonCanonical(_("map key is not a string: {error}", error=str(e))) from None
    except RecursionError:
        raise NonCanonical(_("nested too deeply")) from None
    try:
        _check(value)
        same = msgpack.packb(value, use_bin_type=True) == data
    except RecursionError:
        raise NonCanonical(_("nested too deeply")) from None
    except (TypeError, ValueError, OverflowError) as e:  # e.g. an unhashable map key
        raise NonCanonical(_("cannot be encoded: {error}", error=str(e))) from None
    if not same:
        _explain_bytes(data)
        raise NonCanonical(_("bytes are not the canonical encoding of their value"))
    return value


def _explain_bytes(data: bytes) -> None:
    """Name a duplicate or non-string map key, if that is what is wrong (the slow path)."""
    msgpack.unpackb(
        data,
        raw=False,
        use_list=True,
        strict_map_key=False,
        object_pairs_hook=_pairs,
        ext_hook=_no_ext,
    )
