"""Datasets and Lightning data modules: genome windows, labels, curricula."""
