"""OpenJEPA: Joint-Embedding Predictive Architectures that train on a laptop CPU and scale out."""

from openjepa.version import __version__

__all__ = ["__version__", "load_encoder"]


def load_encoder(path, device="cpu"):
    """Load an encoder written by `openjepa export` (safetensors + config.json); see openjepa.export."""
    from openjepa.export import load_encoder as _load

    return _load(path, device)
