"""Monitoring sites, their points, and the sensor events a supervisor acts on
(docs/domain.md §4–§6).

Raw readings are not log events: they go to the node's local readings store. From them the
domain derives alarms, power cuts and restorations, and a summary per site every 5 minutes that
carries the SHA-256 of the raw readings it covers."""
