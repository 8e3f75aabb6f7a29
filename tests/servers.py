"""Real servers for tests, each started on a free port in its own temporary directory and
awaited until it answers. A missing binary skips the test with the reason outside CI and fails
it in CI (where .ci/run installs it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from node.replication.natsd import free_port


def missing(what: str, install: str) -> None:
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Postgres:
    """A private PostgreSQL cluster: initdb into a temporary directory, trust auth on 127.0.0.1."""

    def __init__(self) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        bindir = Path(bindirs[-1]) if bindirs else None
        if bindir is None or not (bindir / "initdb").exists():
            missing("PostgreSQL", "apt-get install -y postgresql")
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        # its own directory outside pytest's (which is private to root): postgres must reach it
        self.root = Path(tempfile.mkdtemp(prefix="anjian-pg-"))
        root = self.root
        self.data = root / "pgdata"
        self.data.mkdir(parents=True)
        # PostgreSQL refuses to run as root: run it as the 'postgres' system user then.
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                missing("runuser", "apt-get install -y util-linux")
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "anjian",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                str(bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.data}",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.1)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args], check=True, capture_output=True
        )

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "anjian", name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)


class Mosquitto:
    """A private MQTT broker on 127.0.0.1, anonymous, persistent in its own directory (so a
    restart keeps sessions and queued QoS 1 messages); stop and start keep the port."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
        )
        if binary is None:
            missing("mosquitto", "apt-get install -y mosquitto")
        assert binary is not None
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {directory}/\nautosave_interval 1\n"
            f"log_dest file {directory}/mosquitto.log\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
