"""V-JEPA video world model and its pixel-prediction twin.

VJEPA: Bardes et al. 2024, "Revisiting Feature Prediction for Learning Visual Representations from Video"
(V-JEPA), with the future-prediction use of Garrido et al. 2025 ("Intuitive physics understanding emerges from
self-supervised pretraining on natural videos"):
    clip x (B, C, T, H, W) -> target encoder (EMA, no grad) -> LayerNorm -> z_tgt (B, N, D)
    x[ctx_idx]  -> online video encoder                      -> z (B, Kc, D)
    CausalPredictor(z, ctx_idx, tgt_idx)                      -> (B, M, Kt, D)  vs  z_tgt[tgt_idx]
Masks (`video.mask`): `future` = context is every token of the first video.context_frames frames, the target
every later token (the predictor is frame-causal, so this is video prediction in latent space); `tube` =
V-JEPA's 3-D multi-block masks (cfg.mask's blocks spanning all frames); `mixed` draws one per step.
Collate takes a random temporal crop of video.frames frames from each (longer) video, flipped left-right when
data.flip.

VPixel: the same encoder, masks and predictor regress the raw pixels (normalised to [-1, 1]) of the target
tubelets, (B, M, Kt, C*t*p*p), MSE: the pixel-space baseline (as MAE is for I-JEPA). No target encoder.

Both expose `future_error(x, context_frames) -> (B, S)`: the mean L1 prediction error of each predicted time
slice (S = (T - context_frames) / tubelet) given the first context_frames frames, the surprise signal of
eval/surprise.py (latent for VJEPA, pixels for VPixel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from openjepa.config import Config, context_frames_error, refuse_changed
from openjepa.masking.tubes import TubeMasker, future_masks, next_masks
from openjepa.methods.base import BaseMethod, TargetEncoder
from openjepa.methods.common import add_regulariser, prediction_loss, step_seed
from openjepa.models.video import CausalPredictor, VideoTransformer, patchify3d
from openjepa.models.vit import gather_tokens


def build_video_encoder(cfg: Config) -> VideoTransformer:
    m, v = cfg.model, cfg.video
    return VideoTransformer(img_size=cfg.data.img_size, frames=v.frames, patch_size=m.patch_size, tubelet=v.tubelet,
                            in_chans=cfg.data.channels, dim=m.dim, depth=m.depth, heads=m.heads, mlp_ratio=m.mlp_ratio,
                            stem=v.stem)


def temporal_crop(x: torch.Tensor, frames: int, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """A random window of `frames` frames of each video x (B, C, T, H, W) -> (B, C, frames, H, W), each
    flipped left-right with probability 1/2 when `flip`."""
    B, T = x.shape[0], x.shape[2]
    if T < frames:
        raise ValueError(f"videos have {T} frames, fewer than video.frames={frames}")
    starts = torch.randint(0, T - frames + 1, (B,), generator=generator)
    out = torch.stack([x[i, :, s:s + frames] for i, s in enumerate(starts.tolist())])
    if flip:
        f = torch.rand(B, generator=generator) < 0.5
        out[f] = out[f].flip(-1)
    return out


class _VideoMethod(BaseMethod):
    """What VJEPA and VPixel share: encoder, masks, collate."""
    is_video = True
    batch_dims = {"x": 0, "ctx_idx": 0, "tgt_idx": 0}

    @classmethod
    def check(cls, cfg: Config) -> None:
        name = cfg.train.method
        refuse_changed(cfg, ("model.encoder",), f"{name} always encodes tubelets with a video transformer")
        refuse_changed(cfg, ("views.*", "world.*", "model.proj_hidden", "model.proj_dim"),
                       f"{name} has no projector, no multi-view crops and no actions")
        refuse_changed(cfg, ("data.crop_scale",), f"{name} crops clips in time only (video.frames)")
        refuse_changed(cfg, ("eval.*",), f"`openjepa eval` probes image encoders; score {name} with "
                                         "`openjepa surprise` or `openjepa bench physics`")
        v = cfg.video
        if v.mask not in ("tube", "mixed"):
            refuse_changed(cfg, ("mask.*",), f"the block masks are drawn only with video.mask=tube or mixed, "
                                             f"not {v.mask!r}")
        if cfg.data.dataset != "physics":
            refuse_changed(cfg, ("video.physics_videos", "video.physics_frames", "video.physics_seed",
                                 "video.physics_occlusion", "video.physics_ball_scale", "video.physics_kinds",
                                 "video.physics_swap", "video.physics_style", "video.physics_render_scales",
                                 "video.physics_fps_scales"),
                           "generates the procedural videos of data.dataset=physics")
        if cfg.data.dataset not in ("videos", "kitti"):
            refuse_changed(cfg, ("video.clip_frames",), "cuts the videos of data.dataset=videos or kitti")

    def _with_regulariser(self, pred_loss: torch.Tensor, z: torch.Tensor, batch: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        """The step's loss and logs: pred_loss plus `reg` on the pooled context tokens z (B, Kc, D)."""
        ctx_idx, tgt_idx = batch["ctx_idx"], batch["tgt_idx"]
        logs = {"pred_loss": pred_loss.item(), "ctx_tokens": float(ctx_idx.shape[1]),
                "tgt_tokens": float(tgt_idx.shape[1] * tgt_idx.shape[2])}
        loss, reg_logs = add_regulariser(pred_loss, z.float().mean(1), self.cfg.reg, int(batch["seed"]))
        return loss, logs | reg_logs

    def _build(self, cfg: Config, out_dim: int | None) -> None:
        self.cfg = cfg
        self.encoder = build_video_encoder(cfg)
        m = cfg.model
        self.grid = self.encoder.grid
        self.causal = cfg.video.mask == "next"  # frame-causal encoders, next-slice predictor
        self.predictor = CausalPredictor(self.grid, m.dim, m.pred_dim, m.pred_depth, m.pred_heads, m.mlp_ratio,
                                         out_dim=out_dim, next_step=self.causal)
        k = cfg.mask
        self.tube_masker = TubeMasker(self.grid, n_targets=k.n_targets, target_scale=k.target_scale,
                                      target_aspect=k.target_aspect, context_scale=k.context_scale,
                                      context_aspect=k.context_aspect, min_context=k.min_context)

    def collate(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        v = self.cfg.video
        x = temporal_crop(x, v.frames, generator, self.cfg.data.flip)
        ctx_idx, tgt_idx = self.draw_masks(x.shape[0], generator)
        return {"x": x, "ctx_idx": ctx_idx, "tgt_idx": tgt_idx, "seed": step_seed(generator)}

    def draw_masks(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's masks (video.mask; mixed tosses its coin first): ctx_idx (B, Kc), tgt_idx (B, M, Kt)."""
        v = self.cfg.video
        mode = v.mask
        if mode == "mixed":
            mode = "future" if torch.rand(1, generator=generator).item() < 0.5 else "tube"
        if mode == "future":
            return future_masks(batch_size, self.grid, v.context_frames // v.tubelet)
        if mode == "next":
            return next_masks(batch_size, self.grid)
        return self.tube_masker(batch_size, generator)

    @classmethod
    def stream_decoder(cls, cfg: Config):
        """Streaming datasets: a random window of video.frames frames of each clip, its centre square (the flip
        is drawn in collate_decoded, as collate does)."""
        from openjepa.data.streaming import ClipDecoder

        d = cfg.data
        return ClipDecoder(d.img_size, cfg.video.frames, d.channels, crop_scale=None, flip=False)

    def collate_decoded(self, x: torch.Tensor, generator: torch.Generator, batch_size: int, rows: slice
                        ) -> dict[str, torch.Tensor]:
        """x (B_local, C, video.frames, H, W) windows cut in the workers; flips and masks are drawn for the
        global batch and sliced to `rows`."""
        if self.cfg.data.flip:
            f = (torch.rand(batch_size, generator=generator) < 0.5)[rows]
            x = x.clone()
            x[f] = x[f].flip(-1)
        ctx_idx, tgt_idx = self.draw_masks(batch_size, generator)
        return {"x": x, "ctx_idx": ctx_idx[rows], "tgt_idx": tgt_idx[rows], "seed": step_seed(generator)}

    def future_masks(self, x: torch.Tensor, context_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks predicting every token after the first context_frames of clips x: (ctx_idx, tgt_idx (B, 1, Kt));
        with video.mask=next each later slice is predicted from every slice before it (teacher forcing)."""
        t = self.cfg.video.tubelet
        err = context_frames_error(context_frames, x.shape[2], t)
        if err:
            raise ValueError(f"context_frames {err}")
        grid = (x.shape[2] // t, *self.grid[1:])
        masks = next_masks if self.causal else future_masks
        ctx_idx, tgt_idx = masks(x.shape[0], grid, context_frames // t)
        return ctx_idx.to(x.device), tgt_idx.to(x.device)

    @torch.no_grad()
    def future_token_error(self, x: torch.Tensor, context_frames: int) -> torch.Tensor:
        """Mean L1 error of each predicted token (latent for VJEPA, pixels for VPixel): x (B, C, T, H, W)
        normalised -> (B, Kt), slice-major."""
        pred, tgt, _ = self.predict(x, *self.future_masks(x, context_frames))
        return (pred.float() - tgt).abs().mean(-1)[:, 0]

    @torch.no_grad()
    def future_error(self, x: torch.Tensor, context_frames: int) -> torch.Tensor:
        """Mean L1 prediction error per predicted time slice: x (B, C, T, H, W) normalised -> (B, S)."""
        err = self.future_token_error(x, context_frames)
        return err.view(err.shape[0], -1, self.grid[1] * self.grid[2]).mean(-1)

    @torch.no_grad()
    def copy_last_gain(self, x: torch.Tensor, context_frames: int) -> float:
        """How much better the future prediction is than "nothing moves", in the training objective: 1 -
        loss(prediction) / loss(`copy_guess`: "nothing moves" after the context, in latent tokens or pixels),
        over the predicted tokens of normalised clips x (B, C, T, H, W). Near 0 (or below): the predictor has
        stalled at copying the last frame; a model that learnt the motion scores well above it. (Measured in the
        objective, not in the surprise's L1: an MSE-trained pixel predictor spreads small errors over the static
        background, which costs more L1 than copying a small moving ball does.)"""
        ctx_idx, tgt_idx = self.future_masks(x, context_frames)
        pred, tgt, _ = self.predict(x, ctx_idx, tgt_idx)
        copy = self.loss(self.copy_guess(x, ctx_idx, tgt_idx), tgt)
        return float(1.0 - self.loss(pred, tgt) / copy.clamp_min(1e-12))

    def _predictor(self, z: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """The predictor on context tokens z (B, Kc, D); with video.delta each query also starts from the context
        token at its base position (future and next masks hold whole slices from slice 0, so a token's index is
        its position in z)."""
        if not self.cfg.video.delta:
            return self.predictor(z, ctx_idx, tgt_idx)
        B, M, Kt = tgt_idx.shape
        init = gather_tokens(z, self._base_index(tgt_idx, ctx_idx).reshape(B, M * Kt)).view(B, M, Kt, -1)
        return self.predictor(z, ctx_idx, tgt_idx, query_init=init)

    def _base_index(self, tgt_idx: torch.Tensor, ctx_idx: torch.Tensor) -> torch.Tensor:
        """video.delta: the token each target token's prediction starts from: the same position at the previous
        slice (next) or at the last context slice (future)."""
        hw = self.grid[1] * self.grid[2]
        if self.causal:
            return tgt_idx - hw
        last = ctx_idx.shape[1] // hw - 1  # future masks: the context is whole slices 0..last
        return tgt_idx % hw + last * hw


class VJEPA(TargetEncoder, _VideoMethod):
    def __init__(self, cfg: Config):
        super().__init__()
        self._build(cfg, out_dim=None)
        self._init_target(cfg)

    def _targets(self, x: torch.Tensor, tgt_idx: torch.Tensor, base_idx: torch.Tensor | None = None):
        """Target tokens at tgt_idx (B, M, Kt, D); with base_idx also the tokens at base_idx (video.delta)."""
        B, M, Kt = tgt_idx.shape
        with torch.no_grad():
            z_tgt = self.eval_encoder()(x, causal=self.causal)  # (B, N, D)
            z_tgt = F.layer_norm(z_tgt.float(), z_tgt.shape[-1:])
            if self.cfg.video.target == "residual":  # minus each position's mean over the clip's time slices
                S = x.shape[2] // self.cfg.video.tubelet
                z = z_tgt.view(B, S, -1, z_tgt.shape[-1])
                z_tgt = (z - z.mean(1, keepdim=True)).view(B, -1, z_tgt.shape[-1])
            out = gather_tokens(z_tgt, tgt_idx.reshape(B, M * Kt)).view(B, M, Kt, -1)  # (B, M, Kt, D)
            if base_idx is None:
                return out
            return out, gather_tokens(z_tgt, base_idx.reshape(B, M * Kt)).view(B, M, Kt, -1)

    def predict(self, x: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(prediction (B, M, Kt, D), target (B, M, Kt, D), context tokens z (B, Kc, D)) for one set of masks."""
        base_idx = self._base_index(tgt_idx, ctx_idx) if self.cfg.video.delta else None
        got = self._targets(x, tgt_idx, base_idx)
        z = self.encoder(x, ctx_idx, causal=self.causal)  # (B, Kc, D)
        pred = self._predictor(z, ctx_idx, tgt_idx)  # (B, M, Kt, D)
        if base_idx is None:
            return pred, got, z
        tgt, base = got
        return pred + base, tgt, z

    @torch.no_grad()
    def copy_guess(self, x: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """"Nothing moves" in latent space, (B, M, Kt, D). Future masks: the target tokens of the clip frozen at its
        last context frame (that frame repeated over the predicted frames), so the guess carries each slice's own
        time position code and a predictor can only beat it by predicting motion (copying the last context
        slice's tokens instead is beaten by merely learning the time code). Next masks: the target token at the same position of the previous slice."""
        if self.causal:
            return self._targets(x, tgt_idx, self._base_index(tgt_idx, ctx_idx))[1]
        t = self.cfg.video.tubelet
        last = ctx_idx.shape[1] // (self.grid[1] * self.grid[2]) * t  # frames given (whole context slices)
        frozen = torch.cat([x[:, :, :last], x[:, :, last - 1:last].expand(-1, -1, x.shape[2] - last, -1, -1)], 2)
        return self._targets(frozen, tgt_idx)

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred, tgt, z = self.predict(batch["x"], batch["ctx_idx"], batch["tgt_idx"])
        return self._with_regulariser(self.loss(pred, tgt), z, batch)

    def loss(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """The prediction objective (train.loss on target-encoder tokens)."""
        return prediction_loss(pred, tgt, self.cfg.train.loss)


class VPixel(_VideoMethod):
    @classmethod
    def check(cls, cfg: Config) -> None:
        super().check(cfg)
        refuse_changed(cfg, ("train.loss",), "vpixel's loss is always MSE on pixels")
        refuse_changed(cfg, ("video.target",), "vpixel regresses pixels, not target-encoder tokens")

    def __init__(self, cfg: Config):
        super().__init__()
        v = cfg.video
        self._build(cfg, out_dim=cfg.data.channels * v.tubelet * cfg.model.patch_size ** 2)

    def _pixels(self, x: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        B, M, Kt = tgt_idx.shape
        px = patchify3d(x, self.cfg.video.tubelet, self.cfg.model.patch_size).float()  # (B, N, C*t*p*p)
        return gather_tokens(px, tgt_idx.reshape(B, M * Kt)).view(B, M, Kt, -1)

    def _base_pixels(self, x: torch.Tensor, tgt_idx: torch.Tensor, ctx_idx: torch.Tensor) -> torch.Tensor:
        """video.delta: each target tubelet's starting guess, the last frame of its base slice held for the
        tubelet's t frames, (B, M, Kt, C*t*p*p)."""
        t = self.cfg.video.tubelet
        held = x[:, :, t - 1::t].repeat_interleave(t, dim=2)  # slice s -> its last frame, t times
        return self._pixels(held, self._base_index(tgt_idx, ctx_idx))

    @torch.no_grad()
    def copy_guess(self, x: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """"Nothing moves" in pixels: each target tubelet replaced by the last frame of its base slice (the last
        context frame for future masks), (B, M, Kt, C*t*p*p)."""
        return self._base_pixels(x, tgt_idx, ctx_idx)

    def predict(self, x: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(predicted pixels (B, M, Kt, C*t*p*p), true pixels, context tokens z (B, Kc, D))."""
        z = self.encoder(x, ctx_idx, causal=self.causal)  # (B, Kc, D)
        pred = self._predictor(z, ctx_idx, tgt_idx)  # (B, M, Kt, C*t*p*p)
        if self.cfg.video.delta:
            pred = pred + self._base_pixels(x, tgt_idx, ctx_idx)
        return pred, self._pixels(x, tgt_idx), z

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred, tgt, z = self.predict(batch["x"], batch["ctx_idx"], batch["tgt_idx"])
        return self._with_regulariser(self.loss(pred, tgt), z, batch)

    def loss(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """The prediction objective: MSE on pixels."""
        return F.mse_loss(pred.float(), tgt.float())
