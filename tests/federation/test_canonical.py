"""Canonical msgpack: round trips, and every other encoding of the same value is rejected."""

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.canonical import decode, encode
from federation.errors import NonCanonical

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(st.dictionaries(st.text(max_size=8), scalars, min_size=2, max_size=6))
def test_key_order_does_not_change_the_bytes_and_other_orders_are_rejected(d):
    reversed_dict = dict(reversed(list(d.items())))
    assert encode(reversed_dict) == encode(d)
    other = msgpack.packb(reversed_dict, use_bin_type=True)
    if other != encode(d):
        with pytest.raises(NonCanonical):
            decode(other)


def longer_int_encodings(n: int) -> list[bytes]:
    """Every msgpack encoding of n that is not the shortest."""
    forms = []
    for code, fmt, lo, hi in [
        (0xCC, ">B", 0, 2**8 - 1),
        (0xCD, ">H", 0, 2**16 - 1),
        (0xCE, ">I", 0, 2**32 - 1),
        (0xCF, ">Q", 0, 2**64 - 1),
        (0xD0, ">b", -(2**7), 2**7 - 1),
        (0xD1, ">h", -(2**15), 2**15 - 1),
        (0xD2, ">i", -(2**31), 2**31 - 1),
        (0xD3, ">q", -(2**63), 2**63 - 1),
    ]:
        if lo <= n <= hi:
            forms.append(bytes([code]) + struct.pack(fmt, n))
    shortest = encode(n)
    return [f for f in forms if f != shortest]


@given(st.integers(-(2**63), 2**64 - 1))
def test_every_longer_integer_form_is_rejected(n):
    for form in longer_int_encodings(n):
        with pytest.raises(NonCanonical):
            decode(form)


@given(st.text(max_size=300))
def test_every_longer_string_header_is_rejected(s):
    raw = s.encode()
    n = len(raw)
    forms = [b"\xd9" + struct.pack(">B", n) + raw] if n < 256 else []
    forms += [b"\xda" + struct.pack(">H", n) + raw, b"\xdb" + struct.pack(">I", n) + raw]
    for form in forms:
        if form != encode(s):
            with pytest.raises(NonCanonical):
                decode(form)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (msgpack.packb(1.5), "float"),
        (msgpack.packb({"a": 1}) + b"\x00", "extra"),
        (bytes([0x82, 0xA1, 0x61, 1, 0xA1, 0x61, 2]), "duplicate"),
        (msgpack.packb({1: 2}, use_bin_type=True), "not a string"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "extension"),
        (b"\xc1", "msgpack"),
        (b"", "msgpack"),
    ],
)
def test_malformed_or_forbidden_bytes_are_rejected(data, why):
    with pytest.raises(NonCanonical, match=why):
        decode(data)


@pytest.mark.parametrize("bad", [1.0, {1: "x"}, {"a": object()}, 2**64, -(2**63) - 1])
def test_values_that_have_no_canonical_form(bad):
    with pytest.raises(NonCanonical):
        encode(bad)
