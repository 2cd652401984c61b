"""LeJEPA: multi-view invariance plus SIGReg, with one encoder, no predictor, no EMA and no stop-gradient.

Balestriero & LeCun 2025, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the Heuristics".
Every image gets Vg global views (data.img_size, data.crop_scale) and Vl local views (views.local_size,
views.local_scale); each view goes through the same encoder, is mean-pooled and projected:

    views (V, B, C, h, w) -> encoder -> mean over tokens -> projector MLP -> e (V, B, P)
    centre     = mean of the global views' embeddings                          (B, P)
    invariance = mean over views, images and channels of (e_v - centre)^2       every view predicts the centre
    loss       = (1 - lambda) * invariance + lambda * mean_v SIGReg(e_v)      reg.sigreg_lambda, reg.sigreg_*

`reg.kind` picks the regulariser(s) on the projected views as in I-JEPA (`sigreg` is LeJEPA; `vicreg` gives a
VICReg-style multi-view baseline; `none` collapses). Probes and exports use the encoder's pooled tokens, not
the projector (`eval_encoder()`). Local views are encoded at their own resolution: a vit with sin-cos positions
spread over the training grid, the resnet (no positions) as any input whose sides are multiples of the patch.
"""

from __future__ import annotations

import torch
from torch import nn

from openjepa.config import Config, ConfigError, refuse_changed
from openjepa.data.transforms import random_resized_crop
from openjepa.methods.base import BaseMethod
from openjepa.methods.common import IMAGE_ONLY, add_regulariser, build_encoder, check_token_encoder, step_seed


class Projector(nn.Module):
    """Pooled features (N, D) -> embeddings (N, P): Linear-LayerNorm-GELU, twice, then Linear."""

    def __init__(self, dim: int, hidden: int, out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                 nn.Linear(hidden, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class LeJEPA(BaseMethod):
    """One encoder, no target encoder: the targets (the global views' centre) carry gradients. The encoder
    evaluated and exported is BaseMethod's, the online one (the projector is training-only, as in LeJEPA)."""
    batch_dims = {"global": 1, "local": 1}

    @classmethod
    def check(cls, cfg: Config) -> None:
        refuse_changed(cfg, ("train.loss",), "lejepa's invariance term is always a squared distance")
        refuse_changed(cfg, IMAGE_ONLY + ("mask.*", "model.pred_dim", "model.pred_depth", "model.pred_heads"),
                       "lejepa has no masks and no predictor")
        check_token_encoder(cfg, "lejepa", predictor=False)
        m = cfg.model
        if cfg.views.local_views and cfg.views.local_size % m.patch_size:
            raise ConfigError(f"views.local_size: views.local_size={cfg.views.local_size} must be divisible by "
                              f"model.patch_size={m.patch_size}")
        refuse_changed(cfg, () if cfg.views.local_views else ("views.local_size", "views.local_scale"),
                       "views.local_views=0: no local crops")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        self.projector = Projector(cfg.model.dim, cfg.model.proj_hidden, cfg.model.proj_dim)

    def collate(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> global (Vg, B, C, H, W), local (Vl, B, C, s, s) views and the step's SIGReg seed."""
        d, v = self.cfg.data, self.cfg.views
        glob = torch.stack([random_resized_crop(x, generator, scale=d.crop_scale, flip=d.flip)
                            for _ in range(v.global_views)])
        loc = [random_resized_crop(x, generator, scale=v.local_scale, flip=d.flip, size=v.local_size)
               for _ in range(v.local_views)]
        loc = torch.stack(loc) if loc else x.new_zeros(0, *x.shape[:2], v.local_size, v.local_size)
        return {"global": glob, "local": loc, "seed": step_seed(generator)}

    @classmethod
    def stream_decoder(cls, cfg: Config):
        """Streaming datasets: every view is cropped in the workers from the once-decoded image."""
        from openjepa.data.streaming import ViewsDecoder

        d, v = cfg.data, cfg.views
        return ViewsDecoder(d.img_size, d.channels, v.global_views, d.crop_scale, v.local_views, v.local_size,
                            v.local_scale, flip=d.flip)

    def collate_decoded(self, x: dict[str, torch.Tensor], generator: torch.Generator, batch_size: int,
                        rows: slice) -> dict[str, torch.Tensor]:
        """x {"global": (B_local, Vg, C, H, W), "local": (B_local, Vl, C, s, s)} -> views first, as collate."""
        return {"global": x["global"].transpose(0, 1), "local": x["local"].transpose(0, 1),
                "seed": step_seed(generator)}

    def embed(self, views: torch.Tensor) -> torch.Tensor:
        """views (V, B, C, h, w) -> projected embeddings (V, B, P); all V views in one encoder pass."""
        V, B = views.shape[:2]
        h = self.encoder(views.flatten(0, 1)).mean(1)  # (V*B, D)
        return self.projector(h).view(V, B, -1)  # (V, B, P)

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        e = self.embed(batch["global"]).float()  # (Vg, B, P)
        if batch["local"].shape[0]:
            e = torch.cat([e, self.embed(batch["local"]).float()])  # (V, B, P)
        centre = e[: batch["global"].shape[0]].mean(0)  # (B, P)
        inv = (e - centre).pow(2).mean()
        loss, logs = add_regulariser(inv, e, self.cfg.reg, int(batch["seed"]))
        return loss, {"pred_loss": inv.item(), "views": float(e.shape[0])} | logs
