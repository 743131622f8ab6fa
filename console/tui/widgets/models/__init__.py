"""Widgets about the model store."""
