"""Widgets of the rollout screen: the swap form, its steps and its gates."""
