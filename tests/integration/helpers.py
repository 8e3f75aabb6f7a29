"""Running real `anjian` processes for integration tests: the node's own server runner."""

from node.cli.demo import Server

__all__ = ["Server"]
