"""Vision Transformer encoder built from parts: patch embedding, fixed sin-cos positions, pre-norm blocks.

Follows Dosovitskiy et al. 2021 (ViT) with the I-JEPA conventions (Assran et al. 2023): no class token,
fixed 2-D sin-cos positional embeddings, a final LayerNorm. Every encoder has the same API:

    forward(x, idx=None) -> z        x (B, C, H, W); idx (B, K) patch indices to keep; z (B, N or K, D)
    block_outputs(x, last) -> [z]    the tokens after each of the last `last` blocks, through the final norm
    features(images, pool, k)        frozen pooled features (models/features.py)

The patch embedding is its own module exposing `grid` (the token grid shape) and `num_patches`, so a
3-D tubelet embedding for video (grid (T', H', W')) can sit next to `PatchEmbed2D` and reuse the rest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.models.features import Features


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """Sin-cos embedding of positions `pos` (L,) -> (L, dim); dim must be even."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = pos.double()[:, None] * omega[None, :]  # (L, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_pos_embed(dim: int, grid: tuple[int, ...], extent: tuple[int, ...] | None = None) -> torch.Tensor:
    """Fixed sin-cos positions for a token grid of any rank (2-D images, 3-D videos) -> (prod(grid), dim).

    The channels are split evenly between the axes (each share rounded down to an even number; leftover
    channels are zero), axis 0 first; tokens are enumerated in row-major order over `grid`. With `extent`
    (the training grid), the coordinates of `grid` are spread evenly over 0..extent-1 along each axis: the
    sin-cos analogue of interpolating learned positions, so a low-resolution view spans the same positions.
    """
    per_axis = (dim // len(grid)) // 2 * 2
    extent = grid if extent is None else extent
    axes = [torch.linspace(0, e - 1, g, dtype=torch.float64) if g > 1 else torch.zeros(1, dtype=torch.float64)
            for g, e in zip(grid, extent)]
    coords = torch.meshgrid(*axes, indexing="ij")
    parts = [sincos_1d(per_axis, c.reshape(-1)) for c in coords]
    emb = torch.cat(parts, dim=1)
    if emb.shape[1] < dim:
        emb = F.pad(emb, (0, dim - emb.shape[1]))
    return emb


def gather_tokens(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select tokens: z (B, N, D), idx (B, K) -> (B, K, D)."""
    return torch.gather(z, 1, idx.unsqueeze(-1).expand(-1, -1, z.shape[-1]))


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Pixels of non-overlapping patches: x (B, C, H, W) -> (B, N, C*p*p), tokens in PatchEmbed2D's row-major
    order; each patch flattened as (C, p, p), the layout of PatchEmbed2D's conv weight, so that
    `PatchEmbed2D.proj(x)` token k == `patchify(x, p)[:, k] @ proj.weight.flatten(1).T + proj.bias`."""
    B, C, H, W = x.shape
    p = patch_size
    if H % p or W % p:
        raise ValueError(f"image size {H}x{W} is not divisible by patch_size={p}")
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (B, N, C*p*p)


class PatchEmbed2D(nn.Module):
    """Non-overlapping square patches -> tokens: (B, C, H, W) -> (B, N, D) with N = (H/p)(W/p)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}")
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def reset_parameters(self) -> None:
        """LeCun-normal (std 1/sqrt(fan_in)): patch tokens start at the scale of the sin-cos positions, so an
        untrained encoder's features depend on the image, not only on the position."""
        fan_in = self.proj.weight[0].numel()
        nn.init.trunc_normal_(self.proj.weight, std=fan_in ** -0.5, a=-2 * fan_in ** -0.5, b=2 * fan_in ** -0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, N, D)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None
              ) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v for q, k, v (B, h, N, d) -> (B, h, N, d); a boolean attn_mask (N, N) or
    broadcastable is True where attention is allowed, a float one is added to the scores.

    PyTorch's fused attention kernel for CPU is slow in bf16: its backward took 23 ms per ViT-Tiny layer against
    5 ms for the explicit matmul form (B=128, 3 heads, 49 tokens; 52% of an I-JEPA bf16 step on 2 cores). So on
    CPU with a 16-bit dtype the explicit form runs (bf16 matmuls, bf16 softmax with fp32 accumulation inside
    the kernel); everywhere else (fp32, CUDA's flash / memory-efficient kernels) the fused one does."""
    if q.device.type != "cpu" or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, h, N, N)
    if attn_mask is not None:
        scores = (scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                  else scores + attn_mask.to(scores.dtype))
    return scores.softmax(-1) @ v


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d)
        out = attention(qkv[0], qkv[1], qkv[2], attn_mask)  # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)); x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attn_mask)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights (std 0.02), zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_blocks(blocks: nn.ModuleList) -> None:
    """Scale each block's output projections by 1/sqrt(2*layer) so deep residual streams start tame."""
    for i, blk in enumerate(blocks, start=1):
        blk.attn.proj.weight.data.div_(math.sqrt(2.0 * i))
        blk.mlp[2].weight.data.div_(math.sqrt(2.0 * i))


def run_blocks(blocks: nn.ModuleList, norm: nn.Module, z: torch.Tensor, last: int,
               attn_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    """z through every block; norm(z) after each of the last `last` blocks, oldest first."""
    if not 1 <= last <= len(blocks):
        raise ValueError(f"k={last}: the encoder has {len(blocks)} blocks")
    out = []
    for i, blk in enumerate(blocks):
        z = blk(z, attn_mask)
        if i >= len(blocks) - last:
            out.append(norm(z))
    return out


class VisionTransformer(Features, nn.Module):
    """ViT encoder: x (B, C, H, W) -> tokens z (B, N, D), or only the tokens at `idx` (B, K) -> (B, K, D).

    Inputs of another size (divisible by the patch size; e.g. LeJEPA's local views) get sin-cos positions
    spread over the training grid (`sincos_pos_embed(..., extent=grid)`)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.dim = dim
        self.patch_embed = PatchEmbed2D(img_size, patch_size, in_chans, dim)
        self.grid = self.patch_embed.grid
        self.register_buffer("pos_embed", sincos_pos_embed(dim, self.grid).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        init_weights(self)
        self.patch_embed.reset_parameters()
        rescale_blocks(self.blocks)

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    def pos_embed_for(self, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
        """(1, N, D) positions for a token grid; the training grid's are the stored buffer."""
        if tuple(grid) == tuple(self.grid):
            return self.pos_embed
        return sincos_pos_embed(self.dim, tuple(grid), extent=self.grid).unsqueeze(0).to(device)

    def embed(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Patch tokens + positions, before the blocks: (B, N or K, D)."""
        p = self.patch_embed.proj.kernel_size[0]
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not divisible by the patch size {p}")
        grid = (x.shape[-2] // p, x.shape[-1] // p)
        z = self.patch_embed(x) + self.pos_embed_for(grid, x.device)  # (B, N, D)
        return gather_tokens(z, idx) if idx is not None else z  # (B, K, D)

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        z = self.embed(x, idx)
        for blk in self.blocks:
            z = blk(z)
        return self.norm(z)

    def block_outputs(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        """[(B, N, D)] after each of the last `last` blocks, each through the final norm (oldest first; the last
        is forward(x))."""
        return run_blocks(self.blocks, self.norm, self.embed(x), last)
