"""Running real `anjian` processes for integration tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

SERVING = re.compile(r"on (http://[\d.]+:\d+)/api/v1")


class Server:
    """`anjian serve DIR --port 0` in its own process; ``url`` is read off its log line."""

    def __init__(self, directory: Path, timeout: float = 30.0) -> None:
        self.log = directory / "serve.log"
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "serve", str(directory), "--port", "0"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.url = self._wait_for_url(timeout)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        start = self.log.stat().st_size if self.log.exists() else 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            match = SERVING.search(self.log.read_text()[start:] if start else self.log.read_text())
            if match:
                return match.group(1)
            time.sleep(0.05)
        raise TimeoutError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(10)
