"""Widgets about followed logs."""
