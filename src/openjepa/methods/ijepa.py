"""I-JEPA: predict the target-encoder tokens of masked image blocks from a visible context block.

Assran et al. 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture".
    x (B, C, H, W) -> target encoder (EMA, no grad) -> LayerNorm -> z_tgt (B, N, D)
    x[ctx_idx]     -> online encoder                 -> z (B, Kc, D)
    predictor(z, ctx_idx, tgt_idx)                   -> (B, M, Kt, D)  vs  z_tgt[tgt_idx]
Masks (ctx_idx (B, Kc), tgt_idx (B, M, Kt)) come from `MultiBlockMasker` in `collate`, on the CPU, after the
random-resized crop of data.crop_scale.

Anti-collapse (`reg`): an EMA target encoder (reg.ema) or the online encoder itself under stop-gradient, plus
optional VICReg / SIGReg terms on pooled embeddings (`add_regulariser`; reg.on picks which).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.config import Config, DataConfig, RegConfig
from openjepa.data.transforms import random_resized_crop
from openjepa.losses.sigreg import sigreg
from openjepa.losses.vicreg import covariance_loss, variance_loss
from openjepa.masking.blocks import MultiBlockMasker
from openjepa.models import ENCODERS
from openjepa.models.ema import ema_step
from openjepa.models.predictor import MaskTokenPredictor
from openjepa.models.vit import gather_tokens


def build_encoder(cfg: Config) -> nn.Module:
    m = cfg.model
    return ENCODERS[m.encoder](img_size=cfg.data.img_size, patch_size=m.patch_size, in_chans=cfg.data.channels,
                               dim=m.dim, depth=m.depth, heads=m.heads, mlp_ratio=m.mlp_ratio)


def build_masker(cfg: Config, grid: tuple[int, int]) -> MultiBlockMasker:
    """The multi-block (context, targets) sampler for a token grid, from `cfg.mask` (shared with MAE)."""
    k = cfg.mask
    return MultiBlockMasker(grid=grid, n_targets=k.n_targets, target_scale=k.target_scale,
                            target_aspect=k.target_aspect, context_scale=k.context_scale,
                            context_aspect=k.context_aspect, min_context=k.min_context)


def build_predictor(cfg: Config, grid: tuple[int, ...], out_dim: int | None = None) -> MaskTokenPredictor:
    """The narrow mask-token predictor from `cfg.model` (out_dim: tokens by default, pixels for MAE)."""
    m = cfg.model
    return MaskTokenPredictor(grid, m.dim, m.pred_dim, m.pred_depth, m.pred_heads, m.mlp_ratio, out_dim=out_dim)


def masked_batch(masker: MultiBlockMasker, x: torch.Tensor, generator: torch.Generator, data: DataConfig
                 ) -> dict[str, torch.Tensor]:
    """The collate step shared by masked-prediction methods: x (B, C, H, W) normalised images -> one random
    resized crop of each (data.crop_scale, data.flip), plus ctx_idx (B, Kc) and tgt_idx (B, M, Kt)."""
    x = random_resized_crop(x, generator, scale=data.crop_scale, flip=data.flip)
    ctx_idx, tgt_idx = masker(x.shape[0], generator)
    return {"x": x, "ctx_idx": ctx_idx, "tgt_idx": tgt_idx, "seed": step_seed(generator)}


def step_seed(generator: torch.Generator) -> torch.Tensor:
    """(1,) seed for the step's random projections (SIGReg), drawn from the step's generator: identical on
    every rank and on resume."""
    return torch.randint(0, 2**31 - 1, (1,), generator=generator)


def add_regulariser(loss: torch.Tensor, emb: torch.Tensor, reg: RegConfig, seed: int = 0
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """`loss` plus the `reg.kind` terms on embeddings emb (B, D) or (V, B, D) (V views or kinds, each term
    averaged over V), and their logs; the terms run in fp32.

    VICReg adds var_weight * variance + cov_weight * covariance; SIGReg follows LeJEPA's convention
    (1 - lambda) * loss + lambda * SIGReg, with directions drawn from `seed` (the same on every rank and
    for every view)."""
    if reg.kind == "none":
        return loss, {}
    emb = emb.float()
    views = emb.unsqueeze(0) if emb.dim() == 2 else emb  # (V, B, D)
    logs: dict[str, float] = {}
    if "vicreg" in reg.kind:
        var = torch.stack([variance_loss(e) for e in views]).mean()
        cov = torch.stack([covariance_loss(e) for e in views]).mean()
        loss = loss + reg.var_weight * var + reg.cov_weight * cov
        logs.update(reg_var=var.item(), reg_cov=cov.item())
    if "sigreg" in reg.kind:
        sig = torch.stack([sigreg(e, num_directions=reg.sigreg_directions, seed=seed, num_points=reg.sigreg_points,
                                  t_max=reg.sigreg_t_max) for e in views]).mean()
        loss = (1 - reg.sigreg_lambda) * loss + reg.sigreg_lambda * sig
        logs["reg_sigreg"] = sig.item()
    return loss, logs


def prediction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean regression loss between predicted and target tokens (any matching shapes), in fp32."""
    pred, target = pred.float(), target.float()
    if kind == "l2":
        return F.mse_loss(pred, target)
    return F.smooth_l1_loss(pred, target)


class IJEPA(nn.Module):
    has_target = True  # a target encoder can be kept as an EMA (reg.ema)
    batch_dims = {"x": 0, "ctx_idx": 0, "tgt_idx": 0}  # batch axis of each collated tensor (sharding, micro-batches)

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        # reg.ema=false: the target is the online encoder itself, under stop-gradient
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if cfg.reg.ema else None
        self.predictor = build_predictor(cfg, self.encoder.grid)
        self.masker = build_masker(cfg, self.encoder.grid)

    def collate(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return masked_batch(self.masker, x, generator, self.cfg.data)

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

    def on_step_end(self, step: int, total: int) -> dict[str, float]:
        o = self.cfg.optim
        return ema_step(self.target_encoder, self.encoder, step, total, o.ema_start, o.ema_end)

    def eval_encoder(self) -> nn.Module:
        """The encoder to evaluate and export: the EMA target encoder (as in I-JEPA), else the online one."""
        return self.target_encoder if self.target_encoder is not None else self.encoder
