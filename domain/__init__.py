"""The pure domain of anjian: aggregates, events and rules. No I/O, nothing of ours imported."""
