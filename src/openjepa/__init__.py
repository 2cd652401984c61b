"""OpenJEPA: Joint-Embedding Predictive Architectures that train on a laptop CPU and scale out."""

__version__ = "0.1.0"
