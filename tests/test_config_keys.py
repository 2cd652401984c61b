"""Every config key either works for the chosen method or is refused naming it: for each method of METHODS and each
key of each section, a non-default valid value is either refused by `check_config` with a ConfigError naming that
key, or the key is on the method's HONOURED list (and a sample of those is shown to change the built method)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from openjepa.config import SECTIONS, ConfigError, build_config
from openjepa.methods import METHODS
from openjepa.validate import check_config

# a valid config per method, from which one key at a time is changed
BASE = {
    "ijepa": [],
    "mae": ["--train.method=mae"],
    "lejepa": ["--train.method=lejepa"],
    "vjepa": ["--train.method=vjepa", "--data.dataset=physics", "--data.img_size=32", "--model.patch_size=8"],
    "vpixel": ["--train.method=vpixel", "--data.dataset=physics", "--data.img_size=32", "--model.patch_size=8"],
    "world_model": ["--train.method=world_model", "--data.dataset=trajectories", "--model.encoder=cnn",
                    "--data.img_size=65", "--world.predictor=transformer"],
}

# a non-default valid value per key (a method's BASE may make another value the valid one: OTHER)
VALUE = {
    "data.dataset": "synthetic", "data.path": "somewhere", "data.img_size": 64, "data.channels": 3,
    "data.batch_size": 64, "data.crop_scale": [0.5, 1.0], "data.flip": True, "data.skip_bad": True,
    "data.workers": 2, "data.prefetch": 4, "data.max_bad_fraction": 0.01, "data.index_dir": "index",
    "data.val_holdout": 1000,
    "model.encoder": "cnn", "model.patch_size": 2, "model.dim": 96, "model.depth": 3, "model.heads": 6,
    "model.mlp_ratio": 2.0, "model.pred_dim": 48, "model.pred_depth": 2, "model.pred_heads": 6,
    "model.proj_hidden": 256, "model.proj_dim": 32,
    "mask.n_targets": 2, "mask.target_scale": [0.1, 0.2], "mask.target_aspect": [0.5, 2.0],
    "mask.context_scale": [0.9, 1.0], "mask.context_aspect": [0.8, 1.2], "mask.min_context": 2,
    "views.global_views": 3, "views.local_views": 1, "views.local_size": 8, "views.local_scale": [0.2, 0.5],
    "reg.ema": False, "reg.kind": "vicreg", "reg.on": "predicted", "reg.var_weight": 2.0, "reg.cov_weight": 0.1,
    "reg.sigreg_lambda": 0.1, "reg.sigreg_directions": 64, "reg.sigreg_points": 9, "reg.sigreg_t_max": 2.0,
    "optim.lr": 2e-3, "optim.start_lr": 1e-4, "optim.final_lr": 1e-5, "optim.warmup_frac": 0.2,
    "optim.weight_decay": 0.1, "optim.final_weight_decay": 0.2, "optim.betas": [0.8, 0.99], "optim.grad_clip": 0.5,
    "optim.ema_start": 0.99, "optim.ema_end": 0.999,
    "train.method": "mae", "train.steps": 50, "train.seed": 1, "train.device": "cpu", "train.precision": "fp32",
    "train.loss": "l2", "train.log_every": 5, "train.monitor_every": 50, "train.monitor_samples": 64,
    "train.ckpt_every": 100, "train.accum_steps": 2, "train.parallel": "fsdp", "train.keep_last": 2,
    "train.max_bad_steps": 2, "train.on_nonfinite": "stop", "train.rollback_lr_factor": 0.25,
    "train.max_rollbacks": 1, "train.stop_after": 10, "train.threads": 1, "train.progress": False,
    "train.compile": True,
    "eval.train_samples": 1000, "eval.test_samples": 500, "eval.knn_k": 10, "eval.knn_temperature": 0.1,
    "eval.batch_size": 64, "eval.probe_iters": 50, "eval.protocols": "mean,attentive", "eval.lastk": 2,
    "eval.attentive_epochs": 3,
    "video.frames": 32, "video.tubelet": 4, "video.context_frames": 4, "video.mask": "tube", "video.target": "residual",
    "video.delta": True, "video.stem": "hmlp", "video.physics_videos": 100, "video.physics_frames": 40,
    "video.physics_seed": 3, "video.physics_occlusion": 0.5, "video.physics_ball_scale": 1.5,
    "video.physics_kinds": [1, 1, 1, 1, 1], "video.physics_swap": 0.5, "video.physics_style": "random",
    "video.physics_render_scales": [1, 2], "video.physics_fps_scales": [1.0, 2.0], "video.clip_frames": 24,
    "world.predictor": "transformer", "world.cond": "tokens", "world.action_dim": 3, "world.frames": 25,
    "world.frameskip": 2, "world.rollout": 4, "world.tf_weight": 0.5, "world.rollout_weight": 0.5,
    "world.smooth_weight": 0.5, "world.idm_weight": 0.0, "world.target_stopgrad": True, "world.center_reg": True,
}
# keys whose VALUE would trip a different key's check under a method's BASE
OTHER = {
    ("ijepa", "train.method"): "mae", ("vjepa", "train.method"): "vpixel", ("vpixel", "train.method"): "vjepa",
    ("world_model", "train.method"): "world_model",  # nothing else trains on trajectories: checked below
    ("vjepa", "data.dataset"): "videos", ("vpixel", "data.dataset"): "videos",
    ("world_model", "data.dataset"): "trajectories",
    ("vjepa", "data.img_size"): 64, ("vpixel", "data.img_size"): 64, ("world_model", "data.img_size"): 33,
    ("vjepa", "model.patch_size"): 4, ("vpixel", "model.patch_size"): 4,
    ("world_model", "model.encoder"): "vit", ("world_model", "world.predictor"): "gru",
    ("ijepa", "model.encoder"): "resnet", ("mae", "model.encoder"): "resnet", ("lejepa", "model.encoder"): "resnet",
    ("vjepa", "video.stem"): "hmlp", ("vpixel", "video.stem"): "hmlp",
    ("vjepa", "reg.ema"): False, ("world_model", "reg.ema"): True,
}
EXTRA = {  # (method, key): what else the changed key needs to be valid, or to be read at all
    ("vjepa", "data.dataset"): {"data.path": "clips"}, ("vpixel", "data.dataset"): {"data.path": "clips"},
    ("vjepa", "data.path"): {"data.dataset": "videos"}, ("vpixel", "data.path"): {"data.dataset": "videos"},
    ("vjepa", "video.clip_frames"): {"data.dataset": "videos", "data.path": "clips"},
    ("vpixel", "video.clip_frames"): {"data.dataset": "videos", "data.path": "clips"},
    ("world_model", "model.encoder"): {"data.img_size": 64},
    ("world_model", "world.target_stopgrad"): {"reg.ema": False},  # the EMA target is always under stop-grad
}

# read by add_regulariser when reg.kind adds their term (the test turns both on); refused otherwise (below)
_REG = ("reg.var_weight", "reg.cov_weight", "reg.sigreg_lambda", "reg.sigreg_directions", "reg.sigreg_points",
        "reg.sigreg_t_max")
_ALL = ("model.dim", "model.depth", "data.img_size", "data.channels", "data.batch_size", "data.dataset", "data.path",
        "reg.kind", "reg.ema", "train.method") + _REG + tuple(
        f"optim.{k}" for k in ("lr", "start_lr", "final_lr", "warmup_frac", "weight_decay", "final_weight_decay",
                               "betas", "grad_clip")) + tuple(
        f"train.{k}" for k in ("steps", "seed", "device", "precision", "log_every", "monitor_every",
                               "monitor_samples", "ckpt_every", "accum_steps", "parallel", "keep_last",
                               "max_bad_steps", "on_nonfinite", "rollback_lr_factor", "max_rollbacks",
                               "stop_after", "threads", "progress", "compile"))
_EVAL = tuple(f"eval.{k}" for k in ("train_samples", "test_samples", "knn_k", "knn_temperature", "batch_size",
                                    "probe_iters", "protocols", "lastk", "attentive_epochs"))
_VIT = ("model.patch_size", "model.heads", "model.mlp_ratio")
_PRED = ("model.pred_dim", "model.pred_depth", "model.pred_heads")
_MASK = tuple(f"mask.{k}" for k in ("n_targets", "target_scale", "target_aspect", "context_scale", "context_aspect",
                                    "min_context"))
_VIEWS = tuple(f"views.{k}" for k in ("global_views", "local_views", "local_size", "local_scale"))
_VIDEO = tuple(f"video.{k}" for k in ("frames", "tubelet", "context_frames", "mask", "delta", "stem",
                                      "physics_videos", "physics_frames", "physics_seed", "physics_occlusion",
                                      "physics_ball_scale", "physics_kinds", "physics_swap", "physics_style",
                                      "physics_render_scales", "physics_fps_scales"))
_WORLD = tuple(f"world.{k}" for k in ("predictor", "cond", "action_dim", "frames", "frameskip", "rollout",
                                      "tf_weight", "rollout_weight", "smooth_weight", "idm_weight", "center_reg"))
_EMA = ("optim.ema_start", "optim.ema_end")
_HOLDOUT = ("data.val_holdout",)  # carves Fashion-MNIST, which the image methods' BASE trains on; refused elsewhere

# what each method's code path reads (grep: masked_batch reads data.crop_scale/flip; build_predictor the pred_*;
# add_regulariser reg.kind; prediction_loss train.loss; TargetEncoder reg.ema and optim.ema_*; ...)
HONOURED = {  # the image methods take model.encoder=resnet (OTHER) as well as vit; cnn is refused
    "ijepa": set(_ALL + _EVAL + _VIT + _PRED + _MASK + _EMA + ("data.crop_scale", "data.flip", "train.loss",
                                                                "reg.on", "model.encoder") + _HOLDOUT),
    "mae": set(_ALL + _EVAL + _VIT + _PRED + _MASK + ("data.crop_scale", "data.flip", "model.encoder") + _HOLDOUT),
    "lejepa": set(_ALL + _EVAL + _VIT + _VIEWS + ("data.crop_scale", "data.flip", "model.proj_hidden",
                                                    "model.proj_dim", "model.encoder") + _HOLDOUT),
    "vjepa": set(_ALL + _VIT + _PRED + _VIDEO + _EMA + ("data.flip", "train.loss", "video.target",
                                                        "video.clip_frames")),
    "vpixel": set(_ALL + _VIT + _PRED + _VIDEO + ("data.flip", "video.clip_frames")),
    # the transformer predictor (BASE) reads world.cond, pred_heads and mlp_ratio; the cnn encoder has no
    # patches or heads (refused)
    "world_model": set(_ALL + _EVAL + _PRED + _WORLD + _EMA + ("model.mlp_ratio", "model.encoder",
                                                               "world.target_stopgrad")),
}


def _keys():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            yield f"{section}.{f.name}"


def _override(key, value):
    v = str(value).lower() if isinstance(value, bool) else value
    v = "[" + ",".join(str(x) for x in v) + "]" if isinstance(v, list) else v
    return f"--{key}={v}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_key_is_honoured_or_refused(name):
    assert sorted(BASE) == sorted(METHODS)
    check_config(build_config({}, BASE[name]))  # the base itself is valid
    missing = [k for k in _keys() if k not in VALUE]
    assert not missing, f"no test value for {missing}"
    wrong = []
    for key in _keys():
        value = OTHER.get((name, key), VALUE[key])
        extra = [_override(k, v) for k, v in EXTRA.get((name, key), {}).items()]
        if key.startswith("reg.") and key not in ("reg.ema", "reg.kind", "reg.on"):  # with the regulariser on
            extra.append("--reg.kind=vicreg+sigreg")
        try:
            cfg = check_config(build_config({}, BASE[name] + extra + [_override(key, value)]))
        except ConfigError as e:
            if key in HONOURED[name] or not str(e).startswith(key + ":"):
                wrong.append(f"{key}={value!r}: refused ({e})")
            continue
        if key not in HONOURED[name]:
            wrong.append(f"{key}={value!r}: accepted but not on the honoured list of {name}")
        elif cfg.train.method != name and key != "train.method":
            wrong.append(f"{key}: changed the method")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


def test_conditional_refusals_name_the_key():
    """Keys another key turns off are refused naming them; presets never set them."""
    cases = [
        (["--reg.kind=none", "--reg.var_weight=2"], "reg.var_weight"),
        (["--reg.kind=vicreg", "--reg.sigreg_lambda=0.2"], "reg.sigreg_lambda"),
        (["--train.method=lejepa", "--optim.ema_start=0.9"], "optim.ema_start"),
        (BASE["world_model"] + ["--world.predictor=gru", "--world.cond=tokens"], "world.cond"),
        (BASE["world_model"] + ["--reg.ema=true", "--world.target_stopgrad=true"], "world.target_stopgrad"),
        (BASE["world_model"] + ["--world.rollout=0", "--world.rollout_weight=2"], "world.rollout_weight"),
        (BASE["vjepa"] + ["--video.mask=future", "--mask.n_targets=2"], "mask.n_targets"),
        (BASE["vjepa"] + ["--video.clip_frames=40"], "video.clip_frames"),
        (BASE["vjepa"][:1] + ["--data.dataset=videos", "--data.path=x", "--video.physics_frames=40"],
         "video.physics_frames"),
        (["--model.encoder=cnn"], "model.encoder"),
        (["--data.dataset=trajectories"], "data.dataset"),
        (["--train.method=mae", "--train.loss=l2"], "train.loss"),
        (BASE["vpixel"] + ["--video.target=residual"], "video.target"),
        (BASE["world_model"] + ["--data.flip=true"], "data.flip"),
        (BASE["world_model"] + ["--data.crop_scale=[0.5,1.0]"], "data.crop_scale"),
        (BASE["vjepa"] + ["--data.crop_scale=[0.5,1.0]"], "data.crop_scale"),
    ]
    for overrides, key in cases:
        cfg = build_config({}, overrides)  # parses: the refusal is the registry-aware check's
        with pytest.raises(ConfigError, match="^" + key.replace(".", r"\.")):
            check_config(cfg)
    # the same keys at their defaults pass
    check_config(build_config({}, BASE["world_model"] + ["--world.predictor=gru"]))
    check_config(build_config({}, BASE["vjepa"] + ["--video.mask=tube", "--mask.n_targets=2"]))


SMALL = ["--model.dim=32", "--model.depth=1", "--model.heads=2"]
SMALL_PRED = ["--model.pred_dim=16", "--model.pred_depth=1", "--model.pred_heads=2"]


def _fingerprint(name, overrides):
    """Parameter shapes and the loss of one fixed batch: what a key that is read changes."""
    extra = SMALL + (["--model.proj_hidden=32", "--model.proj_dim=8"] if name == "lejepa" else SMALL_PRED)
    cfg = check_config(build_config({}, BASE[name] + extra + overrides))
    torch.manual_seed(0)
    method = METHODS[name](cfg)
    shapes = tuple((k, tuple(p.shape)) for k, p in method.named_parameters())
    x = torch.randn(4, cfg.data.channels, cfg.data.img_size, cfg.data.img_size)
    batch = method.collate(x, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    loss, _ = method.step(batch)
    return shapes, round(loss.item(), 6)


@pytest.mark.parametrize("name,key,value", [
    ("ijepa", "train.loss", "l2"), ("ijepa", "data.crop_scale", [0.5, 1.0]), ("ijepa", "mask.n_targets", 2),
    ("ijepa", "model.pred_depth", 2), ("ijepa", "reg.on", "predicted"),
    ("mae", "data.flip", True), ("mae", "mask.n_targets", 2),
    ("lejepa", "views.local_views", 1), ("lejepa", "model.proj_dim", 16), ("lejepa", "data.crop_scale", [0.5, 1.0]),
])
def test_honoured_keys_change_the_method(name, key, value):
    extra = ["--reg.kind=vicreg"] if key == "reg.on" else []
    assert _fingerprint(name, extra) != _fingerprint(name, extra + [_override(key, value)])
