"""Errors of the model tooling; each names the file it is about."""

from cluster.errors import MlopsError


class ModelError(MlopsError):
    """A model file cannot be imported, converted, verified or found."""
