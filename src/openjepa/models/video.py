"""Video encoder and frame-causal predictor (V-JEPA, Bardes et al. 2024), built from the ViT parts.

    TubeletEmbed     x (B, C, T, H, W) -> tokens (B, N, D), N = (T/t)(H/p)(W/p); non-overlapping t x p x p tubelets,
                     embedded linearly or by a hierarchical MLP stem (each token sees only its own tubelet)
    VideoTransformer forward(x, idx=None) -> z (B, N or K, D): tubelets + fixed 3-D sin-cos positions + ViT blocks;
                     block_outputs and features(clips, pool, k) as the image ViT (models/features.py)
    CausalPredictor  forward(z_ctx, ctx_idx, tgt_idx) -> (B, M, Kt, out): mask-token predictor whose attention is
                     frame-causal: a token at time slice s attends only to tokens at slices <= s

Tokens are enumerated row-major over the grid (T', h, w): token k sits at time slice k // (h*w). Because the
predictor is frame-causal, a prediction for a token at slice s is a function of the context tokens at slices
<= s alone: changing a frame of a later slice cannot change it (tests/test_video_model.py).
"""

from __future__ import annotations

import torch
from torch import nn

from openjepa.models.features import Features
from openjepa.models.predictor import MaskTokenPredictor
from openjepa.models.vit import (Block, gather_tokens, init_weights, rescale_blocks, run_blocks,
                                 sincos_pos_embed)


def patchify3d(x: torch.Tensor, tubelet: int, patch_size: int) -> torch.Tensor:
    """Pixels of each tubelet: x (B, C, T, H, W) -> (B, N, C*t*p*p), tokens in TubeletEmbed's order, each
    tubelet flattened as (C, t, p, p) (the layout of TubeletEmbed's Conv3d weight)."""
    B, C, T, H, W = x.shape
    t, p = tubelet, patch_size
    if T % t or H % p or W % p:
        raise ValueError(f"video {T}x{H}x{W} is not divisible by the tubelet {t}x{p}x{p}")
    x = x.reshape(B, C, T // t, t, H // p, p, W // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T', h, w, C, t, p, p)
    return x.reshape(B, (T // t) * (H // p) * (W // p), C * t * p * p)


class HMLPEmbed(nn.Module):
    """Hierarchical MLP stem (Touvron et al. 2022) on tubelets: x (B, C, T, H, W) -> (B, N, D) in TubeletEmbed's
    token order. Each p x p patch (p = 2^k) is merged 2 x 2 at a time: every merge but the last maps the 2 x 2
    block's features (per frame) to `width` channels followed by GELU, the last maps the tubelet's t frames of
    2 x 2 blocks to D. All maps act inside one tubelet, so a token sees only its own pixels (masking and
    frame-causality hold as with the linear embedding), but faint or thin details get a non-linear detector
    before they are mixed into one vector. Implemented as Linear layers on reshaped pixels (fast on CPU)."""

    def __init__(self, in_chans: int, dim: int, patch_size: int, tubelet: int, width: int):
        super().__init__()
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"the hmlp stem needs a power-of-two patch size >= 2, got {patch_size}")
        self.p, self.t = patch_size, tubelet
        merges = patch_size.bit_length() - 1  # log2(p)
        c, layers = in_chans, []
        for _ in range(merges - 1):
            layers.append(nn.Linear(4 * c, width))
            c = width
        self.merges = nn.ModuleList(layers)
        self.out = nn.Linear(tubelet * 4 * c, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        t, p = self.t, self.p
        z = patchify3d(x, t, p).view(B, -1, C, t, p, p).permute(0, 1, 3, 4, 5, 2)  # (B, N, t, p, p, C)
        for lin in self.merges:
            s = z.shape[3] // 2
            z = z.reshape(*z.shape[:3], s, 2, s, 2, z.shape[-1]).permute(0, 1, 2, 3, 5, 4, 6, 7)
            z = nn.functional.gelu(lin(z.reshape(*z.shape[:5], -1)))  # (B, N, t, s, s, width)
        return self.out(z.reshape(B, z.shape[1], -1))  # (B, N, t * 2 * 2 * c) -> (B, N, D)


class TubeletEmbed(nn.Module):
    """(B, C, T, H, W) -> (B, N, D). stem "linear": one Conv3d of kernel = stride = (tubelet, p, p) (V-JEPA);
    stem "hmlp": HMLPEmbed (a non-linear embedding that still sees one tubelet per token)."""

    def __init__(self, img_size: int, frames: int, patch_size: int, tubelet: int, in_chans: int, dim: int,
                 stem: str = "linear"):
        super().__init__()
        if img_size % patch_size or frames % tubelet:
            raise ValueError(f"clip {frames}x{img_size}x{img_size} is not divisible by the tubelet "
                             f"{tubelet}x{patch_size}x{patch_size}")
        self.tubelet, self.patch_size = tubelet, patch_size
        self.grid = (frames // tubelet, img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        if stem == "linear":
            self.proj = nn.Conv3d(in_chans, dim, kernel_size=(tubelet, patch_size, patch_size),
                                  stride=(tubelet, patch_size, patch_size))
        elif stem == "hmlp":
            self.proj = HMLPEmbed(in_chans, dim, patch_size, tubelet, width=max(dim // 4, 1))
        else:
            raise ValueError(f"unknown stem {stem!r}; choose linear or hmlp")

    def reset_parameters(self) -> None:
        """LeCun-normal, as PatchEmbed2D: tokens start at the scale of the positions (hmlp: each layer LeCun-normal;
        the GELUs leave its tokens ~1/3 of the linear embedding's scale at init, on unit-variance pixels)."""
        for layer in [m for m in self.proj.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]:
            fan_in = layer.weight[0].numel()
            nn.init.trunc_normal_(layer.weight, std=fan_in ** -0.5, a=-2 * fan_in ** -0.5, b=2 * fan_in ** -0.5)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.proj, HMLPEmbed):
            return self.proj(x)
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, T', h, w) -> (B, N, D)


class VideoTransformer(Features, nn.Module):
    """Video ViT: x (B, C, T, H, W) -> z (B, N, D), or only the tokens at idx (B, K) -> (B, K, D) (gathered before
    the blocks, so the other tokens' pixels cannot reach the output). Clips of another length (a multiple of
    the tubelet; same H, W) get sin-cos positions for their own number of time slices."""

    def __init__(self, img_size: int, frames: int, patch_size: int, tubelet: int, in_chans: int, dim: int,
                 depth: int, heads: int, mlp_ratio: float = 4.0, stem: str = "linear"):
        super().__init__()
        self.dim = dim
        self.patch_embed = TubeletEmbed(img_size, frames, patch_size, tubelet, in_chans, dim, stem)
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

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tubelet tokens + positions before the blocks, (B, N, D), and their grid (T', h, w)."""
        if x.dim() != 5:
            raise ValueError(f"expected a video batch (B, C, T, H, W), got shape {tuple(x.shape)}")
        t, p = self.patch_embed.tubelet, self.patch_embed.patch_size
        grid = (x.shape[2] // t, x.shape[3] // p, x.shape[4] // p)
        if grid[1:] != self.grid[1:]:
            raise ValueError(f"video frames {tuple(x.shape[3:])} differ from the model's "
                             f"{self.grid[1] * p}x{self.grid[2] * p}")
        pos = self.pos_embed if grid == self.grid else sincos_pos_embed(self.dim, grid).unsqueeze(0).to(x.device)
        return self.patch_embed(x) + pos, grid  # (B, N, D)

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """causal: frame-causal attention (a token at slice s sees only tokens at slices <= s), so the output at
        slice s is a function of the frames up to s alone."""
        z, grid = self.embed(x)
        if idx is not None:
            z = gather_tokens(z, idx)  # (B, K, D)
        mask = None
        if causal:
            hw = grid[1] * grid[2]
            slices = (idx if idx is not None else torch.arange(z.shape[1], device=z.device).expand(z.shape[0], -1)) // hw
            mask = (slices[:, None, :] <= slices[:, :, None]).unsqueeze(1)  # (B, 1, K, K)
        for blk in self.blocks:
            z = blk(z, mask)
        return self.norm(z)

    def block_outputs(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        """[(B, N, D)] after each of the last `last` blocks, through the final norm (models/features.py)."""
        return run_blocks(self.blocks, self.norm, self.embed(x)[0], last)


class CausalPredictor(MaskTokenPredictor):
    """Narrow mask-token predictor with frame-causal attention over a (T', h, w) token grid.

    z_ctx (B, Kc, D) at ctx_idx (B, Kc); M target sets tgt_idx (B, M, Kt) -> predictions (B, M, Kt, out_dim or D).
    Each target set is predicted in its own sequence [context; mask tokens] (B*M, Kc + Kt, Dp), as in I-JEPA;
    in it, token i may attend to token j only if slice(j) <= slice(i)."""

    def __init__(self, grid: tuple[int, int, int], dim: int, pred_dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0, out_dim: int | None = None, next_step: bool = False):
        super().__init__(grid, dim, pred_dim, depth, heads, mlp_ratio, out_dim)
        self.per_slice = grid[1] * grid[2]
        self.next_step = next_step  # video.mask=next: see next_step_mask

    def attention_mask(self, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        return self.next_step_mask(ctx_idx, tgt_idx) if self.next_step else self.causal_mask(ctx_idx, tgt_idx)

    def next_step_mask(self, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """(B*M, 1, L, L) bool for teacher-forced next-slice prediction, where the context may hold every slice:
        a context token sees context tokens at slices <= its own; a mask token at slice s sees context tokens at
        slices < s and the mask tokens of slice s. So the prediction of slice s never sees slice s or later."""
        B, M, Kt = tgt_idx.shape
        Kc = ctx_idx.shape[1]
        slices = (torch.cat([ctx_idx.unsqueeze(1).expand(-1, M, -1), tgt_idx], dim=2) // self.per_slice).flatten(0, 1)
        is_ctx = torch.arange(Kc + Kt, device=slices.device) < Kc  # (L,)
        q, k = slices[:, :, None], slices[:, None, :]  # (B*M, L, 1), (B*M, 1, L)
        qc, kc = is_ctx[None, :, None], is_ctx[None, None, :]
        allowed = (qc & kc & (k <= q)) | (~qc & kc & (k < q)) | (~qc & ~kc & (k == q))
        return allowed.unsqueeze(1)

    def causal_mask(self, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """(B*M, 1, L, L) bool, True where attention is allowed: key slice <= query slice."""
        B, M, Kt = tgt_idx.shape
        slices = torch.cat([ctx_idx.unsqueeze(1).expand(-1, M, -1), tgt_idx], dim=2) // self.per_slice  # (B, M, L)
        slices = slices.flatten(0, 1)  # (B*M, L)
        return (slices[:, None, :] <= slices[:, :, None]).unsqueeze(1)
