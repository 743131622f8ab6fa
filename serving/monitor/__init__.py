"""Accuracy monitoring: predictions joined with ground-truth labels that arrive later."""
