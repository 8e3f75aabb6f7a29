"""The projections package's one exception root.

ProjectionError
 └── BadFilter        a query filter no query can mean (also a ValueError), with what was
                      wrong and which parameter
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of every error raised by projections/."""


class BadFilter(ProjectionError, ValueError):
    """A query filter that no query can mean; the message names the parameter."""
