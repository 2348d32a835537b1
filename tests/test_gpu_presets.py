"""The one-GPU dynamics presets load, are sized as their headers say, and say their wall time is an estimate."""

import pytest

from ochre.config import load_config
from ochre.training.dynamics_config import DynamicsTrainConfig
from tests.conftest import ROOT


@pytest.mark.parametrize("world", ["coinrun", "doom", "pong"])
def test_gpu_preset_loads_and_states_its_estimate(world):
    preset = ROOT / "configs" / world / "gpu.yaml"
    cfg = load_config(DynamicsTrainConfig, preset, ["train.device=cpu"])  # the preset asks for cuda
    assert (cfg.train.batch_size, cfg.model.hidden_dim, cfg.model.layers, cfg.train.amp) == (256, 256, 3, "bf16")
    assert cfg.train.ar_start < cfg.train.ar_end < cfg.train.max_steps and cfg.run.world == world
    header = preset.read_text().split("\ndata:")[0]
    assert "Expected wall time on one H100 80 GB" in header and "ESTIMATE" in header and "nothing was run on a GPU" in header
