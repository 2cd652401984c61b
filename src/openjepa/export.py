"""Exchanging trained encoders safely: `model.safetensors` + `config.json`, no pickle anywhere.

    export_encoder(checkpoint_or_run_dir, out_dir)   writes the encoder that the method evaluates
                                                      (`eval_encoder()`: the EMA target for I-JEPA)
    load_encoder(out_dir) -> nn.Module (eval mode)    rebuilds it from config.json and loads the tensors;
                                                      encoder.features(images, pool) for frozen features

safetensors files hold raw tensors and a JSON header only, so loading one runs no code; config.json holds the
run's resolved config (it decides the architecture) and provenance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "openjepa-encoder/1"


def export_encoder(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write out_dir/model.safetensors and out_dir/config.json for the checkpoint's evaluation encoder."""
    from safetensors.torch import save_file

    from openjepa.train.checkpoint import load_method, resolve_checkpoint

    method, cfg, state = load_method(checkpoint)
    encoder = method.eval_encoder()
    tensors = {k: v.detach().contiguous().clone() for k, v in encoder.state_dict().items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": FORMAT})
    info: dict[str, Any] = {"format": FORMAT, "config": cfg.to_dict(), "step": int(state["step"]),
                            "source": str(resolve_checkpoint(checkpoint)), "meta": state.get("meta", {}),
                            "output": "tokens (B, N, D) from forward(x (B, C, H, W)) (video models: x (B, C, T, H, W)); "
                                      "mean over N for one vector, or encoder.features(images, pool)"}
    (out / "config.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return out


def is_export(path: str | Path) -> bool:
    """Whether `path` is a folder written by `openjepa export`."""
    p = Path(path)
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def load_encoder(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The encoder exported to `path` (a folder from `openjepa export`), in eval mode on `device`; its
    `features(images, pool="mean"|"tokens"|"lastk")` gives frozen features (models/features.py)."""
    return load_encoder_and_config(path, device)[0]


def load_encoder_and_config(path: str | Path, device: torch.device | str = "cpu"):
    """(encoder, the run's resolved Config) of an exported folder: the config says the input size and channels."""
    from safetensors.torch import load_file

    from openjepa.config import build_config
    from openjepa.methods import METHODS
    from openjepa.methods.common import build_encoder
    from openjepa.methods.vjepa import build_video_encoder
    from openjepa.validate import resolve_config

    folder = Path(path)
    cfg_file, weights = folder / "config.json", folder / "model.safetensors"
    for f in (cfg_file, weights):
        if not f.is_file():
            raise FileNotFoundError(f"{folder} is not an exported encoder: {f.name} is missing (make one with "
                                    f"`openjepa export CHECKPOINT --out {folder}`)")
    info = json.loads(cfg_file.read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{cfg_file}: unknown format {info.get('format')!r}, expected {FORMAT!r}")
    cfg = resolve_config(build_config(info["config"]))
    build = build_video_encoder if METHODS[cfg.train.method].is_video else build_encoder  # tubelets or images
    encoder = build(cfg)
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # re-raised with the file name
        raise ValueError(f"cannot read {weights}: {e}") from e
    encoder.load_state_dict(tensors, strict=True)
    return encoder.to(device).eval(), cfg
