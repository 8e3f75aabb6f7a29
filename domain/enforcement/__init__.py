"""Enforcement cases (行政执法, docs/domain.md §3): an inspection, the hazards it finds, on-site
measures and rectification orders, re-inspection, and when needed a penalty case from filing
(立案) to execution and closing. Owned by the node of the bureau that inspects."""
