"""Every anjian command, and a serving node's projections process, collect cycles less often
than Python's default (a node allocates many short-lived objects per event)."""

import gc

from click.testing import CliRunner

from node import config as config_mod
from node.cli.main import main
from node.projector import projections_process
from node.tuning import THRESHOLDS


def test_a_command_and_the_projections_process_collect_less(node_dir):
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert CliRunner().invoke(main, ["status", str(node_dir)]).exit_code == 0
        assert gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*before)
    process = projections_process(config_mod.load(node_dir, environ={}))
    try:
        assert process.submit(gc.get_threshold).result(60) == THRESHOLDS
    finally:
        process.shutdown()
