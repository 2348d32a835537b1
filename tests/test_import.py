"""preprocess.import_videos on small synthetic MineRL and GameFactory recordings.

Each video frame is a flat grey whose level encodes its index (8 + 5 * i), so the
tests can tell exactly which frames were kept after decoding and resizing.
"""

import json

import numpy as np
import pytest

from ochre.actions import FirstPersonActionSpec
from ochre.data.importers import ImportSettings, kept_steps
from ochre.data.store import EpisodeDataset
from ochre.io import write_video
from preprocess.import_videos import main

SPEC = FirstPersonActionSpec()
STILL = SPEC.still_bin


def indexed_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    assert n <= 48, "levels 8 + 5 * i must stay below 256"
    return np.stack([np.full((h, w, 3), 8 + 5 * i, np.uint8) for i in range(n)])


def frame_ids(frames: np.ndarray) -> np.ndarray:
    return np.round((frames.astype(np.float64).mean(axis=(1, 2, 3)) - 8) / 5).astype(int)


def minerl_recording(root, name, steps=40, frames=30, video_fps=15, camera=None, keys=None, meta=None, drop=()):
    """A MineRL recording folder; `camera` is MineRL's (S, 2) [pitch, yaw], `keys` maps button -> (S,)."""
    folder = root / name
    folder.mkdir(parents=True)
    write_video(folder / "recording.mp4", indexed_frames(frames), fps=video_fps)
    metadata = {"duration_ms": frames / video_fps * 1000, "duration_steps": steps, **(meta or {})}
    (folder / "metadata.json").write_text(json.dumps({k: v for k, v in metadata.items() if k not in drop}))
    arrays = {"action$camera": np.zeros((steps, 2)) if camera is None else camera}
    arrays |= {f"action${b}": np.zeros(steps, np.int64) for b in SPEC.buttons}
    arrays |= {f"action${b}": np.asarray(v) for b, v in (keys or {}).items()}
    np.savez(folder / "rendered.npz", **{k: v for k, v in arrays.items() if k not in drop})
    return folder


def gamefactory_recording(root, name, frames=24, fps=12, entries=None, as_list=False):
    """A GameFactory video + metadata pair; `entries` defaults to one neutral entry per frame."""
    (root / "video").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    write_video(root / "video" / f"{name}.mp4", indexed_frames(frames), fps=fps)
    if entries is None:
        entries = [{"ws": 0, "ad": 0, "scs": 0, "yaw_delta": 0.0, "pitch_delta": 0.0} for _ in range(frames)]
    actions = entries if as_list else {str(i): e for i, e in enumerate(entries)}
    (root / "metadata" / f"{name}.json").write_text(json.dumps({"actions": actions}))


def run(capsys, fmt, src, out, *args):
    main(["--format", fmt, str(src), "--out", str(out), *args])
    return capsys.readouterr()


def episodes(path):
    data = EpisodeDataset(path)
    return [data.rows(*e) for e in data.episodes()]


def test_kept_steps_round_a_fractional_stride():
    kept = kept_steps(40, 20.0, ImportSettings(fps=16))
    assert len(kept) == 32 and list(kept[:9]) == [0, 1, 3, 4, 5, 6, 8, 9, 10] and set(np.diff(kept)) == {1, 2}
    assert list(kept_steps(10, 20.0, ImportSettings(fps=40))) == list(range(10))  # never upsampled
    assert list(kept_steps(40, 20.0, ImportSettings(fps=10, drop_seconds=0.5))) == list(range(10, 40, 2))


def test_minerl_linspace_mapping_downsampling_resize_and_manifest(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    minerl_recording(src, "a")  # 40 steps over 2 s (20 steps/s), video 30 frames at 15 fps
    minerl_recording(src, "b/deeper", steps=20, frames=16, video_fps=8)  # 20 steps over 2 s (10 steps/s)
    result = run(capsys, "minerl", src, out, "--fps", "10", "--size", "24x32", "--shard-frames", "15")
    assert result.out.strip().endswith(f"imported 2 recordings (40 frames) to {out}; skipped 0")

    (f1, a1), (f2, a2) = episodes(out)
    assert f1.shape == (20, 24, 32, 3) and a1.shape == (20, 10) and a1.dtype == np.int64
    assert list(frame_ids(f1)) == list(np.round(np.linspace(0, 29, 40)).astype(int)[::2])
    assert list(frame_ids(f2)) == list(np.round(np.linspace(0, 15, 20)).astype(int))  # stride 1: every step
    assert (a1 == SPEC.neutral(20)).all()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world"] == "minecraft" and manifest["action_schema"] == SPEC.to_dict()
    assert manifest["frame_shape"] == [24, 32, 3] and manifest["fps"] == 10 and len(manifest["shards"]) == 2
    source = manifest["source"]
    assert source["importer"] == "minerl" and source["root"] == str(src)
    assert (source["fps"], source["drop_seconds"], source["tolerance"]) == (10, 0, 0.1)
    assert source["imported"] == ["a", "b/deeper"]
    assert source["skipped"] == []


def test_minerl_action_aggregation(tmp_path, capsys):
    # 18 steps at 20 steps/s, video 18 frames at 20 fps; --fps 5 keeps steps 0, 4, 8, 12, 16.
    camera = np.zeros((18, 2))  # MineRL [pitch, yaw]
    camera[0:4] = [[6, 10], [6, 20], [6, 10], [6, 20]]  # looks down 6 deg/step; yaw mean 15 deg
    camera[4:8] = [[-30, 40], [-30, -20], [-30, 40], [-30, -20]]  # looks up past 15 deg; yaw mean 10, not clipped per step
    camera[8:12, 1] = 3.0
    forward = np.r_[1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1]  # held 1/2, 1/4, 3/4, 0, 2/2
    attack = np.r_[np.zeros(16), 1, 0]  # the last row aggregates its 2 remaining steps: held 1/2
    minerl_recording(
        tmp_path / "src", "r", steps=18, frames=18, video_fps=20, camera=camera, keys={"forward": forward, "attack": attack}
    )
    run(capsys, "minerl", tmp_path / "src", tmp_path / "out", "--fps", "5")

    [(frames, actions)] = episodes(tmp_path / "out")
    assert list(frame_ids(frames)) == [0, 4, 8, 12, 16]
    yaw, pitch = actions[:, SPEC.index("yaw")], actions[:, SPEC.index("pitch")]
    # 15 deg -> 1.0 (top bin); 10 deg -> 0.67 (top bin); 3 deg -> 0.2 (bin 4); -6 deg -> -0.4 (bin 1)
    assert list(yaw) == [6, 6, 4, STILL, STILL]
    assert list(pitch) == [1, 6, STILL, STILL, STILL]  # MineRL's pitch > 0 (down) becomes pitch < 0
    assert list(actions[:, SPEC.index("forward")]) == [1, 0, 1, 0, 1]
    assert list(actions[:, SPEC.index("attack")]) == [0, 0, 0, 0, 1]
    assert (actions[:, [SPEC.index(b) for b in ("left", "back", "right", "jump", "sprint", "sneak")]] == 0).all()


def test_minerl_drop_seconds(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    minerl_recording(src, "long")  # 2 s
    minerl_recording(src, "short", steps=8, frames=6, video_fps=15)  # 0.4 s
    result = run(capsys, "minerl", src, out, "--fps", "10", "--drop-seconds", "0.5")
    [(frames, _)] = episodes(out)
    assert list(frame_ids(frames)) == list(np.round(np.linspace(0, 29, 40)).astype(int)[10::2])
    assert f"{src / 'short' / 'recording.mp4'}: duration: " in result.err
    assert json.loads((out / "manifest.json").read_text())["source"]["drop_seconds"] == 0.5


def test_gamefactory_mapping_and_downsampling(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    presses = [("ws", 1), ("ws", 2), ("ad", 1), ("ad", 2), ("scs", 1), ("scs", 2), ("scs", 3)]
    entries = [{"ws": 0, "ad": 0, "scs": 0, "yaw_delta": 0.0, "pitch_delta": 0.0} for _ in range(24)]
    for row, (key, value) in enumerate(presses):  # each press held for both frames of one kept row
        entries[2 * row][key] = entries[2 * row + 1][key] = value
    entries[0] |= {"yaw_delta": 6.0, "pitch_delta": 6.0}  # mean 3 deg over the row: 0.2 -> bin 4, up stays up
    entries[14]["yaw_delta"] = entries[15]["yaw_delta"] = -90.0  # clipped to -15 deg: bottom bin
    gamefactory_recording(src, "a", entries=entries)
    gamefactory_recording(src, "b", entries=entries[:23], as_list=True)  # one entry short, within tolerance
    result = run(capsys, "gamefactory", src, out, "--fps", "6")  # video at 12 fps: every other frame
    assert "imported 2 recordings (24 frames)" in result.out

    (fa, aa), (fb, ab) = episodes(out)
    assert list(frame_ids(fa)) == list(range(0, 24, 2)) and list(frame_ids(fb)) == list(range(0, 23, 2))
    expected_buttons = ["forward", "back", "left", "right", "jump", "sprint", "sneak"]
    for row, button in enumerate(expected_buttons):
        pressed = [b for b in SPEC.buttons if aa[row, SPEC.index(b)]]
        assert pressed == [button], (row, pressed)
    assert (aa[7:, 2:] == 0).all() and (aa == ab).all()
    assert aa[0, SPEC.index("yaw")] == 4 and aa[0, SPEC.index("pitch")] == 4
    assert aa[7, SPEC.index("yaw")] == 0 and (aa[8:, :2] == STILL).all()


def test_bad_minerl_recordings_are_skipped_and_named(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    minerl_recording(src, "good")
    video = minerl_recording(src, "truncated") / "recording.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    minerl_recording(src, "no_npz")
    (src / "no_npz" / "rendered.npz").unlink()
    minerl_recording(src, "no_duration", drop=("duration_ms",))
    minerl_recording(src, "step_count", meta={"duration_steps": 60})
    minerl_recording(src, "duration", meta={"duration_ms": 3000})
    minerl_recording(src, "nan_camera", camera=np.where(np.arange(40)[:, None] == 5, [0, np.nan], 0.0))
    minerl_recording(src, "big_camera", camera=np.where(np.arange(40)[:, None] == 3, [200, 0], 0.0))
    minerl_recording(src, "bad_key", keys={"forward": np.where(np.arange(40) == 7, 2, 0)})
    minerl_recording(src, "missing_key", drop=("action$jump",))
    result = run(capsys, "minerl", src, out, "--fps", "10")

    expected = {
        "truncated/recording.mp4": "file: cannot read video",
        "no_npz/rendered.npz": "file: not found",
        "no_duration/metadata.json": "duration_ms: missing",
        "step_count/metadata.json": "duration_steps: says 60 steps but rendered.npz has 40",
        "duration/metadata.json": "duration_ms: says 3 s but the video lasts 2 s",
        "nan_camera/rendered.npz": "action$camera: step 5 is [0.0, nan]",
        "big_camera/rendered.npz": "action$camera: step 3 is [200.0, 0.0]",
        "bad_key/rendered.npz": "action$forward: step 7 is 2.0; expected 0 or 1",
        "missing_key/rendered.npz": "action$jump: missing",
    }
    for path, problem in expected.items():
        line = f"{src / path}: {problem}"
        assert f"warning: {line}" in result.err and f"  {line}" in result.out, line
    assert result.out.strip().endswith(f"imported 1 recording (20 frames) to {out}; skipped 9 (see above)")
    assert [len(f) for f, _ in episodes(out)] == [20]
    skipped = json.loads((out / "manifest.json").read_text())["source"]["skipped"]
    assert sorted(s["recording"] for s in skipped) == sorted(p.split("/")[0] for p in expected)


def test_bad_gamefactory_recordings_are_skipped_and_named(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    neutral = {"ws": 0, "ad": 0, "scs": 0, "yaw_delta": 0.0, "pitch_delta": 0.0}

    def with_entry(frame, **change):
        entries = [dict(neutral) for _ in range(24)]
        entries[frame] = {k: v for k, v in (neutral | change).items() if v is not None}
        return entries

    gamefactory_recording(src, "ok")
    gamefactory_recording(src, "no_meta")
    (src / "metadata" / "no_meta.json").unlink()
    gamefactory_recording(src, "no_video")
    (src / "video" / "no_video.mp4").unlink()
    gamefactory_recording(src, "garbage")
    (src / "video" / "garbage.mp4").write_bytes(b"not a video" * 100)
    gamefactory_recording(src, "count", entries=[neutral] * 15)
    gamefactory_recording(src, "ws", entries=with_entry(4, ws=3))
    gamefactory_recording(src, "scs", entries=with_entry(6, scs=4))
    gamefactory_recording(src, "yaw", entries=with_entry(2, yaw_delta=None))
    gamefactory_recording(src, "pitch", entries=with_entry(1, pitch_delta=float("nan")))
    gamefactory_recording(src, "slow", frames=10, fps=5, entries=[neutral] * 10)
    gamefactory_recording(src, "keys")
    (src / "metadata" / "keys.json").write_text(json.dumps({"actions": {"0": neutral, "x": neutral}}))
    result = run(capsys, "gamefactory", src, out, "--fps", "6")

    expected = {
        "metadata/no_meta.json": "file: not found",
        "video/no_video.mp4": "file: not found",
        "video/garbage.mp4": "file: cannot read video",
        "metadata/count.json": "actions: 15 entries but the video has 24 frames",
        "metadata/ws.json": "ws: frame 4 is 3.0; expected an id in 0..2",
        "metadata/scs.json": "scs: frame 6 is 4.0; expected an id in 0..3",
        "metadata/yaw.json": "yaw_delta: frame 2 missing",
        "metadata/pitch.json": "pitch_delta: frame 1 is nan",
        "video/slow.mp4": "fps: 5 steps/s is below the target 6 fps",
        "metadata/keys.json": "actions: keys must be frame indices",
    }
    for path, problem in expected.items():
        line = f"{src / path}: {problem}"
        assert f"warning: {line}" in result.err and f"  {line}" in result.out, line
    assert result.out.strip().endswith(f"imported 1 recording (12 frames) to {out}; skipped 10 (see above)")
    assert [len(f) for f, _ in episodes(out)] == [12]


def test_truncated_video_with_its_index_up_front_is_caught_by_decoding(tmp_path, capsys):
    """A faststart mp4 cut short still opens (its index comes first), but decoding comes up short."""
    import av

    src = tmp_path / "src"
    gamefactory_recording(src, "cut")
    video = src / "video" / "cut.mp4"
    noise = np.random.default_rng(0).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)  # big packets: the cut lands inside one
    with av.open(str(video), mode="w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in noise:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 3 // 4])
    gamefactory_recording(src, "ok")
    result = run(capsys, "gamefactory", src, tmp_path / "out", "--fps", "6", "--tolerance", "0.9")
    assert f"warning: {video}: file: decoded " in result.err and "(truncated?)" in result.err
    assert "imported 1 recording " in result.out


def test_strict_fails_and_leaves_no_dataset(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    minerl_recording(src, "a_good")
    minerl_recording(src, "b_bad", meta={"duration_steps": 60})
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "minerl", src, out, "--strict")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"error: {src / 'b_bad' / 'metadata.json'}: duration_steps: says 60 steps" in err and "--strict" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no dataset, no staging folder left behind


def test_existing_dataset_is_not_overwritten(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    gamefactory_recording(src, "a")
    run(capsys, "gamefactory", src, out, "--fps", "6")
    manifest = (out / "manifest.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "gamefactory", src, out, "--fps", "6")
    assert exit_info.value.code == 2
    assert f"error: {out}: a dataset already exists here" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == manifest


def test_source_without_recordings_is_an_error(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    with pytest.raises(SystemExit):
        run(capsys, "gamefactory", tmp_path / "src", tmp_path / "out")
    assert "no gamefactory recordings found (expected video/<name>.mp4" in capsys.readouterr().err


def test_no_importable_recording_is_an_error(tmp_path, capsys):
    src = tmp_path / "src"
    minerl_recording(src, "bad", meta={"duration_steps": 60})
    with pytest.raises(SystemExit):
        run(capsys, "minerl", src, tmp_path / "out")
    assert f"error: {src}: none of the 1 recordings could be imported" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
