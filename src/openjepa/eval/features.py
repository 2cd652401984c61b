"""Frozen features: encoder tokens mean-pooled over patches, (N, C, H, W) uint8 -> (N, D) float32 on CPU."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from tqdm.auto import tqdm

from openjepa.data.transforms import normalize


def autocast(device: torch.device, precision: str):
    """bf16 autocast on cpu/cuda (never fp16 on CPU); a no-op for fp32 or mps."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def extract_features(encoder: nn.Module, x: torch.Tensor, device: torch.device, precision: str = "bf16",
                     batch_size: int = 512, progress: bool = False, desc: str = "features") -> torch.Tensor:
    was_training = encoder.training
    encoder.eval()
    out = []
    bar = tqdm(total=x.shape[0], desc=desc, unit="img", disable=None if progress else True, leave=False)
    for i in range(0, x.shape[0], batch_size):
        xb = normalize(x[i:i + batch_size]).to(device)
        with autocast(device, precision):
            z = encoder(xb)  # (b, N, D)
        out.append(z.float().mean(1).cpu())  # (b, D)
        bar.update(xb.shape[0])
    bar.close()
    encoder.train(was_training)
    return torch.cat(out)


def pixel_features(x: torch.Tensor) -> torch.Tensor:
    """The `raw_pixels` baseline: normalised pixels, flattened: (N, C, H, W) uint8 -> (N, C*H*W)."""
    return normalize(x).flatten(1)
