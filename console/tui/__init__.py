"""The Textual app: screens and widgets that render the same `cluster` events as the CLI."""
