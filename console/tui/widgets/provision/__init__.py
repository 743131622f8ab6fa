"""Widgets of plan, apply and destroy."""
