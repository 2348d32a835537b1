"""Device honesty: `auto` says what it chose and why, `cuda` without a GPU is one clear error, and every training run
records its device, torch version and throughput in the run folder and the checkpoint."""

import json
import re
from pathlib import Path

import pytest
import torch

from ochre.device import choose_device, cuda_missing, resolve_device
from ochre.errors import OchreError

ROOT = Path(__file__).resolve().parents[1]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@no_gpu
def test_auto_without_a_gpu_says_why_it_chose_the_cpu():
    choice = choose_device("auto")
    assert choice.device == torch.device("cpu")
    assert str(choice) == f"device: cpu ({cuda_missing()})"
    assert re.fullmatch(r"torch \S+ built without CUDA|CUDA not available: .+", cuda_missing())


def test_a_torch_built_without_cuda_is_named(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert str(choose_device("auto")) == f"device: cpu (torch {torch.__version__} built without CUDA)"


@no_gpu
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_asking_for_a_missing_gpu_is_one_clear_error(name):
    with pytest.raises(OchreError) as err:
        resolve_device(name, "train.device")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"train.device={name} but ") and "use train.device=cpu" in message


def test_a_gpu_index_past_the_visible_ones_is_refused(monkeypatch):
    monkeypatch.setattr("ochre.device.cuda_missing", lambda: "")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(OchreError, match=r"^--device=cuda:3 but only 1 GPU\(s\) are visible"):
        resolve_device("cuda:3", "--device")


def test_a_gpu_is_described_by_name_and_memory(monkeypatch):
    class Props:
        name, total_memory = "NVIDIA H100 80GB HBM3", 85_520_809_984

    monkeypatch.setattr("ochre.device.cuda_missing", lambda: "")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props)
    assert str(choose_device("auto")) == "device: cuda:0 (NVIDIA H100 80GB HBM3, 80 GiB)"
    assert choose_device("cuda:2").device == torch.device("cuda", 2)


def test_an_unknown_device_name_is_refused():
    with pytest.raises(OchreError, match=r"^train.device=gpu is not a device; use auto, cpu, cuda or cuda:N$"):
        resolve_device("gpu", "train.device")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_training_runs_record_device_torch_and_throughput(tiny_world):
    """The fixture's tokenizer and dynamics runs: run_info.json in the run folder and run_info in the checkpoint."""
    runs = tiny_world["runs"]
    tokenizer = torch.load(tiny_world["tokenizer"], weights_only=True)
    world = torch.load(tiny_world["world"], weights_only=True)
    for folder, recorded in [(runs / "vq", tokenizer["run_info"]), (runs / "dyn", world["configs"]["run_info"])]:
        info = json.loads((folder / "run_info.json").read_text())
        assert info == recorded
        assert info["device"] == "cpu" and info["torch"].startswith(torch.__version__) and info["processes"] == 1
        assert info["frames_per_s"] > 0 and info["steps"] == 4


def test_nothing_outside_training_imports_from_it():
    """Generic helpers live where the whole library can use them (`ochre.device`, `ochre.images`)."""
    pattern = re.compile(r"^\s*(from ochre\.training|import ochre\.training|from ochre import training)", re.M)
    outside = [p for p in (ROOT / "ochre").rglob("*.py") if "training" not in p.relative_to(ROOT / "ochre").parts]
    assert [str(p.relative_to(ROOT)) for p in outside if pattern.search(p.read_text())] == []
