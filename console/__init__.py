"""Presentation: the Textual app and the headless CLI, rendering `cluster` events."""
