"""Datasets on disk: sharded uint8 frames (or uint16 token grids) + actions + episode ids."""

from ochre.data.store import DatasetWriter, EpisodeDataset, read_manifest
from ochre.data.windows import Batch, WindowSampler

__all__ = ["Batch", "DatasetWriter", "EpisodeDataset", "WindowSampler", "read_manifest"]
