"""The README tried as a new user would: in a fresh copy of the repository and a fresh
virtualenv, its two commands work exactly as written, and so does the tour."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from node.replication.natsd import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(marker: str, lang: str = "bash") -> str:
    match = re.search(rf"<!-- readme:{marker} -->\n```{lang}\n(.*?)```", README, re.S)
    assert match, f"README has no '{marker}' command block"
    return match.group(1).strip()


def fresh_copy(target: Path) -> Path:
    """The tracked files of the working tree, as a fresh clone would have them."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)
    return target


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTEST", "ANJIAN_"))
    }
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def test_ci_runs_the_readme_test_command():
    assert block("test") in (ROOT / ".ci" / "run").read_text()


def start_node(repo: Path, port: int) -> subprocess.Popen[bytes]:
    """The README's run command, until its node answers (a fresh virtualenv installs from the
    package index first)."""
    run = subprocess.Popen(
        ["bash", "-c", block("run")],
        cwd=repo,
        env=clean_env(ANJIAN_HTTP_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 540
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2
            ) as r:
                assert r.status == 200
                return run
        except OSError:
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            time.sleep(0.5)
    stop(run)
    pytest.fail("the README's run command did not start a node in time")


def stop(run: subprocess.Popen[bytes]) -> str:
    os.killpg(run.pid, signal.SIGTERM)
    output = run.communicate(timeout=30)[0].decode()
    assert run.returncode == 0, output[-3000:]  # SIGTERM is a clean stop
    return output


def shell(repo: Path, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    return result


# two package installs into fresh virtualenvs: the waits below add up to 540 + 60 + 540 + 120 +
# 120 + 60 + 540 = 1980 s at worst, and the copy of the repository comes before them
@pytest.mark.timeout(2100)
def test_the_readme_commands_work_as_written_and_again(tmp_path):
    repo = fresh_copy(tmp_path / "anjian")
    tracked = {p.name for p in repo.iterdir()}
    port = free_port()
    tour = (block("tour") + "\n" + block("sensors")).replace("127.0.0.1:8640", f"127.0.0.1:{port}")
    printed = block("output", "").splitlines() + block("sensors-output", "").splitlines()
    run = start_node(repo, port)
    try:
        first = shell(repo, tour, 120)
        assert first.stdout.splitlines() == printed  # every line the README says it prints
    finally:
        output = stop(run)
    assert "Traceback" not in output, output[-3000:]
    # the run command again: the node exists, and is served; the tour again: a new token for
    # the clerk, a second accident, the same lines
    run = start_node(repo, port)
    try:
        again = shell(repo, tour, 120)
        assert again.stdout.splitlines() == printed
    finally:
        output = stop(run)
    assert "节点已存在" in output or "already exists" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for _time in (1, 2):  # the auditor's look, also twice
        audit = shell(repo, block("audit"), 120)
        lines = audit.stdout.strip().splitlines()
        assert lines[0].startswith("130102：") and lines[1].startswith("通过：")
        assert lines[-1] == lines[-2] and len(lines[-1]) == 64  # the replay's view is the node's
    # what the tour wrote is in tour/, which git ignores (besides the install's own)
    made = {p.name for p in repo.iterdir()} - tracked
    assert {m for m in made if not m.endswith(".egg-info")} <= {".venv", "tour"}, made
    assert "/tour/" in (repo / ".gitignore").read_text().splitlines()

    tests = subprocess.run(
        ["bash", "-c", block("test")],
        cwd=repo,
        env=clean_env(ANJIAN_README_INNER_RUN="1"),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", tests.stdout)
