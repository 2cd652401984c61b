"""Probe protocols: the same frozen-feature evaluations for every row (trained encoders, random_init, raw_pixels).

    mean       today's protocol: last-layer tokens mean-pooled (N, D); the linear probe (eval/probe.py) standardises
               every feature with the train set's mean/std, which is BatchNorm1d(affine=False) with its statistics
               frozen on the train set (MAE's linear-probe protocol), then logistic regression; kNN on the same
               pooled features.
    lastk      the mean-pooled outputs of the last eval.lastk blocks, each through the final norm, concatenated
               (N, k*D) (models/features.py, I-JEPA/DINO style); then exactly as `mean`.
    layernorm  the `mean` features through a per-sample LayerNorm without affine (each row centred and scaled
               over its D features) before the same standardisation + linear head: the LayerNorm variant of the
               "norm before the head" protocol. kNN on the LayerNorm'd features.
    attentive  one learned query cross-attending over the last layer's tokens (N, T, D) + a linear head
               (V-JEPA style), trained for a fixed budget of eval.attentive_epochs with AdamW; lr and weight
               decay are picked from a small grid on a validation split carved from the train features; the test
               set is scored once, with the chosen probe. No kNN (there is no single vector to compare).

Raw pixels have no layers: their `mean` and `lastk` features are the flattened normalised pixels; their attentive
probe attends over pixel patches (N, (H/p)*(W/p), p*p*C) with p the encoder's patch size, embedded linearly to
ATTN_WIDTH inside the probe. Every protocol returns {"linear_top1", ...} and "knn_top1" where it applies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.config import EVAL_PROTOCOLS as PROTOCOLS
from openjepa.data.transforms import normalize
from openjepa.eval.knn import knn_top1
from openjepa.eval.probe import linear_probe

ATTN_WIDTH = 64  # width pixel-patch tokens are embedded to inside the attentive probe
ATTN_LR_GRID = (1e-3, 3e-3)
ATTN_WD_GRID = (1e-4, 5e-2)
ATTN_BATCH = 256


def parse_protocols(text: str) -> list[str]:
    """'mean,lastk' -> ['mean', 'lastk'] (order kept, duplicates dropped); ValueError naming an unknown one."""
    out: list[str] = []
    for p in (s.strip() for s in str(text).split(",")):
        if p not in PROTOCOLS:
            raise ValueError(f"unknown protocol {p!r}; choose from {', '.join(PROTOCOLS)}")
        if p not in out:
            out.append(p)
    return out


def pixel_tokens(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> normalised pixel patches (N, (H/p)*(W/p), p*p*C), row-major over the patch grid (the
    raw-pixel tokens of the attentive probe). H and W must be multiples of p."""
    n, c, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a multiple of the patch size {patch}")
    z = normalize(x).reshape(n, c, h // patch, patch, w // patch, patch)
    return z.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // patch) * (w // patch), patch * patch * c)


def layer_norm_rows(z: torch.Tensor) -> torch.Tensor:
    """Per-sample LayerNorm without affine over the last dim (the `layernorm` protocol's input)."""
    return F.layer_norm(z.float(), z.shape[-1:])


class AttentiveProbe(nn.Module):
    """One learned query cross-attending over tokens (B, T, D_in) -> logits (B, classes). With `embed`, the tokens
    first go through a Linear(D_in, width) (raw-pixel patches); otherwise width = D_in."""

    def __init__(self, d_in: int, n_classes: int, width: int | None = None, heads: int = 4):
        super().__init__()
        width = width or d_in
        self.embed = nn.Linear(d_in, width) if width != d_in else nn.Identity()
        heads = heads if width % heads == 0 else 1
        self.norm = nn.LayerNorm(width)
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.norm(self.embed(tokens))  # (B, T, W)
        out, _ = self.attn(self.query.expand(tokens.shape[0], -1, -1), kv, kv, need_weights=False)  # (B, 1, W)
        return self.head(out[:, 0])  # (B, classes)


def _train_attentive(tok: torch.Tensor, y: torch.Tensor, n_classes: int, width: int | None, lr: float, wd: float,
                     epochs: int, seed: int) -> AttentiveProbe:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the probe's init never moves the caller's global RNG
        torch.manual_seed(seed)
        probe = AttentiveProbe(tok.shape[-1], n_classes, width)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=wd)
    probe.train()
    for _ in range(epochs):
        for idx in torch.randperm(tok.shape[0], generator=g).split(ATTN_BATCH):
            loss = F.cross_entropy(probe(tok[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return probe.eval()


@torch.no_grad()
def _accuracy(probe: AttentiveProbe, tok: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([probe(tok[i:i + 1024]).argmax(1) for i in range(0, tok.shape[0], 1024)])
    return float((pred == y).float().mean())


def attentive_fit(train_tok: torch.Tensor, train_y: torch.Tensor, epochs: int = 10, width: int | None = None,
                  seed: int = 0, n_classes: int | None = None) -> tuple[AttentiveProbe, dict]:
    """Train the attentive probe on the train tokens only: each (lr, wd) of the grid is fitted on 90% of them and
    scored on the other 10%; the best is returned with {"attentive_lr", "attentive_wd", "attentive_val_top1"}.
    Ties keep the earlier grid point. Deterministic on CPU for a given seed."""
    tok, y = train_tok.float(), train_y.long()
    n_classes = n_classes or int(y.max()) + 1
    perm = torch.randperm(tok.shape[0], generator=torch.Generator().manual_seed(seed))
    n_val = max(1, tok.shape[0] // 10)
    val, fit = perm[:n_val], perm[n_val:]
    best: tuple[float, AttentiveProbe | None, float, float] = (-1.0, None, 0.0, 0.0)
    for lr in ATTN_LR_GRID:
        for wd in ATTN_WD_GRID:
            probe = _train_attentive(tok[fit], y[fit], n_classes, width, lr, wd, epochs, seed)
            acc = _accuracy(probe, tok[val], y[val])
            if acc > best[0]:
                best = (acc, probe, lr, wd)
    acc, probe, lr, wd = best
    assert probe is not None
    return probe, {"attentive_lr": lr, "attentive_wd": wd, "attentive_val_top1": acc}


def attentive_probe(train_tok: torch.Tensor, train_y: torch.Tensor, test_tok: torch.Tensor, test_y: torch.Tensor,
                    epochs: int = 10, width: int | None = None, seed: int = 0) -> dict:
    """{"linear_top1": test top-1 of the probe chosen on train-only validation, + attentive_fit's choices}."""
    n_classes = int(max(train_y.max(), test_y.max())) + 1  # the head's size only; labels are not read otherwise
    probe, info = attentive_fit(train_tok, train_y, epochs, width, seed, n_classes)
    return {"linear_top1": _accuracy(probe, test_tok.float(), test_y.long()), **info}


Featurize = Callable[[torch.Tensor, str, str], torch.Tensor]  # (images, pool, desc) -> features


def encoder_featurizer(encoder: nn.Module, device: torch.device, precision: str, batch_size: int, k: int,
                       progress: bool = False) -> Featurize:
    """Features of an openjepa encoder for each pool ("mean", "lastk", "tokens")."""
    from openjepa.eval.features import extract_features

    def featurize(x: torch.Tensor, pool: str, desc: str) -> torch.Tensor:
        return extract_features(encoder, x, device, precision, batch_size, progress, desc, pool=pool, k=k)

    return featurize


def pixel_featurizer(patch: int) -> Featurize:
    """The raw-pixel baseline for each pool: flattened pixels for "mean"/"lastk", pixel patches for "tokens"."""
    from openjepa.eval.features import pixel_features

    def featurize(x: torch.Tensor, pool: str, desc: str) -> torch.Tensor:
        return pixel_tokens(x, patch) if pool == "tokens" else pixel_features(x)

    return featurize


def evaluate_protocols(featurize: Featurize, split, protocols: list[str] | tuple[str, ...], cfg,
                       pixels: bool = False, name: str = "") -> dict[str, dict]:
    """One model under every protocol: {protocol: {"linear_top1", "knn_top1" (vector protocols), probe choices}}.
    `cfg` is an EvalConfig (probe_iters, knn_k, knn_temperature, attentive_epochs); split = (x_tr, y_tr, x_te, y_te).
    `pixels`: the raw-pixel row, whose attentive probe embeds patches to ATTN_WIDTH."""
    x_tr, y_tr, x_te, y_te = split
    out: dict[str, dict] = {}
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def feats(pool: str) -> tuple[torch.Tensor, torch.Tensor]:
        if pool not in cache:
            cache.clear()  # token tensors are large: hold one pool at a time
            cache[pool] = (featurize(x_tr, pool, f"{name} {pool}: train"), featurize(x_te, pool, f"{name} {pool}: test"))
        return cache[pool]

    for p in protocols:
        if p == "attentive":
            t_tr, t_te = feats("tokens")
            out[p] = attentive_probe(t_tr, y_tr, t_te, y_te, epochs=cfg.attentive_epochs,
                                     width=ATTN_WIDTH if pixels else None)
            continue
        z_tr, z_te = feats("lastk" if p == "lastk" else "mean")
        if p == "layernorm":
            z_tr, z_te = layer_norm_rows(z_tr), layer_norm_rows(z_te)
        row = linear_probe(z_tr, y_tr, z_te, y_te, iters=cfg.probe_iters)
        row["knn_top1"] = knn_top1(z_tr, y_tr, z_te, y_te, k=cfg.knn_k, temperature=cfg.knn_temperature)
        row["dim"] = int(z_te.shape[1])
        out[p] = row
    return out
