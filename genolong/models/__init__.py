"""One backbone with a mixer pattern, its configuration, heads and presets."""
