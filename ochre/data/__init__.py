"""Datasets on disk: sharded uint8 frames (or uint16 token grids) + actions + episode ids.

Modules: `store` (read/write), `windows` (training windows), `generate` (roll out
worlds), `policies` (exploration), `tokenize`, `importers`, `inspect`. The package
imports nothing itself, so data workers start without loading torch.
"""
