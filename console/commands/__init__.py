"""One module per subcommand: parse arguments, drive a `cluster` operation, render its events."""
