"""Datasets and image loading / augmentation utilities for openjepa."""
