"""Action-conditioned latent world model: encoder + predictor over latent states and actions.

Follows PLDM (Sobal et al. 2025, "Learning from Reward-Free Offline Data: A Case for Planning with Latent
Dynamics Models"), EB-JEPA's Two-Rooms world model and LeWorldModel (SIGReg instead of VICReg):

    obs (B, F, C, H, W) -> encoder per frame -> s (B, F, D)                    online latents
    obs                 -> target encoder (EMA, no grad) or s itself -> s_tgt  targets
    teacher forcing:  predictor(s[:, :-1], a) (B, F-1, D)        vs s_tgt[:, 1:]
    rollout:          predictor.rollout(s[:, 0], a[:, :R]) (B, R, D)  vs s_tgt[:, 1:R+1]   (open loop, R steps)
    loss = tf_weight * tf + rollout_weight * rollout + reg(s per frame) + smooth_weight * |s_{t+1} - s_t|^2
           + idm_weight * |IDM(s_t, s_{t+1}) - a_t|^2

Anti-collapse is configurable: `reg.ema` (EMA target, stop-grad), `reg.kind` = vicreg (variance + covariance
of each frame's latents over the batch, PLDM) / sigreg (LeWorldModel) / both, applied frame by frame and
averaged; `world.smooth_weight` (temporal smoothness) and `world.idm_weight` (inverse dynamics, which PLDM's
ablation found essential on Two-Rooms). Without EMA the targets carry gradient (PLDM, LeWM) unless
`world.target_stopgrad`.

Data (see data/trajectories.py): {"obs": (N, T+1, C, H, W), "a": (N, T, A)}; `collate` cuts a random window
of `world.frames` frames from each episode.

Temporal abstraction (`world.frameskip` = k, DINO-WM's frameskip): one model step covers k env steps. A window
then spans (frames - 1) * k + 1 env frames, keeps every k-th one, and the model action of a step is the k env
actions between its two frames concatenated, (B, F-1, k*A). Planning plans one action per model step and holds
it for k env steps (`imagine` tiles it), so a 16-step imagined horizon spans 16 k env steps: with k = 5 the
whole path through Two-Rooms' door instead of ~39 px of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.config import Config, ConfigError, refuse_changed
from openjepa.methods.base import TargetEncoder
from openjepa.methods.common import add_regulariser, build_encoder, step_seed
from openjepa.models.action_predictor import PREDICTORS, InverseDynamics, idm_loss


def encode_frames(encoder: nn.Module, obs: torch.Tensor, flat: bool = False) -> torch.Tensor:
    """obs (B, T, C, H, W) or (B, C, H, W) -> latent states (B, T, D) or (B, D): encoder tokens mean-pooled, or
    with `flat` (latent maps, encoder cnn_map) every token kept and flattened (D = cells * channels)."""
    def state(z: torch.Tensor) -> torch.Tensor:  # (N, tokens, C) -> (N, D)
        return z.flatten(1) if flat else z.mean(1)
    if obs.dim() == 4:
        return state(encoder(obs))
    B, T = obs.shape[:2]
    return state(encoder(obs.flatten(0, 1))).view(B, T, -1)


class WorldModel(TargetEncoder):
    """reg.ema may keep an EMA target encoder (the presets use PLDM's recipe: none)."""
    has_actions = True
    batch_dims = {"obs": 0, "a": 0}

    @classmethod
    def check(cls, cfg: Config) -> None:
        refuse_changed(cfg, ("train.loss",), "world_model's prediction losses are always MSE")
        refuse_changed(cfg, ("video.*", "mask.*", "views.*", "model.proj_hidden", "model.proj_dim"),
                       "world_model has no video clips, no masks, no multi-view crops and no projector")
        refuse_changed(cfg, ("data.crop_scale", "data.flip"), "world_model trains on whole observations (flips "
                                                              "would contradict the actions)")
        if cfg.model.encoder == "resnet":
            raise ConfigError("model.encoder: world_model encodes observations with vit, cnn or cnn_map; resnet is "
                              "an encoder of the image methods (ijepa, lejepa, mae)")
        if cfg.model.encoder in ("cnn", "cnn_map"):
            refuse_changed(cfg, ("model.patch_size", "model.heads"), "the cnn encoder has no patches and no heads")
        if (cfg.model.encoder == "cnn_map") != (cfg.world.predictor == "conv"):
            raise ConfigError("model.encoder=cnn_map (a latent map) and world.predictor=conv go together: the conv "
                              f"predictor needs a map, the others a pooled state; got model.encoder="
                              f"{cfg.model.encoder!r}, world.predictor={cfg.world.predictor!r}")
        if cfg.world.predictor == "gru":
            refuse_changed(cfg, ("model.pred_heads",), "the gru predictor has no heads")
        if cfg.world.predictor == "conv":
            refuse_changed(cfg, ("model.pred_heads", "model.mlp_ratio"), "the conv predictor has no heads and no MLP")
        if cfg.model.encoder == "cnn" and cfg.world.predictor == "gru":
            refuse_changed(cfg, ("model.mlp_ratio",), "neither the cnn encoder nor the gru predictor has an MLP")
        if cfg.reg.ema:
            refuse_changed(cfg, ("world.target_stopgrad",), "the EMA target (reg.ema) is always under stop-grad")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        w, m = cfg.world, cfg.model
        self.encoder = build_encoder(cfg)
        self._init_target(cfg)
        self.flat = m.encoder == "cnn_map"  # the state is the whole latent map, flattened
        shape = self.encoder.map_shape if self.flat else None
        self.state_dim = shape[0] * shape[1] * shape[2] if self.flat else m.dim  # D
        kw = {"map_shape": shape} if self.flat else {"heads": m.pred_heads, "max_frames": w.frames, "cond": w.cond,
                                                     "mlp_ratio": m.mlp_ratio}
        self.predictor = PREDICTORS[w.predictor](self.state_dim, w.action_dim * w.frameskip, pred_dim=m.pred_dim,
                                                 depth=m.pred_depth, **kw)
        self.idm = InverseDynamics(self.state_dim, w.action_dim * w.frameskip) if w.idm_weight > 0 else None

    @staticmethod
    def example_input(cfg: Config, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Random data of the training form (normalised): obs (n, frames, C, H, W), a (n, frames - 1, k*A)."""
        d, w = cfg.data, cfg.world
        obs = torch.randn(n, w.frames, d.channels, d.img_size, d.img_size, generator=generator)
        return {"obs": obs, "a": torch.randn(n, w.frames - 1, w.action_dim * w.frameskip, generator=generator)}

    def collate(self, x: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x {"obs": (B, L, C, H, W), "a": (B, L-1, A), ...} -> a random window of F = world.frames frames per
        episode, every k = world.frameskip-th env frame: {"obs": (B, F, C, H, W), "a": (B, F-1, k*A), "seed"}."""
        if not isinstance(x, dict) or "obs" not in x or "a" not in x:
            raise ValueError("world_model trains on trajectories: data must be a dict with 'obs' (N, T+1, C, H, W) "
                             "and 'a' (N, T, A), e.g. --data.dataset=trajectories --data.path=DIR")
        obs, a = x["obs"], x["a"]
        B, L = obs.shape[:2]
        Fr, k = self.cfg.world.frames, self.cfg.world.frameskip
        if a.shape[1] != L - 1 or a.shape[-1] != self.cfg.world.action_dim:
            raise ValueError(f"actions {tuple(a.shape)} do not match obs {tuple(obs.shape)}: expected "
                             f"(B, {L - 1}, world.action_dim={self.cfg.world.action_dim})")
        span = (Fr - 1) * k + 1  # env frames per window
        if L < span:
            raise ValueError(f"episodes have {L} frames, fewer than (world.frames - 1) * world.frameskip + 1 = "
                             f"{span}: collect longer episodes (openjepa data collect ... --steps {span - 1})")
        off = torch.randint(0, L - span + 1, (B,), generator=generator)  # (B,)
        idx = off[:, None] + k * torch.arange(Fr)  # (B, F)
        rows = torch.arange(B)[:, None]
        a_idx = idx[:, :-1, None] + torch.arange(k)  # (B, F-1, k): the env actions of each model step
        acts = a[rows[:, :, None], a_idx].flatten(2)  # (B, F-1, k*A)
        return {"obs": obs[rows, idx], "a": acts, "seed": step_seed(generator)}

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.cfg.world
        obs, a = batch["obs"], batch["a"]  # (B, F, C, H, W), (B, F-1, A)
        s = encode_frames(self.encoder, obs, self.flat)  # (B, F, D)
        if self.target_encoder is not None:
            with torch.no_grad():
                s_tgt = encode_frames(self.target_encoder, obs, self.flat)
        else:
            s_tgt = s.detach() if w.target_stopgrad else s
        s_tgt = s_tgt.float()
        loss = s.new_zeros((), dtype=torch.float32)
        logs: dict[str, float] = {}
        if w.tf_weight > 0:
            tf = F.mse_loss(self.predictor(s[:, :-1], a).float(), s_tgt[:, 1:])
            loss = loss + w.tf_weight * tf
            logs["pred_tf"] = tf.item()
        if w.rollout > 0 and w.rollout_weight > 0:
            R = w.rollout
            ro = F.mse_loss(self.predictor.rollout(s[:, 0], a[:, :R]).float(), s_tgt[:, 1:R + 1])
            loss = loss + w.rollout_weight * ro
            logs["pred_rollout"] = ro.item()
        if w.smooth_weight > 0:
            sm = (s[:, 1:] - s[:, :-1]).float().pow(2).mean()
            loss = loss + w.smooth_weight * sm
            logs["smooth"] = sm.item()
        if self.idm is not None:
            idm = idm_loss(self.idm, s, a)
            loss = loss + w.idm_weight * idm
            logs["idm"] = idm.item()
        reg_in = s - s.mean(1, keepdim=True) if w.center_reg else s  # (B, F, D)
        loss, reg_logs = add_regulariser(loss, reg_in.transpose(0, 1), self.cfg.reg, int(batch["seed"]))  # (F, B, D)
        logs["latent_std"] = s.float().std(0).mean().item()
        return loss, logs | reg_logs

    # --- planning interface ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_state(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised obs (B, C, H, W) -> the predictor's input state (B, D) (online encoder)."""
        return encode_frames(self.encoder, obs, self.flat).float()

    @torch.no_grad()
    def encode_goal(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised goal obs (B, C, H, W) -> (B, D) in the space the predictor predicts (target encoder)."""
        return encode_frames(self.eval_encoder(), obs, self.flat).float()

    @property
    def action_repeat(self) -> int:
        """Env steps per planned action (world.frameskip): MPC executes each planned action this many times."""
        return self.cfg.world.frameskip

    @torch.no_grad()
    def imagine(self, s0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """s0 (B, D), planned actions (B, H, A), each held for frameskip env steps -> imagined states (B, H, D)."""
        return self.predictor.rollout(s0, a.repeat(1, 1, self.cfg.world.frameskip)).float()  # (B, H, k*A)
