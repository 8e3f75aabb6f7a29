"""The node application: wires the domain to the event store, the HTTP API and the CLI."""
