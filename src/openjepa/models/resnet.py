"""A small ResNet for images with a token grid (encoder "resnet"): the convolutional option of I-JEPA, LeJEPA and
MAE, with the encoder API of `openjepa.models` (forward(x, idx=None) -> tokens (B, N, D); features(images, pool)).

    x (B, C, H, W) -> stem (stride s) -> stage 0 blocks -> [downsample 2x -> stage blocks] x (S - 1)
                   -> LayerNorm -> z (B, N, D),  N = (H/p)(W/p) cells of the last stage, p = model.patch_size

Pre-activation residual blocks (He et al. 2016, "Identity Mappings in Deep Residual Networks"):
h + conv3x3(GELU(norm(conv3x3(GELU(norm(h)))))). The total stride is the patch size, so output cell k is the
token of patch k of a ViT with the same patch size: masks, predictor positions and MAE's pixel targets index the
same grid. p = s * 2^(S-1) with at most 3 downsamples (S <= 4 stages); the stem is a 3x3 conv at stride 1 or,
for s > 1, a non-overlapping s x s patchify conv (ConvNeXt's stem). Stage widths double up to model.dim
(dim/4, dim/2, dim for patch 4; at least min(dim, 16)); model.depth residual blocks are spread over the stages,
the remainder going to the last ones. Downsampling is a LayerNorm then a 2x2 stride-2 conv.

Masked (sparse) encoding, `forward(x, idx)`: the tokens at idx (B, K) of the image *seen only through the patches
at idx*, as a ViT given the same idx: I-JEPA's context encoder must not see the target blocks. Pixels outside the
kept patches are zeroed (0 is mid-grey in the normalised [-1, 1] pixels), which alone hides their content. But
then the convolutions' biases and the norms turn the zeroed region into activations that no real image makes,
and the receptive field carries them across the mask border into the kept cells next to it: a masked-image CNN
(Kalapos & Gyires-Tóth 2024, CNN-JEPA) encodes the mask's shape into its border tokens, a pattern the full-image
target encoder and evaluation never see. So every convolution's input is re-masked to the kept cells at its
resolution, as SparK's sparse convolutions (Tian et al. 2023, "Designing BERT for Convolutional Networks"): a
masked region then acts exactly as the zero padding beyond an image border, which the network sees on every
image, and a kept rectangle is encoded exactly as if it were the whole image (tests/test_resnet.py). Each cell
at every resolution lies inside one patch (all strides divide the patch size), so the masks are exact. A
masked region still costs its full convolutions (no compute is saved, unlike the ViT's dropped tokens).

Normalisation: a LayerNorm over the channels at each position (ConvNeXt's channels-first LayerNorm), not
BatchNorm or GroupNorm. BatchNorm couples the images of a batch (noisy at small per-device batches, and a
cross-sample shortcut), would mix masked zeros into its statistics so that the masked context encoder and the
full-image EMA target see different normalisations, and adds running statistics to the EMA. GroupNorm pools
over all positions of an image, so the masked region (its size, its zero fill) would shift the normalisation of
every context cell, far beyond the receptive field. A per-position norm has neither problem.

`block_outputs(x, last)` (pool="lastk"): the tokens after each of the last `last` residual blocks, oldest first,
each LayerNormed over its channels (the final norm's affine for last-stage blocks, none for earlier ones, whose
width differs); features(pool="lastk", k) is (N, sum of those blocks' widths), = k * dim when the last k blocks
are all in the last stage. k=1 is pool="mean". No positional embeddings: any input whose sides are multiples of
p is encoded (LeJEPA's local views).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.models.features import Features
from openjepa.models.vit import gather_tokens

MAX_DOWNSAMPLES = 3  # stride beyond 2^3 goes to the stem, so small images keep >= 1 full-resolution stage


def channel_norm(norm: nn.LayerNorm, h: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of each position: h (B, C, H, W) -> (B, C, H, W)."""
    return norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def masked(h: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    """h (B, C, H, W) zeroed outside the kept cells m (B, 1, H, W) (m None: everything is kept)."""
    return h if m is None else h * m


class ResBlock(nn.Module):
    """Pre-activation basic block at constant width: h + conv(GELU(norm(conv(GELU(norm(h))))))."""

    def __init__(self, width: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = nn.LayerNorm(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        r = self.conv1(masked(F.gelu(channel_norm(self.norm1, h)), m))
        return h + self.conv2(masked(F.gelu(channel_norm(self.norm2, r)), m))


class Downsample(nn.Module):
    """LayerNorm, then a 2x2 stride-2 conv: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm = nn.LayerNorm(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 2, stride=2)

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(masked(channel_norm(self.norm, h), m))


class ResNetEncoder(Features, nn.Module):
    """x (B, C, H, W) -> tokens z (B, N, dim), or the tokens at idx (B, K) of x seen through those patches only
    (B, K, dim); see the module docstring. `heads` and `mlp_ratio` are accepted for the encoder signature and
    unused (the config refuses setting them with model.encoder=resnet)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int, depth: int, heads: int = 1,
                 mlp_ratio: float = 4.0):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        downs = 0
        while downs < MAX_DOWNSAMPLES and patch_size % 2 ** (downs + 1) == 0:
            downs += 1
        stem_stride = patch_size // 2 ** downs
        n_stages = downs + 1
        widths = [max(dim >> (downs - i), min(dim, 16)) for i in range(n_stages)]
        counts = [depth // n_stages + (i >= n_stages - depth % n_stages) for i in range(n_stages)]
        self.dim, self.patch_size = dim, patch_size
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.widths, self.counts = widths, counts
        k = 3 if stem_stride == 1 else stem_stride
        self.stem = nn.Conv2d(in_chans, widths[0], k, stride=stem_stride, padding=1 if stem_stride == 1 else 0)
        self.downs = nn.ModuleList(Downsample(widths[i - 1], widths[i]) for i in range(1, n_stages))
        self.stages = nn.ModuleList(nn.ModuleList(ResBlock(w) for _ in range(c)) for w, c in zip(widths, counts))
        self.norm = nn.LayerNorm(dim)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def _masks(self, x: torch.Tensor, idx: torch.Tensor | None) -> list[torch.Tensor | None]:
        """The kept cells at the input and at each stage's resolution: [(B, 1, H, W), (B, 1, H/s, W/s), ...]
        (all None without idx). Every cell of every resolution lies inside one patch, so each mask is exact."""
        n_levels = len(self.stages) + 1
        if idx is None:
            return [None] * n_levels
        p = self.patch_size
        gh, gw = x.shape[-2] // p, x.shape[-1] // p
        keep = x.new_zeros(x.shape[0], gh * gw).scatter_(1, idx, 1.0).view(-1, 1, gh, gw)  # (B, 1, gh, gw)
        cells = [p] + [2 ** (len(self.stages) - 1 - i) for i in range(len(self.stages))]  # pixels per patch side
        return [keep.repeat_interleave(c, 2).repeat_interleave(c, 3) for c in cells]

    def _trunk(self, x: torch.Tensor, idx: torch.Tensor | None, last: int = 0
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """-> the last stage's map (B, dim, h, w) and the normed tokens after each of the last `last` blocks."""
        p = self.patch_size
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not divisible by the patch size {p}")
        masks = self._masks(x, idx)
        h = self.stem(masked(x, masks[0]))
        total, seen, outs = sum(self.counts), 0, []
        for s, blocks in enumerate(self.stages):
            if s:
                h = self.downs[s - 1](h, masks[s])  # its conv reads stage s-1's cells
            for blk in blocks:
                h = blk(h, masks[s + 1])
                seen += 1
                if seen > total - last:
                    tok = h.flatten(2).transpose(1, 2)  # (B, N_s, C_s)
                    final = s == len(self.stages) - 1
                    outs.append(self.norm(tok) if final else F.layer_norm(tok, tok.shape[-1:]))
        return h, outs

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        h, _ = self._trunk(x, idx)
        z = self.norm(h.flatten(2).transpose(1, 2))  # (B, N, dim)
        return gather_tokens(z, idx) if idx is not None else z  # (B, K, dim)

    def block_outputs(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        """[(B, N_s, C_s)] after each of the last `last` residual blocks, normed (oldest first; the last equals
        forward(x))."""
        if not 1 <= last <= sum(self.counts):
            raise ValueError(f"k={last}: the encoder has {sum(self.counts)} blocks")
        return self._trunk(x, None, last)[1]
