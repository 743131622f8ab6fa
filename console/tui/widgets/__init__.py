"""Widgets, grouped in folders by area."""
