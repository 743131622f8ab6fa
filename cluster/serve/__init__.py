"""Talking to Ray Serve from the console: declarative configs and the dashboard's REST API."""
