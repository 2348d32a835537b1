"""Recipes (train/recipe.py, ochre/recipe*.py): the tiny recipe end to end, skip, resume, --until, --dry-run,
--override, bad recipe files, and the shipped worlds' recipes against their cards' commands."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from ochre.recipe import load_recipe, same_work
from tests.conftest import ROOT, run_module

TINY = "configs/tiny/recipe.yaml"


def recipe(*args: str, check: bool = True):
    return run_module("train.recipe", *args, check=check)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny recipe run once, end to end, as CI runs it."""
    run = tmp_path_factory.mktemp("recipe") / "tiny"
    recipe(TINY, "--run-dir", str(run))
    return run


@pytest.mark.slow
def test_the_tiny_recipe_runs_every_stage_into_one_folder_with_a_card(tiny_run):
    state = json.loads((tiny_run / "recipe_state.json").read_text())["stages"]
    names = [s.name for s in load_recipe(TINY).stages]
    assert list(state) == names and all(state[n]["done"] for n in names)
    for path in ("tokenizer/checkpoints/tokenizer.pt", "dynamics/checkpoints/world.pt", "world.pt",
                 "evaluate/summary.json", "playtest/playtest.json", "data/train/manifest.json", "logs/dynamics.log"):  # fmt: skip
        assert (tiny_run / path).is_file(), path
    card = (tiny_run / "card.md").read_text()
    assert "python -m vqvae.tokenize --tokenizer" in card and "320 frames, 16 episodes" in card
    assert re.search(r"\| dynamics \| `train.dynamics` \| .* \| step 4; val/\S+ .* \| \d+\.\d s \|", card)
    assert re.search(r"\| PSNR mean 1-4, gray 84x84 \| \d+\.\d\d \|", card)


@pytest.mark.slow
def test_a_second_run_skips_every_complete_stage(tiny_run):
    before = json.loads((tiny_run / "recipe_state.json").read_text())
    proc = recipe(TINY, "--run-dir", str(tiny_run))
    assert proc.stdout.count("complete, skipped") == len(load_recipe(TINY).stages)
    assert json.loads((tiny_run / "recipe_state.json").read_text()) == before  # nothing ran, wall times kept


@pytest.mark.slow
def test_a_run_with_other_threads_devices_or_workers_keeps_the_finished_stages(tiny_run):
    """Threads, device and worker count change how fast a stage runs, not what it makes: a recipe run again with
    other values of them (to share the CPU, or on a machine with a GPU) skips the finished stages."""
    pace = ["tokenizer.train.threads=1", "dynamics.train.device=cpu", "train_data.workers=2", "evaluate.device=auto"]
    before = json.loads((tiny_run / "recipe_state.json").read_text())
    proc = recipe(TINY, "--run-dir", str(tiny_run), *(a for p in pace for a in ("--override", p)))
    assert proc.stdout.count("complete, skipped") == len(load_recipe(TINY).stages)
    assert json.loads((tiny_run / "recipe_state.json").read_text()) == before


def test_only_pace_settings_leave_a_stage_command_the_same():
    base = "python -m train.dynamics --config c.yaml data.path=d train.threads=2 run.name=x"
    assert same_work(base, base.replace("train.threads=2", "train.threads=1"))
    assert same_work(base, base.replace(" train.threads=2", "") + " train.device=cuda")
    assert same_work("python -m preprocess.generate --frames 9 --workers 2", "python -m preprocess.generate --frames 9")
    assert same_work("python -m train.evaluate --device cpu --windows 6", "python -m train.evaluate --windows 6 --device cuda")
    assert not same_work(base, base.replace("data.path=d", "data.path=e"))
    assert not same_work(base, base + " train.max_steps=5")
    assert not same_work(
        "python -m preprocess.generate --frames 9 --workers 2", "python -m preprocess.generate --frames 2 --workers 9"
    )


@pytest.mark.slow
def test_an_interrupted_trainer_resumes_from_its_training_state(tiny_run, tmp_path):
    """A trainer stage stopped at step 4 of 8 (its train_state.pt saved) goes on from there with train.resume."""
    tokens = tiny_run / "data" / "train_tokens"
    file = tmp_path / "recipe.yaml"
    stage = {"name": "dynamics", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml",
             "overrides": {"data.path": str(tokens), "data.val_every": 4, "train.max_steps": 8}}  # fmt: skip
    file.write_text(yaml.safe_dump({"name": "resume", "stages": [stage]}))
    run = tmp_path / "run"
    run_module(
        "train.dynamics",
        "--config",
        "configs/tiny/dynamics.yaml",
        f"data.path={tokens}",
        "data.val_every=4",
        "train.max_steps=4",
        f"run.dir={run}",
        "run.name=dynamics",
    )  # fmt: skip  (the interrupted stage)
    proc = recipe(str(file), "--run-dir", str(run))
    assert "dynamics: resuming from step 4" in proc.stdout and "train.resume=" in proc.stdout
    import torch

    assert torch.load(run / "dynamics" / "checkpoints" / "world.pt", weights_only=True)["step"] == 8
    assert "resumed from step 4" in (run / "card.md").read_text()


def kill_when_saved(argv: list[str], state: Path, timeout: float = 120) -> None:
    """Run `argv` until `state` (a trainer's train_state.pt) is on disk, then SIGKILL it, as a session's end does."""
    import os
    import signal
    import subprocess
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not state.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.is_file(), "the trainer saved no state before the deadline"


@pytest.mark.slow
def test_a_recipe_killed_mid_stage_resumes_that_stage_after_the_ones_it_reads(tiny_run, tmp_path):
    """Killed while a trainer that reads an earlier stage runs (as a session's end kills it), the recipe run again
    skips the earlier stage and resumes the trainer from its train_state.pt, instead of starting it over."""
    import sys

    file = tmp_path / "recipe.yaml"
    start = {"name": "start", "run": "copy", "from": str(tiny_run / "world.pt"), "out": "{run}/start.pt"}
    train = {"name": "dynamics", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml", "stop_at": 60,
             "overrides": {"data.path": str(tiny_run / "data" / "train_tokens"), "data.val_every": 4,
                           "train.init_from": "{start}", "train.max_steps": 2000, "train.checkpoint_every": 2}}  # fmt: skip
    file.write_text(yaml.safe_dump({"name": "killed", "stages": [start, train]}))
    run = tmp_path / "run"
    kill_when_saved([sys.executable, "-m", "train.recipe", str(file), "--run-dir", str(run)],
                    run / "dynamics" / "checkpoints" / "train_state.pt")  # fmt: skip
    assert "| start | `copy` |" in (run / "card.md").read_text()  # the card of the stages done, though it was killed
    out = recipe(str(file), "--run-dir", str(run)).stdout
    assert "start: complete, skipped" in out and "dynamics: resuming from step" in out
    assert "replaced" not in out and not (run / "replaced").exists()


@pytest.mark.slow
def test_a_packed_run_goes_on_after_its_disk_is_lost(tmp_path):
    """Packed mid-way (a trainer killed after its first save), the run folder is lost; unpacked, the recipe makes
    the frames again, finds them the same and keeps every stage after them: the token set and tokenizer come from
    the pack, the trainer that only started the killed one is skipped without its checkpoint, the killed one
    resumes. The archive holds neither frames nor that spent checkpoint."""
    import sys
    import tarfile

    tiny = yaml.safe_load(Path(ROOT, TINY).read_text())
    keep = {"train_data", "tokenizer", "tokenize"}
    stages = [s for s in tiny["stages"] if s["name"] in keep]
    first = {"name": "first", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml",
             "overrides": {"data.path": "{tokenize}", "data.val_every": 4}}  # fmt: skip
    second = {"name": "second", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml",
              "overrides": {**first["overrides"], "train.init_from": "{first}", "train.max_steps": 2000,
                            "train.checkpoint_every": 2}}  # fmt: skip
    file = tmp_path / "recipe.yaml"
    file.write_text(yaml.safe_dump({"name": "moved", "vars": tiny["vars"], "stages": [*stages, first, second]}))
    run, archive = tmp_path / "run", tmp_path / "moved.tar.xz"
    kill_when_saved([sys.executable, "-m", "train.recipe", str(file), "--run-dir", str(run)],
                    run / "second" / "checkpoints" / "train_state.pt")  # fmt: skip
    out = recipe(str(file), "--run-dir", str(run), "--pack", str(archive)).stdout
    assert "left out: train_data" in out and "left out: first" in out
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "run/second/checkpoints/train_state.pt" in names and "run/tokenizer/checkpoints/tokenizer.pt" in names
    assert "run/data/train_tokens/manifest.json" in names and "run/recipe_state.json" in names
    assert "run/first/checkpoints/world.pt" not in names and not any(n.startswith("run/data/train/") for n in names)

    import shutil

    shutil.rmtree(run)  # the disk is lost; the archive was kept
    recipe(str(file), "--run-dir", str(run), "--unpack", str(archive))
    again = recipe(str(file), "--run-dir", str(run), "--unpack", str(archive), check=False)
    assert again.returncode != 0 and "already holds a run" in again.stderr
    out = recipe(str(file), "--run-dir", str(run), "--override", "second.stop_at=4").stdout
    assert "train_data: made again the same as before" in out
    assert "tokenizer: complete, skipped" in out and "tokenize: complete, skipped" in out
    assert "first: complete, skipped (its checkpoint is gone" in out and "second: resuming from step" in out
    assert "replaced" not in out and not (run / "replaced").exists()
    assert re.search(r"\| train_data \|.*made again, the same shards, in", (run / "card.md").read_text())


def test_a_stage_names_an_earlier_output_by_its_folder_not_by_a_longer_name():
    from ochre.recipe import Stage
    from ochre.recipe_run import references

    hf2 = Stage("hf2", "train.dynamics", out="runs/w/hf2")
    reader = Stage("hf2c", "train.dynamics", out="runs/w/hf2c",
                   overrides={"train.init_from": "runs/w/hf2b/checkpoints/world.pt", "data.path": "data/t"})  # fmt: skip
    assert references(reader, hf2) == []
    reader.overrides["train.resume"] = "runs/w/hf2/checkpoints/train_state.pt"
    assert references(reader, hf2) == ["train.resume"]
    copy = Stage("world", "copy", source="runs/w/hf2/checkpoints/world.pt", out="runs/w/world.pt")
    assert references(copy, hf2) == ["from"]


def test_unpack_takes_only_archives_that_pack_writes(tmp_path):
    import io
    import tarfile

    from ochre.errors import OchreError
    from ochre.recipe_pack import unpack_run

    rec = load_recipe(TINY, run_dir=str(tmp_path / "run"))
    for name, message in (("../outside.txt", "not one --pack writes"), ("out/nosuch/x.json", "stage 'nosuch'")):
        archive = tmp_path / "bad.tar"
        with tarfile.open(archive, "w") as tar:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
        with pytest.raises(OchreError, match=re.escape(message)):
            unpack_run(rec, archive)
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(OchreError, match="no such archive"):
        unpack_run(rec, tmp_path / "missing.tar.xz")


@pytest.mark.slow
def test_a_stage_goes_on_with_an_earlier_trainers_state(tiny_run, tmp_path):
    """{dynamics.state} hands a later stage the earlier run's train_state.pt: it continues that run in its own folder."""
    file = tmp_path / "recipe.yaml"
    first = {"name": "dynamics", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml",
             "overrides": {"data.path": str(tiny_run / "data" / "train_tokens"), "data.val_every": 4}}  # fmt: skip
    more = {"name": "more", "run": "train.dynamics", "config": "configs/tiny/dynamics.yaml",
            "overrides": {**first["overrides"], "train.resume": "{dynamics.state}", "train.max_steps": 6}}  # fmt: skip
    file.write_text(yaml.safe_dump({"name": "more", "stages": [first, more]}))
    run = tmp_path / "run"
    rec = load_recipe(file, [], str(run))
    assert rec.stages[1].needs == ("dynamics",)
    assert rec.stages[1].overrides["train.resume"] == str(run / "dynamics" / "checkpoints" / "train_state.pt")
    recipe(str(file), "--run-dir", str(run))
    import torch

    assert torch.load(run / "dynamics" / "checkpoints" / "world.pt", weights_only=True)["step"] == 4
    assert torch.load(run / "more" / "checkpoints" / "world.pt", weights_only=True)["step"] == 6
    assert recipe(str(file), "--run-dir", str(run)).stdout.count("complete, skipped") == 2


@pytest.mark.slow
def test_stop_at_ends_a_trainer_at_a_checkpointed_step(tiny_run, tmp_path):
    over = ["--override", f"dynamics.data.path={tiny_run / 'data' / 'train_tokens'}", "--override", "dynamics.stop_at=2",
            "--override", "dynamics.train.max_steps=2000", "--override", "dynamics.train.checkpoint_every=2"]  # fmt: skip
    file = tmp_path / "recipe.yaml"
    stage = {
        "name": "dynamics",
        "run": "train.dynamics",
        "config": "configs/tiny/dynamics.yaml",
        "overrides": {"data.val_every": 4},
    }
    file.write_text(yaml.safe_dump({"name": "stop", "stages": [stage]}))
    recipe(str(file), "--run-dir", str(tmp_path / "run"), *over)
    state = json.loads((tmp_path / "run" / "recipe_state.json").read_text())["stages"]["dynamics"]
    assert state["done"] and 2 <= int(state["detail"].split()[1].replace(",", "")) < 2000


@pytest.mark.slow
def test_until_stops_after_a_stage_and_a_damaged_shard_is_played_again(tmp_path):
    run = tmp_path / "run"
    recipe(TINY, "--run-dir", str(run), "--until", "train_data")
    assert list(json.loads((run / "recipe_state.json").read_text())["stages"]) == ["train_data"]
    assert not (run / "tokenizer").exists() and "| train_data |" in (run / "card.md").read_text()
    shard = run / "data" / "train" / "shard_00001.frames.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = recipe(TINY, "--run-dir", str(run), "--until", "train_data")
    assert "re-playing shard_00001" in proc.stdout and "train_data: done" in proc.stdout
    frames = np.load(shard)
    assert frames.shape[0] == 160


def test_a_dataset_generated_with_other_arguments_is_not_taken_as_the_stages(tmp_path):
    from ochre.recipe_run import generator_mismatch

    stage = next(s for s in load_recipe(TINY, run_dir=str(tmp_path)).stages if s.name == "heldout_data")
    made = {"world": "coinrun", "frames": 160, "num_envs": 8, "seed": 1, "max_episode_frames": 20, "policy": {"kind": "uniform"}}
    assert generator_mismatch(stage, {"source": {"generator": made}}) == ""
    assert (
        generator_mismatch(stage, {"source": {"generator": made | {"frames": 6000}}}) == "--frames 6000, this stage asks for 160"
    )
    assert generator_mismatch(stage, {"source": {"generator": made | {"policy": {"kind": "play"}}}}) == (
        "--policy play, this stage asks for uniform"
    )
    env = {"start_level": 1_000_000, "num_levels": 50}
    assert generator_mismatch(stage, {"source": {"generator": made | {"env": env}}}) == ""
    assert "--env {}" in generator_mismatch(stage, {"source": {"generator": made | {"env": {}}}})
    assert generator_mismatch(stage, {"source": {"recorder": "live.record"}}) == ""  # recorded data says nothing


def test_dry_run_prints_the_commands_with_overrides_and_runs_nothing(tmp_path):
    run = tmp_path / "run"
    proc = recipe(TINY, "--dry-run", "--run-dir", str(run), "--override", "dynamics.train.max_steps=9",
                  "--override", "train_data.frames=100", "--override", "heldout_data.env.start_level=5",
                  "--override", "vars.data=/elsewhere")  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert len(lines) == len(load_recipe(TINY).stages) and not run.exists()
    assert (
        lines[0].startswith("python -m preprocess.generate --world coinrun --frames 100 ")
        and "--out /elsewhere/train" in lines[0]
    )
    assert "--env start_level=5 --env num_levels=50" in lines[1]
    assert f"train.max_steps=9 run.dir={run} run.name=dynamics" in lines[4]
    assert lines[6] == f"cp {run}/dynamics/checkpoints/world.pt {run}/world.pt"


BAD = [
    ("name: x\nstages:\n  - {name: a, run: preprocess.generat, out: d}\n", "stages[0] (a).run: 'preprocess.generat' is not"),
    ("name: x\nstages:\n  - {name: a, run: preprocess.generate}\n", "stages[0] (a).out is missing"),
    ("name: x\nstages:\n  - {name: a, run: train.dynamics, overides: {}}\n", "stages[0] (a).overides is not a stage field"),
    ("name: x\nstages:\n  - {name: a, run: train.dynamics, overrides: {data.path: '{b}'}}\n", "{b} is neither a var nor"),
    ("name: x\nstages:\n  - {name: a, run: train.dynamics, args: {frames: 1}}\n", "a trainer takes its settings as 'overrides'"),
    ("name: x\nstages:\n  - {name: a, run: train.dynamics, config: nope.yaml}\n", "stages[0] (a).config: nope.yaml not found"),
    ("name: x\nstages: [{name: a, run: train.dynamics}, {name: a, run: train.dynamics}]\n", "stages[1].name 'a' is used twice"),
    ("name: x\nstages: [{name: a, run: train.dynamics}]\ncard: [{label: l, stage: b, file: f, key: k}]\n", "card[0].stage 'b'"),
    ("name: x\nstage: []\n", "unknown field 'stage'"),
    ("name: x\nstages: [{name: a\n", "not valid YAML at line"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_a_bad_recipe_file_stops_with_one_line_naming_the_file_and_field(tmp_path, text, message):
    file = tmp_path / "recipe.yaml"
    file.write_text(text)
    proc = recipe(str(file), "--dry-run", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {file}: ") and message in lines[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--override", "dynamic.train.lr=1"], "has no stage 'dynamic'"),
        (["--override", "dynamics"], "write STAGE.KEY=VALUE"),
        (["--until", "dynamic"], "--until dynamic: no such stage"),
    ],
)
def test_bad_flags_stop_with_one_line(args, message):
    proc = recipe(TINY, "--dry-run", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


# --- the shipped worlds: each recipe holds its card's command chain ---------------------------------------------

DEFAULT_PRESETS = {"vqvae.train": "configs/coinrun/vqvae.yaml", "train.dynamics": "configs/coinrun/dynamics.yaml"}


def card_commands(card: Path) -> list[tuple[list[str], str]]:
    """(argv, trailing comment) of each command in the card's Reproduce block, continuation lines joined."""
    block = card.read_text().split("## Reproduce", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        code, _, comment = line.partition("#")
        if code.strip():
            commands.append((shlex.split(code), comment))
    return commands


def essence(argv: list[str]) -> tuple[str, frozenset[str]]:
    """A command without what a recipe names its own way: run folders, where shipped files go, preset defaults."""
    module = argv[2] if argv[:2] == ["python", "-m"] else argv[0]
    rest = argv[3:] if module != argv[0] else argv[1:]
    if module in DEFAULT_PRESETS and "--config" not in rest:
        rest = ["--config", DEFAULT_PRESETS[module], *rest]
    preset = yaml.safe_load(Path(ROOT, rest[1]).read_text()) if rest[:1] == ["--config"] else {}
    default_data = f"data.path={(preset.get('data') or {}).get('path')}"
    kept = []
    for token in rest:
        token = re.sub(r"^(runs|checkpoints|assets)/\S*$", "<run>", token)
        token = re.sub(r"=(runs|checkpoints)/\S*$", "=<run>", token)
        if token.startswith(("run.name=", "run.dir=")) or token == default_data:
            continue
        kept.append(token)
    return module, frozenset(kept) if module != "cp" else frozenset()


@pytest.mark.parametrize("world", ["coinrun", "coinrun_flow", "doom", "pong"])
def test_a_shipped_world_recipe_holds_its_card_command_chain_in_order(world):
    card = ROOT / "checkpoints" / f"{world}.md"
    assert f"recipe: `configs/{world}/recipe.yaml`" in card.read_text()
    stages = load_recipe(ROOT / "configs" / world / "recipe.yaml").stages
    mine = [essence(shlex.split(s.display())) for s in stages]
    last = -1
    for argv, comment in card_commands(card):
        want = essence(argv)
        assert want in mine, f"{world} card command not in its recipe: {shlex.join(argv)}"
        index = mine.index(want, last + 1) if want in mine[last + 1 :] else mine.index(want)
        assert index > last, f"{world}: {shlex.join(argv)} comes earlier in the recipe than in the card"
        last = index
        if stopped := re.search(r"stopped after step ([\d,]+)", comment):
            assert stages[index].stop_at == int(stopped.group(1).replace(",", ""))


def test_the_new_game_recipe_starts_a_gymnasium_world(tmp_path):
    rec = load_recipe(ROOT / "configs/new_game/recipe.yaml", ["vars.env_id=MountainCar-v0"], str(tmp_path))
    assert rec.stages[0].display().startswith("python -m preprocess.generate --world gym:MountainCar-v0 ")
    assert {"train_data", "tokenizer", "dynamics", "evaluate"} <= {s.name for s in rec.stages}


@pytest.mark.slow
def test_the_new_game_recipe_plays_its_gymnasium_env(tmp_path):
    recipe("configs/new_game/recipe.yaml", "--run-dir", str(tmp_path), "--until", "train_data",
           "--override", "train_data.frames=64", "--override", "train_data.shard-frames=64")  # fmt: skip
    manifest = json.loads((tmp_path / "data" / "train" / "manifest.json").read_text())
    assert manifest["world"] == "gym:Pendulum-v1" and manifest["num_frames"] == 64 and manifest["complete"]
