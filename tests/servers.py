"""Real servers for tests, each started on a free port in its own temporary directory and
awaited until it answers. A missing binary skips the test with the reason outside CI and fails
it in CI (where .ci/run installs it).

And the processes a test starts: every one ends with the test, passed or failed, and so do
their children and grandchildren, even orphaned ones (see ``Processes``)."""

from __future__ import annotations

import contextlib
import functools
import glob
import multiprocessing.resource_tracker
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from node.replication.natsd import free_port


def missing(what: str, install: str) -> None:
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Deadline:
    """A budget of seconds shared by several waits, each taking at most what is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, at_most: float | None = None) -> float:
        left = max(0.0, self.end - time.monotonic())
        return left if at_most is None else min(left, at_most)


# -- the processes a test starts ---------------------------------------------------------------
# While a test runs, TAG=<its mark> is in this process's environment, so every process it starts
# carries it, and so do theirs (a serving node's projections process, the demo's nats-servers and
# nodes), orphaned or not: at the test's teardown they are found by it in /proc and ended, with
# any descendant whose environment does not show it (PostgreSQL rewrites its own). A server that
# outlives the test starting it (the session's PostgreSQL) is started with ``lasting_env()``.
TAG = f"TESTS_STARTED_BY_{os.getpid()}"
SESSION = "session"


def lasting_env() -> dict[str, str]:
    """The environment for a process its fixture ends, not the test that happens to start it."""
    return {**os.environ, TAG: SESSION}


def _table() -> dict[int, tuple[int, str | None]]:
    """Running processes (zombies are ended ones): pid → (parent pid, its TAG value or None)."""
    key = TAG.encode() + b"="
    found: dict[int, tuple[int, str | None]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            state, ppid = stat[stat.rindex(b")") + 2 :].split()[:2]
            environ = b""
            with contextlib.suppress(OSError), open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()  # another user's: readable by root only
        except (OSError, ValueError):
            continue  # ended meanwhile
        if state in (b"Z", b"X"):
            continue
        mark = next((v[len(key) :] for v in environ.split(b"\0") if v.startswith(key)), None)
        found[int(name)] = (int(ppid), None if mark is None else mark.decode(errors="replace"))
    return found


def descendants(pid: int) -> set[int]:
    """The running processes below ``pid``: its children, theirs, and so on."""
    children: dict[int, set[int]] = {}
    for child, (parent, _) in _table().items():
        children.setdefault(parent, set()).add(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), set()) - found:
            found.add(child)
            todo.append(child)
    return found


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (an ended one waiting to be reaped is not)."""
    return pids & set(_table())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _children() -> set[int]:
    """This process's children (a multiprocessing worker is started without Popen)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _tracker() -> set[int]:
    """multiprocessing's resource tracker of this process: its own, shared by all its tests."""
    pid = getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)
    return set() if pid is None else {pid}


def _ancestors() -> set[int]:
    """This process and those above it (an outer pytest, the shell): never ended here."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            pid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError):
            break
    return found


class Processes:
    """The processes one test started (``mark``; None: any this pytest started), and their
    descendants; ``end()`` stops them, SIGTERM then SIGKILL."""

    def __init__(self, mark: str | None) -> None:
        self.mark = mark
        self.popens: list[subprocess.Popen[bytes]] = []

    def running(self) -> set[int]:
        table = _table()
        spared = _ancestors() | _tracker()
        roots = {
            pid
            for pid, (_, mark) in table.items()
            if mark is not None and (mark == self.mark or self.mark is None)
        }
        roots |= {p.pid for p in self.popens if p.returncode is None and p.pid in table}
        children: dict[int, set[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, set()).add(pid)
        found: set[int] = set()
        todo = list(roots)
        while todo:
            pid = todo.pop()
            if pid not in found and pid not in spared:
                found.add(pid)
                todo.extend(children.get(pid, ()))
        return found

    def end(self, grace: float = 5.0) -> list[str]:
        """Stop every one still running; returns their command lines."""
        if self.mark is not None and not self.popens and not _children() - _tracker():
            return []  # it started nothing (most tests): no need to look through /proc
        found = self.running()
        ended = [f"{pid} {_cmdline(pid)}" for pid in sorted(found)]
        sig = signal.SIGTERM
        for _ in range(4):  # again while any is left: a parent may have started another
            if not found:
                break
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            wait_until(lambda pids=found: not pids & set(_table()), grace)
            sig = signal.SIGKILL
            found = self.running()
        for p in self.popens:  # reaped, so none warns of a subprocess still running
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(0.5 if p.poll() is None else 0)
        return ended


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


@contextlib.contextmanager
def ended_with(mark: str) -> Iterator[Processes]:
    """Processes started inside this context are marked ``mark`` and ended when it exits."""
    processes = Processes(mark)
    popen = subprocess.Popen
    original = popen.__init__

    @functools.wraps(original)
    def init(self: subprocess.Popen[bytes], *args: object, **kwargs: object) -> None:
        env = kwargs.get("env")
        if isinstance(env, dict) and TAG not in env:  # its own environment: marked all the same
            kwargs["env"] = env = {**env, TAG: mark}
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        if (env if isinstance(env, dict) else os.environ).get(TAG) == mark:
            processes.popens.append(self)

    previous = os.environ.get(TAG)
    os.environ[TAG] = mark
    popen.__init__ = init  # type: ignore[method-assign]
    try:
        yield processes
    finally:
        popen.__init__ = original  # type: ignore[method-assign]
        if previous is None:
            del os.environ[TAG]
        else:
            os.environ[TAG] = previous
        if ended := processes.end():  # shown with the test's report when it fails
            print("ended at teardown:", *ended, sep="\n  ", file=sys.stderr)


def stop_process(
    proc: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    grace: float = 15.0,
    group: bool = False,
) -> None:
    """Stop a server: ``sig``, then SIGKILL after ``grace`` seconds; with ``group`` (it was
    started with start_new_session=True) SIGKILL to its whole process group in any case, for
    what it started (a group outlives its leader)."""
    if proc.returncode is None:  # not reaped: its pid (and group id) are still its own
        with contextlib.suppress(OSError):
            os.kill(proc.pid, sig)
        ended = wait_until(lambda: _exited(proc.pid), grace)
        with contextlib.suppress(OSError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            elif not ended:
                os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _exited(pid: int) -> bool:
    """Whether a child has ended, without reaping it (so its pid is not yet free for another)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


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
            env=lasting_env(),  # the session's: its fixture stops it, not the first test using it
            start_new_session=True,  # runuser, postgres and its backends: one group to end
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with {self.proc.returncode}")
            pg_isready = [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
            return subprocess.run(pg_isready, capture_output=True, timeout=10).returncode == 0

        try:
            if not wait_until(ready, 30, interval=0.1):
                raise RuntimeError("PostgreSQL did not start within 30s")
        except BaseException:
            self.stop()
            raise

    def _run(self, tool: str, *args: str) -> None:
        # initdb, createdb: seconds; a test's first database waits 40 + 30 + 30 s at most
        subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=40 if tool == "initdb" else 30,
        )

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "anjian", name)
        return name

    def stop(self) -> None:
        stop_process(self.proc, grace=30, group=True)
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
        self.stop()
        raise RuntimeError(f"mosquitto did not start within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)
