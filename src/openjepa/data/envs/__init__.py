"""Simulated control tasks with the gymnasium API; ENVS maps a name to (env class, its config dataclass)."""

from __future__ import annotations

import dataclasses
import typing

from openjepa.data.envs.four_rooms import FourRoomsConfig, FourRoomsEnv
from openjepa.data.envs.pusht import PushTConfig, PushTEnv
from openjepa.data.envs.two_rooms import TwoRoomsConfig, TwoRoomsEnv

ENVS = {
    "two_rooms": (TwoRoomsEnv, TwoRoomsConfig),
    "four_rooms": (FourRoomsEnv, FourRoomsConfig),
    "pusht": (PushTEnv, PushTConfig),
}


def env_kwargs(name: str, overrides: list[str] | tuple[str, ...]) -> dict:
    """`--env.KEY=VALUE` strings -> keyword arguments of ENVS[name]'s config, type-checked; errors name the key."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; choose from {sorted(ENVS)}")
    return override_kwargs(ENVS[name][1], overrides)


def override_kwargs(cls: type, overrides: list[str] | tuple[str, ...]) -> dict:
    """`--env.KEY=VALUE` strings -> keyword arguments of the config dataclass `cls`, type-checked; errors name the
    key (also `openjepa data driving`'s DrivingConfig)."""
    import yaml

    from openjepa.config import ConfigError, _coerce, _suggest

    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for item in overrides:
        body = item[2:] if item.startswith("--") else item
        dotted, _, raw = body.partition("=")
        section, _, key = dotted.partition(".")
        if section != "env":
            raise ConfigError(f"{item!r}: only --env.KEY=VALUE overrides are accepted here")
        if key not in names:
            raise ConfigError(f"unknown key env.{key}{_suggest(key, names)}")
        out[key] = _coerce(f"env.{key}", yaml.safe_load(raw), hints[key])
    return out


def make_env(name: str, overrides: list[str] | tuple[str, ...] = (), **kwargs):
    """ENVS[name] built from its config defaults, `kwargs` and `--env.KEY=VALUE` overrides (which win)."""
    env_cls, cfg_cls = ENVS[name] if name in ENVS else (None, None)
    if env_cls is None:
        raise ValueError(f"unknown env {name!r}; choose from {sorted(ENVS)}")
    return env_cls(cfg_cls(**(kwargs | env_kwargs(name, overrides))))
