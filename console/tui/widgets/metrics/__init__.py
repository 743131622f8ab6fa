"""Widgets that chart one app's live telemetry."""
