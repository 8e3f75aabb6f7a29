"""A bundle: envelopes, checkpoints and key documents in one file or byte string, for import
without NATS (and, later, for exports an auditor verifies). A stream of canonical msgpack maps
``{"kind": "envelope" | "checkpoint" | "document", "data": bytes}``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import msgpack

from domain.i18n import _
from federation.canonical import encode
from federation.errors import VerificationError

Kind = Literal["envelope", "checkpoint", "document"]


def pack(items: Iterable[tuple[Kind, bytes]]) -> bytes:
    return b"".join(encode({"kind": kind, "data": data}) for kind, data in items)


def unpack(data: bytes) -> Iterator[tuple[str, bytes]]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(data)
    try:
        for item in unpacker:
            if (
                not isinstance(item, dict)
                or set(item) != {"kind", "data"}
                or not isinstance(item["data"], bytes)
            ):
                raise VerificationError("malformed_bundle", _("an item is not {{kind, data}}"))
            yield str(item["kind"]), item["data"]
    except (ValueError, msgpack.UnpackException) as e:
        raise VerificationError(
            "malformed_bundle", _("not a bundle: {error}", error=str(e))
        ) from None
