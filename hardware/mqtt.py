"""MQTT adapter (aiomqtt): a site's monitoring gateway publishes JSON readings on a topic; the
adapter subscribes (QoS 1, a persistent session, so a short outage of the adapter loses
nothing the broker kept while it was away) and hands the node one batch per site per interval;
what arrived within the interval before a crash of the node is lost (the broker counts it
delivered).

A message is one reading ``{"point", "value", "time", "status"}`` or a list of them; ``time``
is milliseconds since the epoch (UTC) or ISO 8601 with an offset, ``status`` the bits of
docs/domain.md §4.3 (default 0). A message that is not that is ``Malformed``: counted and
logged, and nothing of it is kept; the others go on. A batch the node refuses is counted and
not kept (its points offered again one by one first, see ``hardware.base.deliver``); one the
node fails to take (not a refusal) is kept for the next interval and counted as a failure.
Cancelled, the source delivers what it still holds before it stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiomqtt

from domain.i18n import Text, _
from hardware.base import Batch, Counters, Reading, Sink, deliver
from hardware.errors import Malformed as Malformed  # re-exported: it was defined here

log = logging.getLogger("anjian.hardware")
BACKOFF = (0.5, 1.0, 2.0, 5.0)  # seconds between connection attempts (the last repeats)
MAX_PENDING = 200_000  # readings kept while the node cannot take them (an hour of a big site)


@dataclass(frozen=True)
class MqttConfig:
    site: str
    topic: str  # e.g. "mine/130102B0012/#"
    host: str = "127.0.0.1"
    port: int = 1883
    interval: float = 10.0  # seconds: one batch per interval (the AQ 6201 cycle)
    username: str | None = None
    password: str | None = None
    client_id: str | None = None  # a stable id keeps the broker's session across restarts


def readings_of(payload: bytes) -> list[Reading]:
    """The readings a message carries; Malformed says what is wrong with it."""
    try:
        data = json.loads(payload, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as e:
        raise Malformed(_("not JSON: {error}", error=str(e))) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise Malformed(_("an empty list"))
    return [_reading(item, i) for i, item in enumerate(items)]


def _reading(item: Any, i: int) -> Reading:
    where = _("reading {index}", index=i)
    if not isinstance(item, dict) or not {"point", "value", "time"} <= set(item):
        raise Malformed(
            _("{where}: expected an object with point, value, time (and status)", where=where)
        )
    extra = set(item) - {"point", "value", "time", "status"}
    if extra:
        raise Malformed(_("{where}: unknown fields {fields}", where=where, fields=sorted(extra)))
    point, value, t, status = item["point"], item["value"], item["time"], item.get("status", 0)
    if not isinstance(point, str) or not point:
        raise Malformed(_("{where}: point must be a non-empty string", where=where))
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise Malformed(_("{where}: value must be a number", where=where))
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Malformed(
            _("{where}: value {value!r} is not a number", where=where, value=value)
        ) from None
    if not number.is_finite():
        raise Malformed(_("{where}: value {value!r} is not finite", where=where, value=value))
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 255:
        raise Malformed(_("{where}: status must be an integer 0..255", where=where))
    return Reading(point, _ms(t, where), number, status)


def _ms(t: Any, where: Text) -> int:
    if isinstance(t, int) and not isinstance(t, bool) and t >= 0:
        return t
    if isinstance(t, str):
        try:
            moment = datetime.fromisoformat(t)
        except ValueError:
            raise Malformed(
                _("{where}: time {time!r} is not ISO 8601", where=where, time=t)
            ) from None
        if moment.tzinfo is None:
            raise Malformed(
                _("{where}: time {time!r} has no offset (e.g. +08:00)", where=where, time=t)
            )
        return int(moment.timestamp() * 1000)
    raise Malformed(_("{where}: time must be milliseconds or ISO 8601", where=where))


@dataclass
class MqttSource:
    config: MqttConfig
    counters: Counters = field(default_factory=Counters)
    _pending: dict[tuple[str, int], Reading] = field(default_factory=dict)

    @property
    def name(self) -> str:
        c = self.config
        return f"mqtt {c.host}:{c.port} {c.topic}"

    def take(self, payload: bytes, topic: str) -> None:
        try:
            for r in readings_of(payload):
                self._pending[(r.point, r.t)] = r  # the same reading again is kept once
        except Malformed as e:
            self.counters.error(
                _(
                    "{source}: a message on {topic}: {problem}",
                    source=self.name,
                    topic=topic,
                    problem=e.text,
                )
            )

    async def flush(self, sink: Sink) -> None:
        """Deliver what arrived; if the node cannot take it now (not a refusal: e.g. its store
        busy), keep it for the next interval (at most MAX_PENDING readings, the newest)."""
        if not self._pending:
            return
        readings = tuple(sorted(self._pending.values(), key=lambda r: (r.t, r.point)))
        self._pending = {}
        try:
            await deliver(self, sink, Batch(self.config.site, readings, self.name))
        except Exception as e:  # whatever the node raised: kept, logged
            kept = {(r.point, r.t): r for r in readings[-MAX_PENDING:]}
            self._pending = {**kept, **self._pending}
            self.counters.failed(
                _(
                    "{source}: the node did not take {count} readings ({error});"
                    " {kept} kept for the next try",
                    source=self.name,
                    count=len(readings),
                    error=e,
                    kept=len(kept),
                )
            )

    async def run(self, sink: Sink) -> None:
        flusher = asyncio.create_task(self._flush_every(sink))
        attempt = 0
        try:
            while True:
                try:
                    await self._session()
                except aiomqtt.MqttError as e:
                    self.counters.connected = False
                    self.counters.last_error = str(e)
                    if attempt == 0:
                        log.warning(
                            _("{source}: {error}; reconnecting", source=self.name, error=str(e))
                        )
                    await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                    attempt += 1
                    self.counters.reconnects += 1
                    continue
                attempt = 0
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await asyncio.shield(self.flush(sink))  # what arrived is not lost on a stop

    async def _session(self) -> None:
        c = self.config
        async with aiomqtt.Client(
            c.host,
            c.port,
            username=c.username,
            password=c.password,
            identifier=c.client_id,
            clean_session=c.client_id is None,
            timeout=5,
        ) as client:
            await client.subscribe(c.topic, qos=1)
            self.counters.connected = True
            log.info(_("{source}: subscribed", source=self.name))
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                self.take(data, str(message.topic))

    async def _flush_every(self, sink: Sink) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            await self.flush(sink)
