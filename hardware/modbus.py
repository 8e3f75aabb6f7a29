"""Modbus TCP: ``ModbusSource`` polls a monitoring outstation's registers every AQ 6201 cycle
(≤ 10 s, docs/domain.md §4.2) and delivers one batch per poll; ``ModbusDevice`` is a small
simulated device (a real pymodbus TCP server) for tests and the site simulator.

A poll is all or nothing: a Modbus exception response or a short reply is ``Malformed``,
counted as ``malformed``, and nothing of that poll is delivered; a device that stops answering
or goes away (``ConnectionLost``) is reconnected with backoff (``reconnects``), and no reading is
recorded from a failed poll. A poll the node refuses is counted (``refused``) and one it fails
to take is counted as a failure; neither is kept: the next poll reads the device again. A
configuration that cannot work is ``Misconfigured`` when it is made.

    config = ModbusConfig("130102B0012", "10.0.0.5", points=(
        ModbusPoint("CH4-01", 0, scale=Decimal("0.01"), status_register=1),
        ModbusPoint("T-01", 2, scale=Decimal("0.1"), signed=True, kind="input"),
    ))
    await ModbusSource(config).run(sink)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from domain.base import iso
from domain.i18n import Text, _
from hardware.base import Batch, Counters, Reading, Sink, deliver
from hardware.errors import ConnectionLost, Malformed, Misconfigured

log = logging.getLogger("anjian.hardware.modbus")

Kind = Literal["holding", "input"]
MAX_REGISTERS = 125  # the most registers one read request may ask for (Modbus spec)
BACKOFF_MAX = 20.0  # seconds between reconnect attempts at most (AQ 6201: ≤ 40 s of data lost)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _address(value: int, what: Text) -> None:
    if not 0 <= value <= 0xFFFF:
        raise Misconfigured(
            _("{what} {value} is not a register address (0–65535)", what=what, value=value)
        )


@dataclass(frozen=True)
class ModbusPoint:
    """One measuring point in the device's registers: value = raw × scale in the point's unit
    (scale 0.01 for a register holding %CH4 × 100)."""

    point: str  # 测点编码
    register: int  # 0-based register address, as in the request
    scale: Decimal = Decimal(1)
    signed: bool = False  # the register holds a 16-bit two's complement number
    status_register: int | None = None  # the point's status bits (docs/domain.md §4.3)
    kind: Kind = "holding"  # holding (0x03) or input (0x04) registers

    def __post_init__(self) -> None:
        if not self.point:
            raise Misconfigured(_("a Modbus point needs its point code"))
        _address(self.register, _("{point}: register", point=self.point))
        if self.status_register is not None:
            _address(self.status_register, _("{point}: status register", point=self.point))
        if not isinstance(self.scale, Decimal) or not self.scale.is_finite() or not self.scale:
            raise Misconfigured(
                _(
                    "{point}: scale must be a non-zero Decimal, not {scale!r}",
                    point=self.point,
                    scale=self.scale,
                )
            )
        if self.kind not in ("holding", "input"):
            raise Misconfigured(
                _(
                    "{point}: kind must be 'holding' or 'input', not {kind!r}",
                    point=self.point,
                    kind=self.kind,
                )
            )


@dataclass(frozen=True)
class ModbusConfig:
    site: str
    host: str
    port: int = 502
    unit: int = 1  # the device (slave) id
    interval: float = 10.0  # seconds between polls: the AQ 6201 cycle
    timeout: float = 3.0  # seconds to connect and for each reply
    points: tuple[ModbusPoint, ...] = ()  # at least one

    def __post_init__(self) -> None:
        where = f"modbus {self.host}:{self.port}"  # the adapter, as the configuration names it
        if not self.points:
            raise Misconfigured(_("{where}: no points configured", where=where))
        codes = [p.point for p in self.points]
        if dup := sorted({c for c in codes if codes.count(c) > 1}):
            raise Misconfigured(
                _("{where}: points configured twice: {points}", where=where, points=", ".join(dup))
            )
        if not 0 < self.port <= 0xFFFF:
            raise Misconfigured(_("{where}: port must be 1–65535", where=where))
        if not 0 <= self.unit <= 255:
            raise Misconfigured(
                _("{where}: unit must be 0–255, not {unit}", where=where, unit=self.unit)
            )
        if not (self.interval > 0 and self.timeout > 0):
            raise Misconfigured(
                _("{where}: interval and timeout must be positive seconds", where=where)
            )


@dataclass(frozen=True)
class _Request:
    kind: Kind
    address: int
    count: int


def plan(points: tuple[ModbusPoint, ...]) -> list[_Request]:
    """The read requests covering every register the points need: contiguous addresses of the
    same kind in one request (at most 125 registers), gaps never read."""
    wanted: dict[Kind, set[int]] = {"holding": set(), "input": set()}
    for p in points:
        wanted[p.kind].add(p.register)
        if p.status_register is not None:
            wanted[p.kind].add(p.status_register)
    requests: list[_Request] = []
    for kind, addresses in wanted.items():
        for a in sorted(addresses):
            last = requests[-1] if requests else None
            if (
                last is not None
                and last.kind == kind
                and last.address + last.count == a
                and last.count < MAX_REGISTERS
            ):
                requests[-1] = _Request(kind, last.address, last.count + 1)
            else:
                requests.append(_Request(kind, a, 1))
    return requests


def _exception(code: int) -> str:
    try:
        return f"{code} ({ExcCodes(code).name})"
    except ValueError:
        return str(code)


class ModbusSource:
    """Polls one Modbus TCP device every ``interval`` seconds and delivers one batch per poll,
    timed by ``clock`` (milliseconds since the epoch, UTC) at the start of the poll."""

    def __init__(self, config: ModbusConfig, clock: Callable[[], int] = _now_ms) -> None:
        self.config, self.clock = config, clock
        self.name = f"modbus {config.host}:{config.port} site {config.site}"
        self.counters = Counters()
        self.requests = plan(config.points)
        self._client: AsyncModbusTcpClient | None = None
        self._ever_connected = False
        self._first_delay = min(config.interval, 1.0)
        self._delay = self._first_delay  # the next wait before connecting again
        self._failures = 0  # connection attempts and polls failed in a row

    async def run(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                if not self._is_connected():
                    if self._failures:  # back off: a device down, or up but not answering
                        await asyncio.sleep(self._delay)
                        self._delay = min(self._delay * 2, BACKOFF_MAX)
                    if not await self._connect():
                        self._failures += 1
                        continue
                    due = max(due, loop.time())
                await asyncio.sleep(max(0.0, due - loop.time()))
                if await self._poll(sink):
                    self._failures, self._delay = 0, self._first_delay
                due += self.config.interval
                now = loop.time()
                if due < now:  # a slow poll: skip the ticks missed, keep the cycle's phase
                    due += ((now - due) // self.config.interval + 1) * self.config.interval
        finally:
            self._disconnect()

    # -- connection ---------------------------------------------------------------------------
    def _is_connected(self) -> bool:
        if self._client is not None and self._client.connected:
            return True
        if self.counters.connected:
            self._lost(_("the device closed the connection"))
        return False

    async def _connect(self) -> bool:
        self._disconnect()
        client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            name=self.name,
            timeout=self.config.timeout,
            retries=0,
            reconnect_delay=0,  # reconnection is ours, with our backoff and counters
        )
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as e:  # pymodbus returns False; be sure anyway
            log.debug("%s: connect: %s", self.name, e)
            ok = False
        if not ok:
            client.close()
            cannot = _("{source}: cannot connect", source=self.name)
            self.counters.last_error = str(cannot)
            log.log(
                logging.WARNING if self._failures == 0 else logging.DEBUG,
                _(
                    "{problem}; retrying with backoff ({delay:g} s, doubling up to {most:g} s)",
                    problem=cannot,
                    delay=self._delay,
                    most=BACKOFF_MAX,
                ),
            )
            return False
        self._client = client
        self.counters.connected = True
        if self._ever_connected:
            self.counters.reconnects += 1
            log.info(
                _("{source}: reconnected (unit {unit})", source=self.name, unit=self.config.unit)
            )
        else:
            log.info(
                _("{source}: connected (unit {unit})", source=self.name, unit=self.config.unit)
            )
        self._ever_connected = True
        return True

    def _lost(self, why: Text) -> None:
        self._disconnect()
        lost = _("{source}: connection lost: {why}", source=self.name, why=why)
        self.counters.last_error = str(lost)
        level = logging.WARNING if self._failures == 0 else logging.DEBUG
        log.log(level, _("{problem}; reconnecting", problem=lost))

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.counters.connected = False

    # -- polling ------------------------------------------------------------------------------
    async def _poll(self, sink: Sink) -> bool:
        """One poll; False if the connection was lost on it."""
        t = self.clock()
        poll = _("unit {unit}, the poll at {time}", unit=self.config.unit, time=iso(t))
        try:
            raw = await self._read_all()
        except Malformed as e:
            self.counters.error(
                _(
                    "{source}: {poll}: {problem}; nothing of it recorded",
                    source=self.name,
                    poll=poll,
                    problem=e.text,
                )
            )
            return True
        except ConnectionLost as e:
            self._lost(_("{poll}: {problem}", poll=poll, problem=e.text))
            self._failures += 1
            return False
        readings = tuple(self._reading(p, t, raw) for p in self.config.points)
        try:
            await deliver(self, sink, Batch(self.config.site, readings, poll))
        except Exception as e:  # the sink failed, not the device: count it, log it, poll on
            self.counters.count("failures")
            failed = _("{source}: {poll}: the sink failed", source=self.name, poll=poll)
            self.counters.last_error = f"{failed}: {e!r}"
            log.exception(failed)
        return True

    async def _read_all(self) -> dict[tuple[Kind, int], int]:
        client, unit = self._client, self.config.unit
        if client is None:
            raise ConnectionLost(_("not connected"))
        raw: dict[tuple[Kind, int], int] = {}
        for r in self.requests:
            read = (
                client.read_holding_registers
                if r.kind == "holding"
                else client.read_input_registers
            )
            what = _(
                "{kind} registers {first}–{last} of unit {unit}",
                kind=r.kind,
                first=r.address,
                last=r.address + r.count - 1,
                unit=unit,
            )
            try:
                reply = await read(r.address, count=r.count, device_id=unit)
            except ModbusException as e:
                raise ConnectionLost(
                    _("no valid reply reading {what}: {error}", what=what, error=str(e))
                ) from None
            if reply.isError():
                raise Malformed(
                    _(
                        "exception {code} reading {what}",
                        code=_exception(reply.exception_code),
                        what=what,
                    )
                )
            registers = list(reply.registers)
            if len(registers) != r.count:
                raise Malformed(
                    _(
                        "{count} registers in the reply reading {what}",
                        count=len(registers),
                        what=what,
                    )
                )
            for i, value in enumerate(registers):
                raw[(r.kind, r.address + i)] = value
        return raw

    @staticmethod
    def _reading(p: ModbusPoint, t: int, raw: Mapping[tuple[Kind, int], int]) -> Reading:
        value = raw[(p.kind, p.register)]
        if p.signed and value & 0x8000:
            value -= 0x10000
        status = 0 if p.status_register is None else raw[(p.kind, p.status_register)]
        return Reading(p.point, t, Decimal(value) * p.scale, status)


class ModbusDevice:
    """A simulated Modbus TCP device: one table of ``size`` read-only registers (0 … size−1)
    answered for holding (0x03) and input (0x04) reads alike, as many small outstations do;
    a read beyond it gets an ILLEGAL_ADDRESS exception response.

    The registers hold what ``set(register, raw)`` put there, overlaid with what ``values()``
    returns, called on every read (the device's tick: a site simulator computes its values at
    the moment it is polled; it runs on the event loop, so it must be quick). The device can be
    stopped and started again on the same port (a restart; a new ``size`` takes effect then);
    with ``port=0`` it takes a free port on its first start and keeps it. While ``fault`` holds
    an exception code, every read is answered with that exception response (a device in
    trouble: its sensors' bus down, say)."""

    def __init__(
        self,
        values: Callable[[], Mapping[int, int]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unit: int = 1,
        size: int = 100,
    ) -> None:
        if not 0 < size <= 0x10000:
            raise ValueError(_("size {size}: a device has 1–65536 registers", size=size))
        self.values, self.host, self.port, self.unit, self.size = values, host, port, unit, size
        self._raw: dict[int, int] = {}
        self._server: ModbusTcpServer | None = None
        self.fault: ExcCodes | None = None

    def set(self, register: int, raw: int) -> None:
        """Put a raw value in a register; a negative one is stored as two's complement."""
        self._raw[register] = self._checked(register, raw)

    def _checked(self, register: int, raw: int) -> int:
        if not 0 <= register < self.size:
            raise ValueError(
                _(
                    "register {register} is beyond the device's {size}",
                    register=register,
                    size=self.size,
                )
            )
        if not -0x8000 <= raw <= 0xFFFF:
            raise ValueError(
                _("register {register}: {raw} does not fit 16 bits", register=register, raw=raw)
            )
        return raw & 0xFFFF

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        device = SimDevice(
            id=self.unit,
            simdata=[
                SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS, readonly=True)
            ],
            action=self._on_read,
        )
        server = ModbusTcpServer(device, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            raise OSError(
                _(
                    "the Modbus device cannot listen on {host}:{port}",
                    host=self.host,
                    port=self.port,
                )
            ) from None
        sockets = getattr(server.transport, "sockets", None) or ()
        if sockets and not self.port:
            self.port = int(sockets[0].getsockname()[1])
        self._server = server
        log.info(
            _(
                "modbus device listening on {host}:{port} (unit {unit})",
                host=self.host,
                port=self.port,
                unit=self.unit,
            )
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await server.shutdown()  # type: ignore[no-untyped-call]
        log.info(_("modbus device on {host}:{port} stopped", host=self.host, port=self.port))

    async def __aenter__(self) -> ModbusDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _on_read(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: Any,
    ) -> ExcCodes | None:
        if self.fault is not None:
            return self.fault
        current = dict(self._raw)
        if self.values is not None:
            current.update((r, self._checked(r, v)) for r, v in self.values().items())
        for register, raw in current.items():
            if 0 <= register - start < self.size:
                registers[register - start] = raw
        return None
