"""Simulated control tasks with the gymnasium API; ENVS maps a name to (env class, its config dataclass)."""

from openjepa.data.envs.two_rooms import TwoRoomsConfig, TwoRoomsEnv

ENVS = {
    "two_rooms": (TwoRoomsEnv, TwoRoomsConfig),
}
