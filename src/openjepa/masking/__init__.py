"""Mask samplers for JEPA-style training."""
