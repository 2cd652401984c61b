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
