"""Masks over a video token grid (T', h, w), tokens row-major (token k at time slice k // (h*w)).

    future_masks   V-JEPA-style future prediction: context = every token of the first `ctx_slices` slices,
                   one target set = every token of the later slices: ctx_idx (B, ctx_slices*h*w), tgt_idx (B, 1, rest)
    next_masks     teacher-forced next-slice prediction: context = every token, one target set = every token of the
                   slices from `first` on (each predicted from the slices before it; the predictor's `next_step`
                   mask): ctx_idx (B, T'*h*w), tgt_idx (B, 1, (T'-first)*h*w)
    TubeMasker     V-JEPA's 3-D multi-block masks (Bardes et al. 2024): 2-D multi-block masks (I-JEPA's sampler on
                   the (h, w) grid) extended over all time slices, so each block is a tube spanning the clip:
                   ctx_idx (B, T'*Kc2), tgt_idx (B, M, T'*Kt2)
"""

from __future__ import annotations

import torch

from openjepa.masking.blocks import MultiBlockMasker


def future_masks(batch: int, grid: tuple[int, int, int], ctx_slices: int) -> tuple[torch.Tensor, torch.Tensor]:
    T, h, w = grid
    if not 0 < ctx_slices < T:
        raise ValueError(f"ctx_slices must lie in (0, {T}), got {ctx_slices}")
    n_ctx = ctx_slices * h * w
    ctx = torch.arange(n_ctx).expand(batch, -1)
    tgt = torch.arange(n_ctx, T * h * w).expand(batch, 1, -1)
    return ctx.contiguous(), tgt.contiguous()


def next_masks(batch: int, grid: tuple[int, int, int], first: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    T, h, w = grid
    if not 0 < first < T:
        raise ValueError(f"first must lie in (0, {T}), got {first}")
    ctx = torch.arange(T * h * w).expand(batch, -1)
    tgt = torch.arange(first * h * w, T * h * w).expand(batch, 1, -1)
    return ctx.contiguous(), tgt.contiguous()


def extend_over_time(idx2d: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Flat 2-D patch indices (..., K) -> the same patches at every time slice (..., T'*K), slice-major."""
    T, h, w = grid
    offsets = torch.arange(T) * (h * w)  # (T',)
    return (offsets[:, None] + idx2d.unsqueeze(-2)).flatten(-2)  # (..., T', K) -> (..., T'*K)


class TubeMasker:
    def __init__(self, grid: tuple[int, int, int], **block_kwargs):
        self.grid = grid
        self.blocks = MultiBlockMasker(grid=grid[1:], **block_kwargs)

    def __call__(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        ctx2, tgt2 = self.blocks(batch, generator)  # (B, Kc2), (B, M, Kt2)
        return extend_over_time(ctx2, self.grid), extend_over_time(tgt2, self.grid)
