"""Federation: signed envelopes, keys and trust, NATS JetStream replication, audit."""
