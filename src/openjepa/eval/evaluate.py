"""Frozen-encoder evaluation on Fashion-MNIST or on labelled train/val image folders (ImageNet layout) or shards:
linear probe, kNN top-1 and the collapse panel.

`evaluate_features` scores any (N, D) feature extractor; `evaluate_encoder` wraps a ViT-style encoder
(or None for the raw-pixel baseline). Images are brought to the model's input size and channel count
with `to_model_input`, so a model trained on 64x64 RGB images is still probed on Fashion-MNIST.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from openjepa.config import EvalConfig, build_config
from openjepa.data.fashion_mnist import holdout_split, load_fashion_mnist
from openjepa.data.transforms import to_model_input
from openjepa.eval.collapse import collapse_message, collapse_panel
from openjepa.eval.features import extract_features, pixel_features
from openjepa.eval.knn import knn_top1
from openjepa.eval.probe import linear_probe
from openjepa.eval.report import write_report
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_method, resolve_checkpoint
from openjepa.train.run import provenance, select_device
from openjepa.validate import resolve_config

PANEL_SAMPLES = 4096  # test embeddings used for the collapse panel


def eval_split(cfg: EvalConfig, data_path: str | None, img_size: int, channels: int, seed: int = 0,
               holdout: int = 0):
    """Fixed, seeded subsets of Fashion-MNIST as model input: (x_tr, y_tr, x_te, y_te) of eval.train_samples and
    eval.test_samples images. holdout 0: from the train and test splits. holdout > 0: both from the train split,
    the probe's images outside its validation carve holdout_split(60000, holdout) and the scored ones inside it
    (the test split is not read: a recipe chosen on them has never seen a test image)."""
    x_tr, y_tr = load_fashion_mnist("train", data_path)
    if holdout:
        x_te, y_te = x_tr, y_tr
        te_pool, tr_pool = holdout_split(x_tr.shape[0], holdout)
        parts = ("the train split less the validation carve", "the validation carve")
    else:
        x_te, y_te = load_fashion_mnist("test", data_path)
        tr_pool, te_pool = torch.arange(x_tr.shape[0]), torch.arange(x_te.shape[0])
        parts = ("the train split", "the test split")
    for key, want, part, pool in (("train_samples", cfg.train_samples, parts[0], tr_pool),
                                  ("test_samples", cfg.test_samples, parts[1], te_pool)):
        if want > len(pool):
            raise ValueError(f"eval.{key}={want}, but {part} holds {len(pool)} images")
    g = torch.Generator().manual_seed(seed)
    tr = tr_pool[torch.randperm(len(tr_pool), generator=g)[: cfg.train_samples]]
    te = te_pool[torch.randperm(len(te_pool), generator=g)[: cfg.test_samples]]
    return (to_model_input(x_tr[tr], img_size, channels), y_tr[tr],
            to_model_input(x_te[te], img_size, channels), y_te[te])


def folder_split(cfg: EvalConfig, train_dir: str | Path, val_dir: str | Path, img_size: int, channels: int,
                 workers: int = 0, seed: int = 0, index_dir: str | None = None):
    """Seeded subsets (eval.train_samples of the train set, eval.test_samples of the val set) of two labelled image
    folders (root/<class>/...) or shard sets (.cls labels), decoded with the evaluation view (centred square at
    img_size) in `workers` processes: ((x_tr, y_tr, x_te, y_te), class names, unreadable files skipped).
    The pixels are held in memory (N x C x img_size^2 bytes): size eval.*_samples for it."""
    from openjepa.data.streaming import ImageDecoder, SubsetRecords, sequential_batches
    from openjepa.eval.features import index_input

    tr, te = index_input(train_dir, index_dir), index_input(val_dir, index_dir)
    for r, d in ((tr, train_dir), (te, val_dir)):
        if not r.labelled:
            raise ValueError(f"{d} has no labels: eval needs class folders (root/<class>/image) or shards whose "
                             f"samples all have a .cls label")
    if tr.classes != te.classes:  # the val set must not renumber the classes
        a, b = set(tr.classes or []), set(te.classes or [])
        raise ValueError(f"{train_dir} and {val_dir} have different classes: only in train {sorted(a - b)[:5]}, "
                         f"only in val {sorted(b - a)[:5]}")
    g = torch.Generator().manual_seed(seed)
    decoder = ImageDecoder(img_size, channels, crop_scale=None)
    bad: list[tuple[str, str]] = []

    def decode(records, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        keep = torch.randperm(len(records), generator=g)[:n].sort().values.numpy()  # read in file order
        xs, ys = [], []
        for b in sequential_batches(SubsetRecords(records, keep), decoder, cfg.batch_size, workers=workers):
            bad.extend(b["bad"])
            if b["x"] is not None:
                xs.append(b["x"])
                ys.append(b["y"])
        if not xs:
            raise ValueError(f"no readable image in {records.root}")
        return torch.cat(xs), torch.cat(ys)

    x_tr, y_tr = decode(tr, cfg.train_samples)
    x_te, y_te = decode(te, cfg.test_samples)
    classes = tr.classes or [str(c) for c in range(int(max(y_tr.max(), y_te.max())) + 1)]
    return (x_tr, y_tr, x_te, y_te), classes, bad


def evaluate_features(name: str, featurize: Callable[[torch.Tensor, str], torch.Tensor], split, cfg: EvalConfig
                      ) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Returns (row, test features, test labels); row has name, linear_top1, knn_top1, rankme, feat_std,
    mean_cos, collapsed, dim, eval_seconds."""
    t0 = time.time()
    x_tr, y_tr, x_te, y_te = split
    z_tr = featurize(x_tr, f"{name}: train features")
    z_te = featurize(x_te, f"{name}: test features")
    row: dict = {"name": name}
    row.update(linear_probe(z_tr, y_tr, z_te, y_te, iters=cfg.probe_iters))
    row["knn_top1"] = knn_top1(z_tr, y_tr, z_te, y_te, k=cfg.knn_k, temperature=cfg.knn_temperature)
    row.update(collapse_panel(z_te[:PANEL_SAMPLES]))
    row["dim"] = int(z_te.shape[1])
    row["eval_seconds"] = round(time.time() - t0, 2)
    return row, z_te, y_te


def evaluate_encoder(name: str, encoder: nn.Module | None, split, cfg: EvalConfig, device: torch.device,
                     precision: str = "bf16", progress: bool = True, patch: int = 4
                     ) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """evaluate_features on the encoder's mean-pooled features (None: the raw-pixel baseline). When eval.protocols
    names more than "mean", row["protocols"] = {protocol: {"linear_top1", "knn_top1" where it applies, ...}} in
    the order asked (eval/protocols.py); `patch` cuts the raw-pixel tokens of the attentive probe."""
    from openjepa.eval.protocols import encoder_featurizer, evaluate_protocols, parse_protocols, pixel_featurizer

    if encoder is None:
        row, z, y = evaluate_features(name, lambda x, desc: pixel_features(x), split, cfg)
        featurize = pixel_featurizer(patch)
    else:
        encoder = encoder.to(device)

        def features(x: torch.Tensor, desc: str) -> torch.Tensor:
            return extract_features(encoder, x, device, precision, cfg.batch_size, progress, desc)

        row, z, y = evaluate_features(name, features, split, cfg)
        featurize = encoder_featurizer(encoder, device, precision, cfg.batch_size, cfg.lastk, progress)
    protocols = parse_protocols(cfg.protocols)
    if protocols != ["mean"]:
        t0 = time.time()
        others = evaluate_protocols(featurize, split, [p for p in protocols if p != "mean"], cfg,
                                    pixels=encoder is None, name=name)
        mean = {k: row[k] for k in ("linear_top1", "linear_l2", "knn_top1", "dim")}
        row["protocols"] = {p: mean if p == "mean" else others[p] for p in protocols}
        row["eval_seconds"] = round(row["eval_seconds"] + time.time() - t0, 2)
    return row, z, y


def evaluate_run(target: str | Path, baselines: bool, overrides: list[str], progress: bool = True,
                 write: bool = True, name: str | None = None, train_dir: str | Path | None = None,
                 val_dir: str | Path | None = None) -> dict:
    """Evaluate a checkpoint (and optionally the raw-pixel and random-init baselines on the same split) on
    Fashion-MNIST, or on the labelled folders train_dir / val_dir (both or neither). When `target` is a run
    directory, eval.json, embedding.npz and report.html are written there."""
    if (train_dir is None) != (val_dir is None):
        raise ValueError("give both --train-dir and --val-dir (labelled image folders), or neither")
    ckpt = resolve_checkpoint(target)
    method, cfg, state = load_method(ckpt)
    if method.is_video:
        raise ValueError(f"{ckpt} is a video world model ({cfg.train.method}); `openjepa eval` probes image "
                         f"encoders. Use `openjepa surprise`, `openjepa bench physics` or `openjepa embed`")
    cfg = resolve_config(build_config(cfg.to_dict(), overrides))  # eval.* overrides
    device = select_device(cfg.train.device)
    warnings: list[str] = []
    if train_dir is not None:
        workers = min(cfg.data.workers, os.cpu_count() or 1)  # the run's, at most one per core
        split, class_names, bad = folder_split(cfg.eval, train_dir, val_dir, cfg.data.img_size, cfg.data.channels,
                                               workers, index_dir=cfg.data.index_dir)
        if bad:
            warnings.append(f"{len(bad)} unreadable image(s) left out of the probes, e.g. {bad[0][0]} ({bad[0][1]})")
    else:
        split = eval_split(cfg.eval, cfg.data.path if cfg.data.dataset == "fashion_mnist" else None,
                           cfg.data.img_size, cfg.data.channels)
        class_names = FASHION_CLASSES
    name = name or cfg.train.method
    patch = cfg.model.patch_size
    row, z, y = evaluate_encoder(name, method.eval_encoder(), split, cfg.eval, device, cfg.train.precision, progress,
                                 patch)
    row.update(step=int(state["step"]), checkpoint=str(ckpt))
    rows = [row]
    if baselines:
        torch.manual_seed(cfg.train.seed)
        rand = METHODS[cfg.train.method](cfg).eval_encoder()
        rows.append(evaluate_encoder("random_init", rand, split, cfg.eval, device, cfg.train.precision, progress,
                                     patch)[0])
        rows.append(evaluate_encoder("raw_pixels", None, split, cfg.eval, device, cfg.train.precision, progress,
                                     patch)[0])
    warnings += [collapse_message(r) + f" [{r['name']}]" for r in rows if r["collapsed"] and r["name"] != "random_init"]
    result = {"checkpoint": str(ckpt), "eval": cfg.to_dict()["eval"], "rows": rows, "warnings": warnings,
              **provenance()}
    if train_dir is not None:
        result["data"] = {"train_dir": str(train_dir), "val_dir": str(val_dir), "classes": len(class_names)}
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    if write and run_dir is not None and (run_dir / "config.yaml").is_file():
        (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
        np.savez_compressed(run_dir / "embedding.npz", z=z[:2000].numpy(), y=y[:2000].numpy(),
                            class_names=np.array(class_names))
        result["report"] = str(write_report(run_dir))
    return result


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
