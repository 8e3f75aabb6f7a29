"""Process settings for a node's work: many short-lived objects per event (parsed envelopes,
rows, payloads) next to long-lived caches."""

from __future__ import annotations

import gc

# The collector's default looks for cycles every 700 allocations, and so walks the caches over
# and over while a batch is applied: every 10,000 takes a sixth off applying (52 to 43 µs per
# envelope, 100,000 of them applied at a city); the log's objects make no cycles worth sooner.
THRESHOLDS = (10_000, 10, 10)


def collect_less() -> None:
    gc.set_threshold(*THRESHOLDS)
