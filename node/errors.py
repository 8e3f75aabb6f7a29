"""Errors of the node application. Domain refusals (``domain.errors``) pass through as they are;
these add what only the application knows: records that do not exist, conflicting writers, and
configuration or storage problems.

    domain.errors.DomainError      what every edge (HTTP, CLI) answers as a refusal
     ├── Invalid, Refused          the domain's own (bad input; the law says no)
     └── NodeError                 root of the node's own errors
          ├── NotFound             no such record                              (HTTP 404)
          ├── Conflict             someone else recorded first: reload, retry  (HTTP 409)
          └── ConfigError          the node directory, its configuration or its store is
                                   missing or wrong                            (CLI exit 1)

NodeError stands under DomainError so that an edge catches one root for everything a user is
told; the other packages have their own roots (``federation.errors.FederationError``,
``projections.errors.ProjectionError``, ``hardware.errors.HardwareError``), which the node
turns into these where they reach a user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.errors import DomainError
from domain.errors import said as said  # re-exported: the node's modules import it here
from domain.i18n import Joined, Text


class NodeError(DomainError):
    """Root of the node's own errors (a ``DomainError`` so edges catch one root)."""


class NotFound(NodeError):
    """No such record."""

    code = "not_found"


class Conflict(NodeError):
    """Someone else recorded first: reload and retry."""

    code = "conflict"


class ConfigError(NodeError):
    """The node directory or its configuration is missing or wrong."""

    code = "config"


# -- messages made of other messages -----------------------------------------------------------
def Listed(items: Iterable[Any]) -> Text:
    """Several messages read as one: separated by semicolons (；in Chinese), each read in the
    reader's language."""
    return Joined(items, en="; ", zh="；")
