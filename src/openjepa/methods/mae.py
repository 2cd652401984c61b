"""MAE baseline: predict the *pixels* of masked image blocks from a visible context block.

He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners", made comparable to I-JEPA: the same ViT
encoder, the same multi-block masks and the same narrow mask-token predictor, only the regression target
changes from target-encoder tokens to per-patch-normalised pixels (MAE's norm_pix_loss).
    x (B, C, H, W) -> patchify -> per-patch normalise -> x_tgt (B, M, Kt, C*p*p) at tgt_idx   (no encoder)
    x[ctx_idx]     -> encoder                          -> z (B, Kc, D)
    predictor(z, ctx_idx, tgt_idx)                     -> (B, M, Kt, C*p*p)  vs  x_tgt, MSE in fp32
Differences from I-JEPA: no EMA target encoder (the target is a fixed function of the pixels), so
`eval_encoder()` is the online encoder and `on_step_end` does nothing; the loss is always MSE
(setting `train.loss` is refused). Differences from the original MAE: block masks instead of 75% random patches, the
loss covers only the M target blocks (not every non-visible patch), and the pixel decoder is I-JEPA's
predictor (mask tokens of different blocks do not see each other). `reg.kind` applies as in I-JEPA.
model.encoder=resnet encodes the context with masked convolutions (models/resnet.py), a SparK-style CNN MAE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from openjepa.config import Config, refuse_changed
from openjepa.methods.base import BaseMethod
from openjepa.methods.common import (IMAGE_ONLY, add_regulariser, build_encoder, build_masker, build_predictor,
                                     check_token_encoder, masked_batch, masked_rows)
from openjepa.models.vit import gather_tokens, patchify


def normalise_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MAE's norm_pix target: each patch (..., P) minus its mean, divided by sqrt(its variance + eps), in fp32."""
    patches = patches.float()
    mean = patches.mean(-1, keepdim=True)
    var = patches.var(-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + eps).sqrt()


def pixel_loss(pred: torch.Tensor, x: torch.Tensor, tgt_idx: torch.Tensor, patch_size: int) -> torch.Tensor:
    """MSE (fp32) between predicted pixels pred (B, M, Kt, C*p*p) and the normalised pixels of the target
    patches tgt_idx (B, M, Kt) of x (B, C, H, W); no other patch of x enters."""
    B, M, Kt = tgt_idx.shape
    target = gather_tokens(patchify(x, patch_size), tgt_idx.reshape(B, M * Kt))  # (B, M*Kt, C*p*p)
    target = normalise_patches(target).view(B, M, Kt, -1)  # (B, M, Kt, C*p*p)
    return F.mse_loss(pred.float(), target)


class MAE(BaseMethod):
    """No target encoder: the target is a fixed function of the pixels."""
    batch_dims = {"x": 0, "ctx_idx": 0, "tgt_idx": 0}

    @classmethod
    def check(cls, cfg: Config) -> None:
        refuse_changed(cfg, ("train.loss",), "mae's loss is always MSE on normalised pixels")
        refuse_changed(cfg, IMAGE_ONLY + ("model.proj_hidden", "model.proj_dim", "views.*"),
                       "mae has no projector and no multi-view crops")
        check_token_encoder(cfg, "mae")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        pixels = cfg.data.channels * cfg.model.patch_size ** 2
        self.predictor = build_predictor(cfg, self.encoder.grid, out_dim=pixels)
        self.masker = build_masker(cfg, self.encoder.grid)

    def collate(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return masked_batch(self.masker, x, generator, self.cfg.data)

    def collate_decoded(self, x: torch.Tensor, generator: torch.Generator, batch_size: int, rows: slice
                        ) -> dict[str, torch.Tensor]:
        return masked_rows(self.masker, x, generator, batch_size, rows)

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x, ctx_idx, tgt_idx = batch["x"], batch["ctx_idx"], batch["tgt_idx"]
        B, M, Kt = tgt_idx.shape
        z = self.encoder(x, ctx_idx)  # (B, Kc, D)
        pred = self.predictor(z, ctx_idx, tgt_idx)  # (B, M, Kt, C*p*p)
        pred_loss = pixel_loss(pred, x, tgt_idx, self.cfg.model.patch_size)
        logs = {"pred_loss": pred_loss.item(), "ctx_tokens": float(ctx_idx.shape[1]), "tgt_tokens": float(M * Kt)}
        loss, reg_logs = add_regulariser(pred_loss, z.float().mean(1), self.cfg.reg, int(batch["seed"]))
        return loss, logs | reg_logs
