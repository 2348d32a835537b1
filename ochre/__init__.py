"""Ochre: a playable world model. `WorldModel` is the runtime entry point.

The runtime (and with it torch) loads on first use of `ochre.WorldModel`, so data
tools and their worker processes start quickly. Importing `ochre` registers the
Gymnasium id "ochre/World-v0" (`ochre.world_env.WorldEnv`, loaded on `gymnasium.make`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ochre.runtime import WorldModel, WorldState

__version__ = "0.1.0"
__all__ = ["WorldModel", "WorldState", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("WorldModel", "WorldState"):
        from ochre import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'ochre' has no attribute {name!r}")


def _register_world_env() -> None:
    """Register "ochre/World-v0" by a string entry point, so torch loads only when an env is made (idempotent)."""
    import gymnasium

    if "ochre/World-v0" not in gymnasium.registry:
        # make(..., max_episode_steps=N) replaces this limit; the env has none of its own
        gymnasium.register("ochre/World-v0", entry_point="ochre.world_env:WorldEnv", max_episode_steps=1000)


_register_world_env()
