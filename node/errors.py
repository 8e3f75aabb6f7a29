"""Errors of the node application. Domain refusals (``domain.errors``) pass through as they are;
these add what only the application knows: records that do not exist, conflicting writers, and
configuration or storage problems."""

from __future__ import annotations

from domain.errors import DomainError


class NodeError(DomainError):
    """Root of the node's own errors (a ``DomainError`` so edges catch one root)."""


class NotFound(NodeError):
    pass


class Conflict(NodeError):
    """Someone else recorded first: reload and retry."""


class ConfigError(NodeError):
    """The node directory or its configuration is missing or wrong."""
