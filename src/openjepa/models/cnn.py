"""A small convolutional encoder for low-resolution control observations (PLDM's Two-Rooms encoder is a CNN).

    x (B, C, H, W) -> [conv 3x3 stride 2 -> GroupNorm -> GELU] x depth -> flatten -> linear -> z (B, 1, dim)

It keeps the encoder API of `openjepa.models` (forward(x, idx=None) -> tokens (B, N, D), here N = 1: the whole
observation is one latent state), so the online monitor, `openjepa embed` and export work with it. On 2 CPU
cores it costs ~3 MFLOP per 65x65 frame, far less than a ViT. `patch_size`, `heads` and `mlp_ratio` are accepted
for the constructor signature and unused; the first convolution has `width` channels (default dim // 8, at
least 4), doubling every stage up to 4 * width.
"""

from __future__ import annotations

import torch
from torch import nn

from openjepa.models.features import Features


class ConvEncoder(Features, nn.Module):
    def __init__(self, img_size: int, patch_size: int = 0, in_chans: int = 1, dim: int = 64, depth: int = 4,
                 heads: int = 1, mlp_ratio: float = 4.0, width: int | None = None):
        super().__init__()
        width = width or max(4, dim // 8)
        layers, c, side = [], in_chans, img_size
        for i in range(depth):
            out = width * 2 ** min(i, 2)
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=0 if i == 0 else 1), nn.GroupNorm(4 if out % 4 == 0 else 1, out),
                       nn.GELU()]
            side = (side - 3) // 2 + 1 if i == 0 else (side + 2 - 3) // 2 + 1
            c = out
        if side < 1:
            raise ValueError(f"img_size={img_size} is too small for a {depth}-stage CNN encoder")
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(c * side * side, dim)
        self.dim = dim
        self.feature_shape = (c, side, side)

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is not None:
            raise ValueError("ConvEncoder encodes whole observations; token indices (idx) are not supported")
        h = self.convs(x)  # (B, c, s, s)
        return self.head(h.flatten(1)).unsqueeze(1)  # (B, 1, dim)


class ConvMapEncoder(Features, nn.Module):
    """A latent *map* for control observations (encoder "cnn_map", with the world model's conv predictor):

        x (B, C, H, W) -> [conv 3x3 stride 2 -> GroupNorm -> GELU] x depth -> conv 1x1 -> tokens (B, h*w, dim)

    one `dim`-channel token per cell of an h x w grid (65 px, depth 2: 16 x 16 cells of ~4 px). Unlike the pooled
    "cnn" latent, where an agent is and where the walls are stay at their place in the map, so a convolutional
    predictor applies the same local rule (move, or stop at a wall) anywhere: that is what lets a world model
    plan in layouts it never saw. `map_shape` = (dim, h, w); the world model flattens the map into its state."""

    def __init__(self, img_size: int, patch_size: int = 0, in_chans: int = 1, dim: int = 8, depth: int = 2,
                 heads: int = 1, mlp_ratio: float = 4.0, width: int = 32):
        super().__init__()
        layers, c, side = [], in_chans, img_size
        for i in range(depth):
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=0 if i == 0 else 1), nn.GroupNorm(4, width), nn.GELU()]
            side = (side - 3) // 2 + 1 if i == 0 else (side + 2 - 3) // 2 + 1
            c = width
        if side < 2:
            raise ValueError(f"img_size={img_size} is too small for a {depth}-stage CNN map encoder")
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(4, width), nn.GELU(), nn.Conv2d(width, dim, 1)]
        self.convs = nn.Sequential(*layers)
        self.dim = dim
        self.map_shape = (dim, side, side)

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is not None:
            raise ValueError("ConvMapEncoder encodes whole observations; token indices (idx) are not supported")
        return self.convs(x).flatten(2).transpose(1, 2)  # (B, h*w, dim)
