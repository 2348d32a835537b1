"""Small real runs of every entry point, and their one-line errors on bad input."""

import csv
import json

import numpy as np
import pytest
import torch

from tests.conftest import run_module


def test_training_runs_write_their_run_folders(tiny_world):
    for name in ("vq", "dyn"):
        run = tiny_world["runs"] / name
        assert (run / "resolved_config.yaml").is_file()
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert rows and "train/loss" in rows[0]
        assert list((run / "images").glob("*.png"))
    assert list((tiny_world["runs"] / "dyn" / "videos").glob("*.mp4"))
    tokens = json.loads((tiny_world["tokens"] / "manifest.json").read_text())
    assert tokens["kind"] == "tokens" and tokens["codebook_size"] == 125 and len(tokens["tokenizer"]["sha256"]) == 64


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory, tiny_world):
    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler

    batch = WindowSampler(EpisodeDataset(tiny_world["frames"]), 10, split="all").fixed(2)
    frames, actions = batch.rows.numpy(), batch.actions.numpy()
    d = tmp_path_factory.mktemp("inputs")
    np.savez(d / "seed.npz", frames=frames[0, :4], actions=actions[0, :3])
    np.savez(d / "seed_batch.npz", frames=frames[:, :4], actions=actions[:, :3])
    np.savez(d / "gt_batch.npz", frames=frames[:, 4:10])
    np.save(d / "actions.npy", actions[0, 3:9])
    np.save(d / "actions_batch.npy", actions[:, 3:9])
    (d / "actions.json").write_text(json.dumps(actions[0, 3:9].tolist()))
    (d / "actions.csv").write_text("action\n" + "\n".join(str(a) for a in actions[0, 3:9]) + "\n")
    (d / "bad_actions.json").write_text(json.dumps([1, 2, 15]))
    np.savez(d / "bad_seed.npz", frames=frames[0, :4, :32])
    return d


@pytest.mark.parametrize("actions", ["actions.npy", "actions.json", "actions.csv"])
def test_inference_single(tiny_world, seed_files, tmp_path, actions):
    out = tmp_path / "out"
    run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(seed_files / "seed.npz"),
               "--actions", str(seed_files / actions), "--out", str(out), "--device", "cpu")  # fmt: skip
    frames = np.load(out / "frames.npz")["frames"]
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    assert (out / "video.mp4").stat().st_size > 0 and (out / "video.gif").stat().st_size > 0


def test_inference_batched_with_ground_truth_and_samples(tiny_world, seed_files, tmp_path):
    out = tmp_path / "out"
    proc = run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(seed_files / "seed_batch.npz"),
                      "--actions", str(seed_files / "actions_batch.npy"), "--out", str(out), "--gt", str(seed_files / "gt_batch.npz"),
                      "--samples", "2", "--sampling", "sample", "--top-k", "10", "--steps", "5")  # fmt: skip
    data = np.load(out / "frames.npz")
    assert data["frames"].shape == (2, 5, 64, 64, 3) and data["samples"].shape == (2, 2, 5, 64, 64, 3)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["horizon"]) for r in rows] == [1, 2, 3, 4, 5] and all(float(r["psnr"]) > 0 for r in rows)
    assert (out / "comparison.mp4").is_file() and (out / "horizon.png").is_file()
    assert "PSNR@1" in proc.stdout


def test_headless_play_writes_video_and_timings(tiny_world, seed_files, tmp_path):
    out = tmp_path / "play"
    run_module("live.play", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(seed_files / "seed_batch.npz"),
               "--headless", "--frames", "12", "--out", str(out), "--device", "cpu")  # fmt: skip
    rows = list(csv.DictReader((out / "timings.csv").open()))
    assert len(rows) == 12 and list(rows[0]) == ["frame", "model_ms", "decode_ms", "total_ms"]
    assert all(float(r["total_ms"]) >= float(r["model_ms"]) for r in rows)
    assert (out / "play.mp4").stat().st_size > 0


def test_evaluate_prints_table(tiny_world, tmp_path):
    proc = run_module("train.evaluate", "--checkpoint", str(tiny_world["world"]), "--data", str(tiny_world["frames"]),
                      "--horizon", "4", "--windows", "6", "--batch", "3", "--out", str(tmp_path / "eval"), "--device", "cpu",
                      "--playtest-seeds", "2", "--playtest-programs", "stand")  # fmt: skip
    assert "copy_last" in proc.stdout and "gray84" in proc.stdout
    assert "## Play tests: coinrun" in (tmp_path / "eval" / "report.md").read_text() and "| stand | sample |" in proc.stdout
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert "model/gray84/mean_psnr" in summary and (tmp_path / "eval" / "plots" / "horizon.png").is_file()


def test_dynamics_rejects_codebook_mismatch(tiny_world, tmp_path):
    proc = run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tiny_world['tokens']}",
                      f"run.dir={tmp_path}", "model.codebook_size=1024", check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "model.codebook_size=1024" in proc.stderr and "125" in proc.stderr


def test_dynamics_rejects_tokens_from_another_tokenizer(tiny_world, tmp_path):
    import torch

    other = tmp_path / "other_tokenizer.pt"
    payload = torch.load(tiny_world["tokenizer"], weights_only=True)
    torch.save(payload | {"step": payload["step"] + 1}, other)  # same shapes, different file
    proc = run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tiny_world['tokens']}",
                      f"run.dir={tmp_path}", f"tokenizer.path={other}", check=False)  # fmt: skip
    assert proc.returncode == 2 and "made by another tokenizer" in proc.stderr and "vqvae.tokenize" in proc.stderr


def test_config_error_names_key(tmp_path):
    proc = run_module("vqvae.train", "train.max_stepz=3", f"run.dir={tmp_path}", check=False)
    assert proc.returncode == 2 and "train.max_stepz" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "{tmp}/missing.pt"], "missing.pt: checkpoint not found"),
        (["--seed-frames", "{inputs}/bad_seed.npz"], "bad_seed.npz: frames are (32, 64, 3) but this world needs (64, 64, 3)"),
        (["--actions", "{inputs}/bad_actions.json"], "bad_actions.json: action id 15 is outside 0-14"),
        (["--seed-frames", "{tmp}/nothing.npz"], "nothing.npz: seed frames not found"),
    ],
)
def test_inference_bad_input(tiny_world, seed_files, tmp_path, args, message):
    base = {
        "--checkpoint": str(tiny_world["world"]),
        "--seed-frames": str(seed_files / "seed.npz"),
        "--actions": str(seed_files / "actions.npy"),
    }
    base[args[0]] = args[1].format(tmp=tmp_path, inputs=seed_files)
    out = tmp_path / "out"
    argv = [x for kv in base.items() for x in kv] + ["--out", str(out)]
    proc = run_module("inference.py", *argv, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1] and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_training_on_folder_without_manifest(tmp_path):
    proc = run_module("vqvae.train", f"data.path={tmp_path}", f"run.dir={tmp_path / 'runs'}", check=False)
    assert proc.returncode == 2 and "no manifest.json" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_camera_gain_names_a_dataset_without_a_camera(tiny_world):
    proc = run_module("preprocess.camera_gain", "--data", str(tiny_world["frames"]), check=False)
    assert proc.returncode == 2 and "first-person" in proc.stderr and "Traceback" not in proc.stderr


def test_play_without_display_names_headless_option(tiny_world):
    import os

    env_backup = {k: os.environ.pop(k, None) for k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    try:
        proc = run_module("live.play", "--checkpoint", str(tiny_world["world"]), check=False)
    finally:
        os.environ.update({k: v for k, v in env_backup.items() if v is not None})
    assert proc.returncode == 2 and "--headless" in proc.stderr and "Traceback" not in proc.stderr


def test_tokenizer_checkpoint_is_weights_only(tiny_world):
    payload = torch.load(tiny_world["tokenizer"], weights_only=True)
    assert payload["format"] == "ochre-tokenizer" and payload["codebook_size"] == 125


def test_vqvae_evaluate_reports_and_writes(tiny_world, tmp_path):
    proc = run_module("vqvae.evaluate", "--tokenizer", str(tiny_world["tokenizer"]), "--data", str(tiny_world["frames"]),
                      "--frames", "64", "--out", str(tmp_path / "ev"), "--device", "cpu")  # fmt: skip
    assert "PSNR gray84" in proc.stdout and "codes in use" in proc.stdout and "tokens changed" in proc.stdout
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert 0 <= summary["token_changes"]["token_changed"] <= 1 and 0 <= summary["token_changes"]["patch_changed"] <= 1
    assert summary["frames"] == 64 and 0 < summary["codes_used"] <= summary["codebook_size"] == 125
    assert (tmp_path / "ev" / "recon.mp4").stat().st_size > 0 and (tmp_path / "ev" / "recon_grid.png").exists()
    run_module("vqvae.evaluate", "--tokenizer", str(tiny_world["world"]), "--data", str(tiny_world["frames"]),
                       "--frames", "64", "--out", str(tmp_path / "ev2"), "--device", "cpu")  # fmt: skip
    assert json.loads((tmp_path / "ev2" / "summary.json").read_text())["psnr_rgb"] == summary["psnr_rgb"]


def test_tokenize_resumes_an_interrupted_run(tiny_world, tmp_path):
    from ochre.data.store import EpisodeDataset

    out = tmp_path / "tokens"
    args = ("vqvae.tokenize", "--tokenizer", str(tiny_world["tokenizer"]), "--data", str(tiny_world["frames"]), "--out", str(out),
            "--device", "cpu")  # fmt: skip
    run_module(*args)
    full = json.loads((out / "manifest.json").read_text())
    assert full["complete"] and len(full["shards"]) == 2
    interrupted = {**full, "complete": False, "shards": full["shards"][:1], "num_episodes": full["shards"][0]["num_episodes"]}
    (out / "manifest.json").write_text(json.dumps(interrupted))
    proc = run_module(*args)
    assert "resuming after 1 finished shards" in proc.stdout
    again = json.loads((out / "manifest.json").read_text())
    assert again["shards"] == full["shards"] and again["num_episodes"] == full["num_episodes"]
    assert EpisodeDataset(out).num_frames == EpisodeDataset(tiny_world["frames"]).num_frames
    done = run_module(*args, check=False)
    assert done.returncode == 2 and "already exists" in done.stderr


def test_a_world_checkpoint_tokenizes_new_frames_and_trains_on(tiny_world, tmp_path):
    """A shipped world's own tokenizer encodes frames (the same tokens as its tokenizer file) and a continued run keeps it."""
    from ochre.data.store import EpisodeDataset

    out = tmp_path / "tokens"
    run_module("vqvae.tokenize", "--tokenizer", str(tiny_world["world"]), "--data", str(tiny_world["frames"]),
               "--out", str(out), "--device", "cpu")  # fmt: skip
    mine, theirs = EpisodeDataset(out), EpisodeDataset(tiny_world["tokens"])
    assert mine.manifest["tokenizer"]["path"] == str(tiny_world["world"])
    assert mine.episodes() == theirs.episodes()
    for shard, start, n in mine.episodes():
        assert np.array_equal(mine.rows(shard, start, n)[0], theirs.rows(shard, start, n)[0])
    run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={out}", f"run.dir={tmp_path}",
               "run.name=again", "data.val_every=4", "train.max_steps=2", f"train.init_from={tiny_world['world']}")  # fmt: skip
    world = torch.load(tmp_path / "again" / "checkpoints" / "world.pt", weights_only=True)
    source = torch.load(tiny_world["world"], weights_only=True)
    for key, value in source["tokenizer"]["state_dict"].items():
        assert torch.equal(world["tokenizer"]["state_dict"][key], value), key
    assert world["configs"]["tokenizer_train"] == source["configs"]["tokenizer_train"]


def test_vqvae_bench_prints_throughput(tiny_world):
    proc = run_module("vqvae.bench", "--tokenizer", str(tiny_world["tokenizer"]), "--batch", "8", "--repeats", "2")
    assert "encode+decode" in proc.stdout and "frames/s" in proc.stdout


@pytest.mark.parametrize("kind", ["mp4", "png"])
def test_inference_seed_from_video_and_png_folder(tiny_world, seed_files, tmp_path, kind):
    """Seed frames from an mp4 or a folder of PNGs give the same kind of output as the .npz seed."""
    from ochre.io import write_png, write_video

    frames = np.load(seed_files / "seed.npz")["frames"]
    if kind == "mp4":
        seed = tmp_path / "seed.mp4"
        write_video(seed, frames, fps=15)
    else:
        seed = tmp_path / "seed_png"
        for i, frame in enumerate(frames):
            write_png(seed / f"{i:03d}.png", frame)
    out = tmp_path / "out"
    run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(seed),
               "--actions", str(seed_files / "actions.json"), "--out", str(out))  # fmt: skip
    pred = np.load(out / "frames.npz")["frames"]
    assert pred.shape == (6, 64, 64, 3) and pred.dtype == np.uint8
    if kind == "png":  # lossless: the same frames in an .npz (no seed actions either) give the same prediction
        ref, ref_seed = tmp_path / "ref", tmp_path / "frames_only.npz"
        np.savez(ref_seed, frames=frames)
        run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(ref_seed),
                   "--actions", str(seed_files / "actions.json"), "--out", str(ref))  # fmt: skip
        np.testing.assert_array_equal(pred, np.load(ref / "frames.npz")["frames"])


def test_inference_unreadable_seed_video_is_one_line(tiny_world, seed_files, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    proc = run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(bad),
                      "--actions", str(seed_files / "actions.json"), "--out", str(tmp_path / "o"), check=False)  # fmt: skip
    assert proc.returncode == 2 and "broken.mp4" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_actions_csv_reads_one_step_per_row_for_factored_worlds(tmp_path):
    from ochre.errors import OchreError
    from ochre.inputs import load_actions

    path = tmp_path / "actions.csv"
    path.write_text("yaw_bin,pitch_bin,forward\n4,5,1\n0,5,0\n")
    assert load_actions(path, components=3).tolist() == [[4, 5, 1], [0, 5, 0]]
    assert load_actions(path).tolist() == [[4, 0], [5, 5], [1, 0]]  # discrete: one column per sequence
    with pytest.raises(OchreError, match="must hold the 10 components of one action, got 3 columns"):
        load_actions(path, components=10)
