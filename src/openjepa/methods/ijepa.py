"""I-JEPA: predict the target-encoder tokens of masked image blocks from a visible context block.

Assran et al. 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture".
    x (B, C, H, W) -> target encoder (EMA, no grad) -> LayerNorm -> z_tgt (B, N, D)
    x[ctx_idx]     -> online encoder                 -> z (B, Kc, D)
    predictor(z, ctx_idx, tgt_idx)                   -> (B, M, Kt, D)  vs  z_tgt[tgt_idx]
Masks (ctx_idx (B, Kc), tgt_idx (B, M, Kt)) come from `MultiBlockMasker` in `collate`, on the CPU, after the
random-resized crop of data.crop_scale. With model.encoder=resnet the online encoder convolves the image with
everything outside the context patches masked at every layer (models/resnet.py), so, as with a ViT, the
context tokens see no target pixel; the target encoder sees the whole image.

Anti-collapse (`reg`): an EMA target encoder (reg.ema) or the online encoder itself under stop-gradient, plus
optional VICReg / SIGReg terms on pooled embeddings (`add_regulariser`; reg.on picks which).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from openjepa.config import Config, refuse_changed
from openjepa.methods.base import TargetEncoder
from openjepa.methods.common import (IMAGE_ONLY, add_regulariser, build_encoder, build_masker, build_predictor,
                                     check_token_encoder, masked_batch, masked_rows, prediction_loss)
from openjepa.models.vit import gather_tokens


class IJEPA(TargetEncoder):
    batch_dims = {"x": 0, "ctx_idx": 0, "tgt_idx": 0}

    @classmethod
    def check(cls, cfg: Config) -> None:
        refuse_changed(cfg, IMAGE_ONLY + ("model.proj_hidden", "model.proj_dim", "views.*"),
                       "ijepa has no projector and no multi-view crops")
        check_token_encoder(cfg, "ijepa")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        self._init_target(cfg)  # reg.ema=false: the target is the online encoder itself, under stop-gradient
        self.predictor = build_predictor(cfg, self.encoder.grid)
        self.masker = build_masker(cfg, self.encoder.grid)

    def collate(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return masked_batch(self.masker, x, generator, self.cfg.data)

    def collate_decoded(self, x: torch.Tensor, generator: torch.Generator, batch_size: int, rows: slice
                        ) -> dict[str, torch.Tensor]:
        return masked_rows(self.masker, x, generator, batch_size, rows)

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x, ctx_idx, tgt_idx = batch["x"], batch["ctx_idx"], batch["tgt_idx"]
        B, M, Kt = tgt_idx.shape
        with torch.no_grad():
            z_tgt = self.eval_encoder()(x)  # (B, N, D)
            z_tgt = F.layer_norm(z_tgt.float(), z_tgt.shape[-1:])
            z_tgt = gather_tokens(z_tgt, tgt_idx.reshape(B, M * Kt)).view(B, M, Kt, -1)  # (B, M, Kt, D)
        z = self.encoder(x, ctx_idx)  # (B, Kc, D)
        pred = self.predictor(z, ctx_idx, tgt_idx)  # (B, M, Kt, D)
        pred_loss = prediction_loss(pred, z_tgt, self.cfg.train.loss)
        logs = {"pred_loss": pred_loss.item(), "ctx_tokens": float(ctx_idx.shape[1]), "tgt_tokens": float(M * Kt)}
        on = self.cfg.reg.on
        pooled = {"context": z.float().mean(1), "predicted": pred.float().flatten(1, 2).mean(1)}  # (B, D) each
        emb = torch.stack([pooled[k] for k in on.split("+")])  # (1 or 2, B, D)
        loss, reg_logs = add_regulariser(pred_loss, emb, self.cfg.reg, int(batch["seed"]))
        return loss, logs | reg_logs
