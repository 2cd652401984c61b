"""Frozen features for evaluation: encoder tokens pooled (models/features.py), (N, C, H, W) uint8 -> (N, D) float32 on
CPU, with a progress bar; the raw-pixel baseline."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from openjepa.data.transforms import normalize
from openjepa.models.features import Features


def autocast(device: torch.device, precision: str):
    """bf16 autocast on cpu/cuda (never fp16 on CPU); a no-op for fp32 or mps."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def extract_features(encoder: nn.Module, x: torch.Tensor, device: torch.device, precision: str = "bf16",
                     batch_size: int = 512, progress: bool = False, desc: str = "features", pool: str = "mean",
                     k: int = 4) -> torch.Tensor:
    """encoder.features(x, pool, k) (models/features.py) batch by batch with a progress bar: (N, D) for "mean",
    (N, T, D) for "tokens", (N, k*D) for "lastk". An encoder without the mixin is mean-pooled as before."""
    out = []
    bar = tqdm(total=x.shape[0], desc=desc, unit="img", disable=None if progress else True, leave=False)
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        if isinstance(encoder, Features):
            out.append(encoder.features(xb, pool, k, batch_size=batch_size, precision=precision))
        else:
            if pool != "mean":
                raise ValueError(f"pool={pool!r} needs an openjepa encoder (models/features.py)")
            out.append(_mean_tokens(encoder, xb, device, precision))
        bar.update(xb.shape[0])
    bar.close()
    return torch.cat(out)


def _mean_tokens(encoder: nn.Module, xb: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """Any module mapping (b, C, H, W) to tokens (b, N, D): mean over N, float32 on the CPU."""
    was_training = encoder.training
    encoder.eval()
    with autocast(device, precision):
        z = encoder(normalize(xb).to(device))  # (b, N, D)
    encoder.train(was_training)
    return z.float().mean(1).cpu()  # (b, D)


def pixel_features(x: torch.Tensor) -> torch.Tensor:
    """The `raw_pixels` baseline: normalised pixels, flattened: (N, C, H, W) uint8 -> (N, C*H*W)."""
    return normalize(x).flatten(1)


def index_input(path: str | Path, index_dir: str | Path | None = None):
    """A folder of images (ImageNet layout allowed), a .tar shard or a folder of .tar shards -> streaming Records
    (data/streaming/index.py). A folder holding any .tar file is read as shards."""
    from openjepa.data.streaming import index_image_folder, index_shards

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_file():
        if p.suffix.lower() != ".tar":
            raise ValueError(f"{p}: expected an image folder, a .tar shard or a folder of .tar shards")
        return index_shards(p, index_dir)
    if next(p.rglob("*.tar"), None) is not None:
        return index_shards(p, index_dir)
    return index_image_folder(p, index_dir)


@torch.no_grad()
def featurize_records(encoder: nn.Module, records, img_size: int, channels: int, device: torch.device,
                      precision: str = "bf16", batch_size: int = 256, workers: int = 0, pool: str = "mean",
                      k: int = 4, skip_bad: bool = False, progress: bool = False, desc: str = "embed"
                      ) -> dict[str, Any]:
    """Every sample of `records` once, in index order, through the evaluation view (the centred square of the short
    side at img_size, no augmentation) decoded in `workers` DataLoader processes, then encoder.features(pool, k),
    batch by batch (pixels are never all held). Returns {"features": (N', ...) float32, "labels": int64 (N',) or
    None, "index": int64 (N',) rows of `records`, "names": [str], "bad": [(name, reason)]}; an unreadable sample
    raises ValueError naming it unless skip_bad (then it is dropped and listed in "bad")."""
    from openjepa.data.streaming import ImageDecoder, sequential_batches

    decoder = ImageDecoder(img_size, channels, crop_scale=None)
    feats, index, bad = [], [], []
    bar = tqdm(total=len(records), desc=desc, unit="img", disable=None if progress else True)
    for b in sequential_batches(records, decoder, batch_size, workers=workers, pin_memory=device.type == "cuda"):
        if b["bad"] and not skip_bad:
            name, why = b["bad"][0]
            raise ValueError(f"cannot read {name} ({why}); pass --skip-bad to leave unreadable images out")
        bad += b["bad"]
        if b["x"] is not None:
            feats.append(extract_features(encoder, b["x"], device, precision, batch_size, pool=pool, k=k))
            index.append(b["index"])
        bar.update(len(b["index"]) + len(b["bad"]))
    bar.close()
    if not feats:
        raise ValueError(f"no readable image in {records.root}")
    idx = torch.cat(index)
    labels = torch.as_tensor(records.labels, dtype=torch.int64)[idx] if records.labelled else None
    return {"features": torch.cat(feats), "labels": labels, "index": idx,
            "names": [records.name(int(i)) for i in idx], "bad": bad}
