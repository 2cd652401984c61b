"""Action-conditioned predictors over latent states: s_{t+1} = P(s_{<=t}, a_{<=t}).

Shapes: s latent states (B, T, D); a actions (B, T, A), a[:, t] takes s[:, t] to s[:, t + 1].
Every predictor has

    forward(s, a) -> (B, T, D)       teacher-forced: output t predicts s_{t+1} from s_{<=t}, a_{<=t} only
                                     (frame-causal; tested by perturbing the future)
    rollout(s0, a) -> (B, H, D)      open loop from one state s0 (B, D) under actions a (B, H, A): output h is the
                                     imagined s_{h+1}, each prediction fed back as the next input

and predicts a residual (s_t + delta), so an untrained predictor starts at "nothing moves".

- `ActionTransformer` (V-JEPA 2-AC / DINO-WM style): one token per frame, causal attention over frames, with the
  action entering either by AdaLN modulation of its frame's token (`cond="adaln"`, DiT's adaLN-Zero: the
  action sets per-token shift, scale and gate of every block) or as its own token interleaved after the state
  token (`cond="tokens"`: [s_0, a_0, s_1, a_1, ...], prediction read at the action tokens). Learned frame
  positions for `max_frames` frames; longer rollouts keep a sliding window of the last `max_frames` frames.
- `ActionConv`: a residual conv stack over latent maps (encoder "cnn_map"), Markov; see its docstring.
- `ActionGRU` (PLDM's recurrent option): a GRU over inputs [s_t, embed(a_t)] whose hidden state carries memory
  across steps; delta = linear(h_{t+1}). Teacher forcing is one fused GRU call; a rollout is H cell steps, which
  makes it the cheapest predictor to plan with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.models.vit import Attention, Block


def causal_mask(n: int, device: torch.device) -> torch.Tensor:
    """(n, n) bool, True where attention is allowed: token i sees tokens j <= i."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block whose LayerNorms are modulated by a per-token condition c (adaLN-Zero)."""

    def __init__(self, dim: int, heads: int, cond_dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.mod = nn.Linear(cond_dim, 6 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.mod(c).chunk(6, dim=-1)  # each (B, T, dim)
        x = x + g1 * self.attn(self.norm1(x) * (1 + sc1) + sh1, attn_mask)
        return x + g2 * self.mlp(self.norm2(x) * (1 + sc2) + sh2)


class ActionTransformer(nn.Module):
    def __init__(self, dim: int, action_dim: int, pred_dim: int = 128, depth: int = 3, heads: int = 4,
                 max_frames: int = 17, cond: str = "adaln", mlp_ratio: float = 4.0):
        super().__init__()
        if cond not in ("adaln", "tokens"):
            raise ValueError(f"cond must be 'adaln' or 'tokens', got {cond!r}")
        self.cond, self.max_frames = cond, max_frames
        self.state_in = nn.Linear(dim, pred_dim)
        self.action_in = nn.Sequential(nn.Linear(action_dim, pred_dim), nn.GELU(), nn.Linear(pred_dim, pred_dim))
        self.pos = nn.Parameter(torch.zeros(max_frames, pred_dim))
        if cond == "adaln":
            self.blocks = nn.ModuleList(AdaLNBlock(pred_dim, heads, pred_dim, mlp_ratio) for _ in range(depth))
        else:
            self.type_emb = nn.Parameter(torch.zeros(2, pred_dim))  # state token, action token
            self.blocks = nn.ModuleList(Block(pred_dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(pred_dim)
        self.head = nn.Linear(pred_dim, dim)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.trunc_normal_(mod.weight, std=0.02)
                nn.init.zeros_(mod.bias)
        nn.init.trunc_normal_(self.pos, std=0.02)
        if cond == "adaln":
            for blk in self.blocks:  # adaLN-Zero: every block starts as the identity
                nn.init.zeros_(blk.mod.weight)
                nn.init.zeros_(blk.mod.bias)
        else:
            nn.init.trunc_normal_(self.type_emb, std=0.02)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        B, T, D = s.shape
        if T > self.max_frames:
            raise ValueError(f"{T} frames exceed the predictor's max_frames={self.max_frames}")
        x = self.state_in(s) + self.pos[:T]  # (B, T, P)
        e = self.action_in(a.to(x.dtype))  # (B, T, P)
        if self.cond == "adaln":
            mask = causal_mask(T, s.device)
            for blk in self.blocks:
                x = blk(x, e, mask)
            h = x  # (B, T, P)
        else:
            e = e + self.pos[:T] + self.type_emb[1]
            x = torch.stack([x + self.type_emb[0], e], dim=2).flatten(1, 2)  # (B, 2T, P): s_0, a_0, s_1, a_1, ...
            mask = causal_mask(2 * T, s.device)
            for blk in self.blocks:
                x = blk(x, mask)
            h = x[:, 1::2]  # (B, T, P) the action tokens
        return s + self.head(self.norm(h))  # (B, T, D)

    def rollout(self, s0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        states = [s0]  # each (B, D)
        preds = []
        W = self.max_frames
        for h in range(a.shape[1]):
            lo = max(0, h + 1 - W)
            ctx = torch.stack(states[lo:], dim=1)  # (B, <=W, D)
            nxt = self.forward(ctx, a[:, lo:h + 1])[:, -1]  # (B, D)
            preds.append(nxt)
            states.append(nxt)
        return torch.stack(preds, dim=1)  # (B, H, D)


class ActionGRU(nn.Module):
    def __init__(self, dim: int, action_dim: int, pred_dim: int = 128, depth: int = 1, **_: object):
        super().__init__()
        self.action_in = nn.Sequential(nn.Linear(action_dim, pred_dim), nn.GELU(), nn.Linear(pred_dim, pred_dim))
        self.gru = nn.GRU(dim + pred_dim, pred_dim, num_layers=depth, batch_first=True)
        self.head = nn.Sequential(nn.Linear(pred_dim, pred_dim), nn.GELU(), nn.Linear(pred_dim, dim))
        self.depth, self.pred_dim = depth, pred_dim

    def _step(self, s: torch.Tensor, a: torch.Tensor, hidden: torch.Tensor | None):
        inp = torch.cat([s, self.action_in(a.to(s.dtype))], dim=-1)  # (B, T, D + P)
        out, hidden = self.gru(inp, hidden)  # (B, T, P)
        return s + self.head(out), hidden

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._step(s, a, None)[0]  # (B, T, D)

    def rollout(self, s0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        s, hidden, preds = s0.unsqueeze(1), None, []
        for h in range(a.shape[1]):
            s, hidden = self._step(s, a[:, h:h + 1], hidden)  # (B, 1, D)
            preds.append(s)
        return torch.cat(preds, dim=1)  # (B, H, D)


class ActionConv(nn.Module):
    """Markov predictor over latent maps (encoder "cnn_map"): the state (B, T, D) is a flattened (C, h, w) map,
    the action is broadcast to every cell as k*A extra channels, and a residual conv stack predicts the change:

        s_{t+1} = s_t + conv1x1(GELU(conv3x3(... GELU(conv3x3([map_t, a_t])))))      depth 3x3 layers

    Convolutions apply one local rule everywhere, so motion and blocking by walls transfer to unseen layouts;
    depth 3x3 layers see `depth` cells around each cell (keep depth * cell size above one model step's move).
    Frame-causal trivially: output t depends on s_t and a_t only."""

    def __init__(self, dim: int, action_dim: int, pred_dim: int = 32, depth: int = 4,
                 map_shape: tuple[int, int, int] | None = None, **_: object):
        super().__init__()
        if map_shape is None or map_shape[0] * map_shape[1] * map_shape[2] != dim:
            raise ValueError(f"the conv predictor needs the encoder's map_shape (C, h, w) with C*h*w = {dim}; "
                             f"use it with model.encoder=cnn_map (got map_shape={map_shape})")
        self.map_shape = tuple(map_shape)
        c = map_shape[0]
        layers, inp = [], c + action_dim
        for _ in range(depth):
            layers += [nn.Conv2d(inp, pred_dim, 3, padding=1), nn.GELU()]
            inp = pred_dim
        self.net = nn.Sequential(*layers, nn.Conv2d(pred_dim, c, 1))
        nn.init.zeros_(self.net[-1].weight)  # starts at "nothing moves", like the other predictors
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        B, T, D = s.shape
        C, h, w = self.map_shape
        x = s.reshape(B * T, C, h, w)
        act = a.reshape(B * T, -1, 1, 1).to(x.dtype).expand(-1, -1, h, w)  # (B*T, A, h, w)
        return s + self.net(torch.cat([x, act], dim=1)).reshape(B, T, D)

    def rollout(self, s0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        s, preds = s0.unsqueeze(1), []
        for h in range(a.shape[1]):
            s = self.forward(s, a[:, h:h + 1])  # (B, 1, D)
            preds.append(s)
        return torch.cat(preds, dim=1)  # (B, H, D)


PREDICTORS = {
    "transformer": ActionTransformer,
    "gru": ActionGRU,
    "conv": ActionConv,
}


class InverseDynamics(nn.Module):
    """PLDM's inverse-dynamics head: a_t ~ MLP([s_t, s_{t+1}]); (B, T, D) x2 -> (B, T, A)."""

    def __init__(self, dim: int, action_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, action_dim))

    def forward(self, s: torch.Tensor, s_next: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s, s_next], dim=-1))


def idm_loss(idm: InverseDynamics, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the actions inferred from consecutive states: s (B, T+1, D), a (B, T, A)."""
    return F.mse_loss(idm(s[:, :-1], s[:, 1:]).float(), a.float())
