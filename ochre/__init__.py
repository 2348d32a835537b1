"""Ochre: a playable world model. `WorldModel` is the runtime entry point."""

from ochre.runtime import WorldModel, WorldState

__version__ = "0.1.0"
__all__ = ["WorldModel", "WorldState", "__version__"]
