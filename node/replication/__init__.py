"""Replication at run time: uplink, receiver and relay, archive, downward stream, history, the
verified import, receipts, the backup follower, restore and recovery, the nats-server runner."""
