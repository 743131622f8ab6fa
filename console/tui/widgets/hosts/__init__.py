"""Widgets about hosts."""
