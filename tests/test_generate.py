"""Exploration policies, parallel resumable generation, and the Procgen Gymnasium ids."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ochre.actions import PROCGEN_ACTIONS, FirstPersonActionSpec
from ochre.data.generate import GenerateJob, generate
from ochre.data.policies import ExplorationPolicy, PolicyConfig, isolated_groups
from ochre.data.store import EpisodeDataset
from ochre.errors import ConfigError, OchreError
from tests.conftest import ROOT

FP = FirstPersonActionSpec()


def rollout(cfg, spec, steps=2000, num=4, seed=0):
    policy = ExplorationPolicy(cfg, spec, num, np.random.default_rng(seed))
    return np.stack([policy.act() for _ in range(steps)], axis=1)  # (num, steps, ...)


def test_isolated_first_person_never_mixes_camera_and_movement():
    acts = rollout(PolicyConfig(kind="isolated"), FP).reshape(-1, 10)
    active = FP.active_controls(acts)
    camera, buttons = active[:, :2].any(1), active[:, 2:]
    movement = buttons[:, :4].any(1)
    assert not (camera & buttons.any(1)).any()  # camera spans press nothing else
    assert (buttons[:, 4:].sum(1) <= 1).all() and not (movement & buttons[:, 4:].any(1)).any()
    # Every control is exercised, including camera-only and movement-only spans.
    assert active.any(0).all()
    assert camera.mean() > 0.2 and movement.mean() > 0.05


def test_isolated_discrete_presses_one_control():
    acts = rollout(PolicyConfig(kind="isolated"), PROCGEN_ACTIONS)
    assert (PROCGEN_ACTIONS.active_controls(acts).sum(-1) <= 1).all()
    assert set(isolated_groups(PROCGEN_ACTIONS)) == {"left", "down", "up", "right", "d", "a", "w", "s", "q", "e"}


def test_sticky_holds_and_uniform_does_not():
    cfg = PolicyConfig(kind="sticky", hold_min=5, hold_max=5)
    acts = rollout(cfg, PROCGEN_ACTIONS, num=1)[0]
    spans = acts.reshape(-1, 5)
    assert (spans == spans[:, :1]).all()
    uniform = rollout(PolicyConfig(kind="uniform"), PROCGEN_ACTIONS, steps=15000, num=1)[0]
    assert np.mean(uniform[1:] == uniform[:-1]) < 0.12
    assert np.bincount(uniform, minlength=15).min() > 15000 / 15 * 0.8


def test_geometric_spans_have_the_configured_mean():
    acts = rollout(PolicyConfig(kind="sticky", repeat_prob=0.9), FP, steps=20000, num=1)[0]
    changes = np.any(acts[1:] != acts[:-1], axis=-1).mean()
    assert 0.07 < changes < 0.13  # mean span 10 steps (a new span can repeat the old action)


def test_mixture_is_deterministic_and_validated():
    cfg = PolicyConfig()
    np.testing.assert_array_equal(rollout(cfg, FP, seed=3), rollout(cfg, FP, seed=3))
    with pytest.raises(ConfigError, match="unknown policies"):
        PolicyConfig(weights={"random": 1.0}).check()
    with pytest.raises(ConfigError, match="policy.kind 'greedy'"):
        PolicyConfig(kind="greedy").check()
    with pytest.raises(ConfigError, match="hold_min"):
        PolicyConfig(hold_min=0).check()


def job(**kw):
    base = dict(world="coinrun", frames=600, num_envs=4, shard_frames=200, env={"num_levels": 20}, max_episode_frames=40)
    return GenerateJob(**(base | kw))


def shard_hashes(path):
    return [s["sha256"] for s in json.loads((path / "manifest.json").read_text())["shards"]]


def test_generation_is_exact_and_episodes_stay_whole(tmp_path):
    manifest = generate(tmp_path / "d", job(frames=550), progress=False)
    assert manifest["num_frames"] == 550 and manifest["complete"] and len(manifest["shards"]) == 3
    data = EpisodeDataset(tmp_path / "d")
    lengths = [n for _, _, n in data.episodes()]
    assert sum(lengths) == 550 and max(lengths) <= 40
    assert manifest["source"]["generator"]["policy"]["kind"] == "mixture"
    assert manifest["action_schema"] == PROCGEN_ACTIONS.to_dict()


def test_workers_do_not_change_the_data(tmp_path):
    generate(tmp_path / "one", job(), workers=1, progress=False)
    generate(tmp_path / "two", job(), workers=2, progress=False)
    assert shard_hashes(tmp_path / "one") == shard_hashes(tmp_path / "two")
    other = generate(tmp_path / "seed1", job(seed=1), progress=False)
    assert [s["sha256"] for s in other["shards"]] != shard_hashes(tmp_path / "one")


def test_resume_after_crash_keeps_finished_shards(tmp_path):
    generate(tmp_path / "ref", job(), progress=False)
    out = tmp_path / "d"
    generate(out, job(), progress=False)
    # Simulate a crash during shard 2: its files half-written, the manifest without it.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:2]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shard_00002.frames.npy").write_bytes(b"partial")
    kept = (out / "shard_00000.frames.npy").stat().st_mtime_ns
    again = generate(out, job(), progress=False)
    assert again["complete"] and shard_hashes(out) == shard_hashes(tmp_path / "ref")
    assert (out / "shard_00000.frames.npy").stat().st_mtime_ns == kept  # finished shards are not redone
    with pytest.raises(OchreError, match=r"other settings \(differs in: seed\)"):
        generate(out, job(seed=5), progress=False)


def test_rerun_replays_damaged_and_missing_shards_only(tmp_path, capsys):
    generate(tmp_path / "ref", job(), progress=False)
    out = tmp_path / "d"
    generate(out, job(), progress=False)
    frames = out / "shard_00001.frames.npy"
    data = frames.read_bytes()
    frames.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    (out / "shard_00002.episodes.npy").unlink()
    kept = (out / "shard_00000.frames.npy").stat().st_mtime_ns
    capsys.readouterr()
    again = generate(out, job(), progress=False)
    printed = capsys.readouterr().out.splitlines()
    assert [line.rsplit("; ", 1)[1] for line in printed] == ["re-playing shard_00001", "re-playing shard_00002"]
    assert again["complete"] and shard_hashes(out) == shard_hashes(tmp_path / "ref")
    assert (out / "shard_00000.frames.npy").stat().st_mtime_ns == kept
    (out / "manifest.json").write_text("{")  # an unreadable manifest: every shard is played again, to the same bytes
    generate(out, job(), progress=False)
    assert "manifest.json: not valid JSON" in capsys.readouterr().out and shard_hashes(out) == shard_hashes(tmp_path / "ref")


@pytest.mark.slow
def test_killed_generation_resumes_to_the_same_dataset(tmp_path):
    args = ["--world", "coinrun", "--frames", "24000", "--shard-frames", "1000", "--num-envs", "8", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda out: [sys.executable, "-m", "preprocess.generate", *args, "--out", str(out)]  # noqa: E731
    proc = subprocess.Popen(run(tmp_path / "d"), cwd=ROOT, env=env, stderr=subprocess.PIPE)
    manifest = tmp_path / "d" / "manifest.json"
    deadline = time.time() + 120
    while not (manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads(manifest.read_text())["shards"])
    assert 2 <= done_before < 24, "the run finished before it could be killed; make it longer"
    subprocess.run(run(tmp_path / "d"), cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(run(tmp_path / "ref"), cwd=ROOT, env=env, check=True, capture_output=True)
    assert shard_hashes(tmp_path / "d") == shard_hashes(tmp_path / "ref")
    data = EpisodeDataset(tmp_path / "d")
    assert data.num_frames == 24000 and data.manifest["complete"]


def test_procgen_gymnasium_ids():
    import gymnasium

    import ochre.envs  # noqa: F401  (registers the ids)

    env = gymnasium.make("procgen-ninja-v0", start_level=3, num_levels=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and env.action_space.n == 15
    first = obs.copy()
    obs, reward, terminated, truncated, _ = env.step(4)
    assert obs.shape == (64, 64, 3) and not truncated
    again, _ = env.reset(seed=0)
    np.testing.assert_array_equal(again, first)
    assert len([k for k in gymnasium.registry if k.startswith("procgen-")]) >= 16


def test_heldout_levels_must_not_overlap(tmp_path):
    from ochre.data.generate import check_disjoint_levels

    generate(tmp_path / "train", job(frames=200), progress=False)  # levels 0-19
    check_disjoint_levels(job(env={"start_level": 20, "num_levels": 5}), tmp_path / "train")
    with pytest.raises(OchreError, match=r"levels 10-39 overlap .* levels 0-19; pass --env start_level=20"):
        check_disjoint_levels(job(env={"start_level": 10, "num_levels": 30}), tmp_path / "train")


@pytest.mark.parametrize("game", ["bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
                                  "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot"])  # fmt: skip
def test_every_procgen_game_generates(tmp_path, game):
    manifest = generate(
        tmp_path / game, job(world=game, frames=32, shard_frames=32, env={"distribution_mode": "easy"}), progress=False
    )
    data = EpisodeDataset(tmp_path / game)
    assert manifest["world"] == game and data.num_frames == 32
    rows, _ = data.rows(0, 0, 2)
    assert rows.shape == (2, 64, 64, 3) and rows.std() > 0


@pytest.mark.parametrize("world", ["doom", "pong"])
def test_doom_and_atari_generate_deterministically(tmp_path, world):
    pytest.importorskip("vizdoom" if world == "doom" else "ale_py")
    small = dict(world=world, frames=120, num_envs=2, shard_frames=60, env={"frame_size": [48, 64]}, max_episode_frames=0)
    a = generate(tmp_path / "a", GenerateJob(**small), progress=False)
    b = generate(tmp_path / "b", GenerateJob(**small), workers=2, progress=False)
    assert shard_hashes(tmp_path / "a") == shard_hashes(tmp_path / "b")
    data = EpisodeDataset(tmp_path / "a")
    rows, actions = data.rows(0, 0, 10)
    assert rows.shape == (10, 48, 64, 3) and a["frame_shape"] == [48, 64, 3] and rows.std() > 0
    data.action_spec.validate(actions)
    assert b["action_schema"]["kind"] == ("first_person" if world == "doom" else "discrete")


def test_runs_hold_a_direction_and_jump_when_the_picture_stops():
    policy = ExplorationPolicy(PolicyConfig(kind="run", hold_min=40, hold_max=40, jump_prob=0.0), PROCGEN_ACTIONS, 1,
                               np.random.default_rng(0))  # fmt: skip
    labels = PROCGEN_ACTIONS.labels
    moving = [policy.act(np.full((1, 8, 8, 3), 10 * t, np.uint8))[0] for t in range(10)]
    assert len(set(moving)) == 1 and labels[moving[0]] in ("right", "left")  # a held run, no jump while moving
    stuck = [labels[policy.act(np.zeros((1, 8, 8, 3), np.uint8))[0]] for _ in range(7)]
    walk = labels[moving[0]]
    assert stuck[0] == walk and stuck[1:5] == [f"{walk}+up"] * 4 and stuck[5] == f"{walk}+up"  # stuck: jump, held 4 steps


def test_first_person_runs_walk_and_sometimes_turn():
    acts = rollout(PolicyConfig(kind="run", turn_prob=1.0, jump_prob=0.0), FP, steps=400, num=2).reshape(-1, 10)
    assert (acts[:, 2:6].sum(1) == 1).all() and (acts[:, 0] != FP.still_bin).all()
    assert np.mean(acts[:, 2 + FP.buttons.index("forward")]) > 0.4  # runs go forward most often (RUN_DIRECTIONS)


def test_play_preset_holds_keys_like_a_person():
    from preprocess.generate import job_from_args, parse_args

    job = job_from_args(parse_args(["--world", "coinrun", "--frames", "10", "--out", "x", "--policy", "play"]))
    assert (
        job.policy.kind == "play" and job.policy.weights["run"] == 0.5 and (job.policy.hold_min, job.policy.hold_max) == (4, 60)
    )
    acts = rollout(job.policy, PROCGEN_ACTIONS, steps=3000, num=2)
    held = np.mean(acts[:, 1:] == acts[:, :-1])
    assert held > 0.7  # uniform random keeps an action ~7% of steps
    with pytest.raises(ConfigError, match="policy.jump_prob"):
        PolicyConfig(kind="play", jump_prob=2).check()
