"""Widgets about the rollout history."""
