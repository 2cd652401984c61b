"""Narrow ViT predictor with mask tokens (I-JEPA, Assran et al. 2023).

Given context tokens z_ctx (B, Kc, D) at positions ctx_idx (B, Kc) and M target blocks at positions
tgt_idx (B, M, Kt), it predicts the target-encoder tokens of every block: (B, M, Kt, D). With
`out_dim` set, the head outputs `out_dim` values per target token instead (e.g. p*p*C pixels for MAE).

All M blocks are predicted in one pass: the context is repeated per block along the batch axis,
(B*M, Kc + Kt, Dp), so mask tokens of different blocks never attend to each other (as in I-JEPA).
"""

from __future__ import annotations

import torch
from torch import nn

from openjepa.models.vit import Block, gather_tokens, init_weights, rescale_blocks, sincos_pos_embed


class MaskTokenPredictor(nn.Module):
    def __init__(self, grid: tuple[int, ...], dim: int, pred_dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0, out_dim: int | None = None):
        super().__init__()
        self.embed = nn.Linear(dim, pred_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, pred_dim))
        self.register_buffer("pos_embed", sincos_pos_embed(pred_dim, grid).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList([Block(pred_dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(pred_dim)
        self.head = nn.Linear(pred_dim, dim if out_dim is None else out_dim)
        init_weights(self)
        rescale_blocks(self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def attention_mask(self, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor | None:
        """Attention mask over each [context; mask tokens] sequence; None: every token sees every other.
        Subclasses restrict it (e.g. models.video.CausalPredictor: frame-causal)."""
        return None

    def forward(self, z_ctx: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor,
                query_init: torch.Tensor | None = None) -> torch.Tensor:
        """query_init (B, M, Kt, D), optional: encoder tokens added (embedded) to the mask tokens, e.g. each
        target's token at the previous time slice (video.delta), so a query starts from what was there."""
        B, M, Kt = tgt_idx.shape
        Kc = ctx_idx.shape[1]
        pos = self.pos_embed.expand(B, -1, -1)  # (B, N, Dp)
        ctx = self.embed(z_ctx) + gather_tokens(pos, ctx_idx)  # (B, Kc, Dp)
        tgt_pos = gather_tokens(pos, tgt_idx.reshape(B, M * Kt)).view(B, M, Kt, -1)  # (B, M, Kt, Dp)
        queries = self.mask_token + tgt_pos  # (B, M, Kt, Dp)
        if query_init is not None:
            queries = queries + self.embed(query_init)
        ctx = ctx.unsqueeze(1).expand(-1, M, -1, -1)  # (B, M, Kc, Dp)
        h = torch.cat([ctx, queries], dim=2).flatten(0, 1)  # (B*M, Kc+Kt, Dp)
        mask = self.attention_mask(ctx_idx, tgt_idx)
        for blk in self.blocks:
            h = blk(h, mask)
        out = self.head(self.norm(h[:, Kc:]))  # (B*M, Kt, out_dim or D)
        return out.view(B, M, Kt, -1)
