"""Ochre: a playable world model. `WorldModel` is the runtime entry point.

The runtime (and with it torch) loads on first use of `ochre.WorldModel`, so data
tools and their worker processes start quickly.
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
