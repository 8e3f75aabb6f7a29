"""Tests of node/audit: exports, verification, replay and proofs."""
