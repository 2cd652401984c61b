"""The checks of a Config that need the registries: method, dataset and encoder names, the method's default for
`reg.ema`, which data a method trains on, and the keys a method cannot honour (`METHODS[name].check`).

    resolve_config(cfg)   names, reg.ema default, method vs data: for configs saved by a run (checkpoints,
                          exports, resumed runs), which were checked when the run started
    check_config(cfg)     resolve_config plus refusing every key set away from its default that the run would
                          ignore: for a config that starts a run (CLI, train(), benches)

Both return cfg (resolved in place) and raise ConfigError naming the key. Sits above `openjepa.config` and the
registries, so neither imports the other.
"""

from __future__ import annotations

from openjepa.config import Config, _check, check_unused, refuse_changed
from openjepa.methods import METHODS
from openjepa.models import ENCODERS
from openjepa.train.run import DATASETS, STREAMING, VIDEO_DATASETS


def resolve_config(cfg: Config) -> Config:
    """Check the registry names and fill `reg.ema` with the method's default; see the module docstring."""
    t, d = cfg.train, cfg.data
    _check(t.method in METHODS, "train.method", f"unknown method {t.method!r}; choose from {sorted(METHODS)}")
    _check(d.dataset in DATASETS or d.dataset in STREAMING, "data.dataset",
           f"unknown dataset {d.dataset!r}; choose from {sorted(DATASETS)} or, streamed, {sorted(STREAMING)}")
    _check(cfg.model.encoder in ENCODERS, "model.encoder",
           f"unknown encoder {cfg.model.encoder!r}; choose from {sorted(ENCODERS)}")
    method = METHODS[t.method]
    if cfg.reg.ema is None:
        cfg.reg.ema = method.has_target
    _check(method.has_target or not cfg.reg.ema, "reg.ema",
           f"method {t.method!r} has no target encoder; drop reg.ema or set it to false")
    _check(t.method == "ijepa" or cfg.reg.on == "context", "reg.on",
           f"only ijepa regularises its predictions; method {t.method!r} needs reg.on=context")
    _check(method.is_video or d.dataset not in VIDEO_DATASETS, "data.dataset",
           f"data.dataset={d.dataset!r} holds videos; train it with a video method (vjepa, vpixel)")
    _check(not method.is_video or d.dataset in VIDEO_DATASETS, "data.dataset",
           f"method {t.method!r} trains on videos: data.dataset must be one of {', '.join(VIDEO_DATASETS)}")
    _check(method.has_actions == (d.dataset == "trajectories"), "data.dataset",
           f"method world_model trains on trajectories and only it does (train.method={t.method!r}, "
           f"data.dataset={d.dataset!r})")
    return cfg


def check_config(cfg: Config) -> Config:
    """resolve_config, then refuse the keys the run would ignore (`check_unused`, the method's `check`)."""
    resolve_config(cfg)
    check_unused(cfg)
    if not cfg.reg.ema:
        refuse_changed(cfg, ("optim.ema_start", "optim.ema_end"), "schedule the EMA target, which reg.ema=false "
                                                                  "turns off")
    METHODS[cfg.train.method].check(cfg)
    return cfg
