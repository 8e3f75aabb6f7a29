"""The `anjian` command line: the click group, one module per command group, and the demo."""
