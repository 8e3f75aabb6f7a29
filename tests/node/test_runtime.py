import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from node import runtime as runtime_mod
from node.runtime import Runtime


async def test_projections_held_by_a_rebuild_wait_and_other_failures_are_errors(
    node, monkeypatch, caplog
):
    """A rebuild copying its tables in holds the projections' file: the projections say they
    wait and go on next round; any other failure is logged as the error it is."""
    failures = iter(
        [sqlite3.OperationalError("database is locked"), sqlite3.OperationalError("disk I/O error")]
    )
    passes: list[int] = []

    def follow_pass() -> int:
        passes.append(1)
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return 0

    monkeypatch.setattr(runtime_mod, "follow_pass", follow_pass)
    rt = Runtime(node)
    rt.projector.shutdown()
    rt.projector = ThreadPoolExecutor(1)  # type: ignore[assignment]
    caplog.set_level(logging.INFO, logger="anjian")
    task = asyncio.ensure_future(rt.follow_projections(interval=0.01))
    while len(passes) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    rt.projector.shutdown()
    rt.writer.shutdown()
    rt.readers.shutdown()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "projections" in r.getMessage()]
    assert said[0][0] == logging.WARNING and "wait" in said[0][1]
    assert said[1][0] == logging.ERROR and "could not apply" in said[1][1]
