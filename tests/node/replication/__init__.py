"""Tests of node/replication: the verified import, the outbox, the federation view, receipts."""
