"""Widgets about apps across the fleet."""
