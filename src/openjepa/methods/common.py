"""Parts shared by the methods: encoder, predictor and masker builders from a Config, the masked-image collate
step, the step's SIGReg seed, the prediction loss and the optional VICReg / SIGReg terms (`reg.kind`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.config import Config, ConfigError, DataConfig, RegConfig, refuse_changed
from openjepa.data.transforms import random_resized_crop
from openjepa.losses.sigreg import sigreg
from openjepa.losses.vicreg import covariance_loss, variance_loss
from openjepa.masking.blocks import MultiBlockMasker
from openjepa.models import ENCODERS
from openjepa.models.predictor import MaskTokenPredictor


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


def masked_rows(masker: MultiBlockMasker, x: torch.Tensor, generator: torch.Generator, batch_size: int, rows: slice
                ) -> dict[str, torch.Tensor]:
    """masked_batch for streamed data: x (B_local, C, H, W) normalised, already cropped in the decoder workers,
    is rows `rows` of the step's global batch of `batch_size`; the masks are drawn for the global batch (the
    same draws on every rank: ctx_idx's length is the global batch's) and sliced, then the step's seed."""
    ctx_idx, tgt_idx = masker(batch_size, generator)
    return {"x": x, "ctx_idx": ctx_idx[rows], "tgt_idx": tgt_idx[rows], "seed": step_seed(generator)}


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


# keys no image method reads (the video and world-model sections)
IMAGE_ONLY = ("video.*", "world.*")


# encoders with a token grid whose forward(x, idx) sees only the patches at idx (masks) and that take any input
# size divisible by the patch size (LeJEPA's local views); the others give one latent per image or serve the
# world model
TOKEN_ENCODERS = ("vit", "resnet")


def check_token_encoder(cfg: Config, method: str, predictor: bool = True) -> None:
    """Masks and crops index a token grid: refuse encoders without one (the CNNs of the world model); the resnet
    has no attention heads and no MLP (`predictor`: the method's predictor still reads model.mlp_ratio)."""
    encoder = cfg.model.encoder
    if encoder not in TOKEN_ENCODERS:
        raise ConfigError(f"model.encoder: method {method!r} masks or crops a token grid, which "
                          f"{' and '.join(TOKEN_ENCODERS)} give; {encoder!r} does not")
    if encoder == "resnet":
        refuse_changed(cfg, ("model.heads",) + (() if predictor else ("model.mlp_ratio",)),
                       "the resnet encoder has no attention heads" + ("" if predictor else " and no MLP"))
