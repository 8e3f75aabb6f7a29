"""Canonical msgpack: the one encoding of signed bytes (DESIGN.md §4).

Maps have string keys sorted by their UTF-8 bytes; integers take their shortest form; strings
and binaries their shortest headers; no floats and no extension types (times are integer
milliseconds, measurements scaled integers). The decoder accepts only bytes that re-encode to
themselves, so a value has exactly one accepted encoding."""

from __future__ import annotations

from typing import Any

import msgpack

from federation.errors import NonCanonical

Value = None | bool | int | str | bytes | list["Value"] | dict[str, "Value"]

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _normalize(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise NonCanonical(f"{path}: integer {value} does not fit 64 bits")
        return value
    if isinstance(value, (list, tuple)):
        return [_normalize(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise NonCanonical(f"{path}: map key {k!r} is not a string")
        items = sorted(value.items(), key=lambda kv: kv[0].encode())
        return {k: _normalize(v, f"{path}.{k}") for k, v in items}
    if isinstance(value, float):
        raise NonCanonical(f"{path}: floats are not allowed (use a scaled integer)")
    raise NonCanonical(f"{path}: {type(value).__name__} cannot be encoded")


def encode(value: Any) -> bytes:
    """The canonical bytes of a value; NonCanonical if it holds something not allowed."""
    normalized = _normalize(value, "$")
    # dicts keep insertion order, and _normalize inserted the keys sorted
    data: bytes = msgpack.packb(normalized, use_bin_type=True)
    return data


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if not isinstance(k, str):
            raise NonCanonical(f"map key {k!r} is not a string")
        if k in out:
            raise NonCanonical(f"duplicate map key {k!r}")
        out[k] = v
    return out


def _no_ext(code: int, data: bytes) -> Any:
    raise NonCanonical(f"extension type {code} is not allowed")


def decode(data: bytes) -> Any:
    """The value of canonical bytes; NonCanonical for anything else (other encodings of the
    same value, duplicate keys, floats, extension types, trailing bytes)."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_pairs,
            ext_hook=_no_ext,
        )
    except NonCanonical:
        raise
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise NonCanonical(f"not a single msgpack value: {e}") from None
    if encode(value) != data:
        raise NonCanonical("bytes are not the canonical encoding of their value")
    return value
