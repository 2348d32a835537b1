"""Damaged datasets: each is refused with one line naming the file and the fix, and
`preprocess.generate` rerun over a damaged dataset re-plays exactly the damaged shards.

The datasets are made by the real entry points, copied into tmp_path and damaged here:
flipped bytes, truncated and missing files, values out of range, files of the wrong
dtype, a manifest that lists a shard which is not there.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ochre.data.integrity import verify_dataset
from ochre.data.store import EpisodeDataset, read_manifest
from ochre.errors import OchreError
from tests.conftest import run_module

GENERATE = ("preprocess.generate", "--world", "coinrun", "--frames", "240", "--num-envs", "4", "--env", "num_levels=20",
            "--policy", "uniform", "--max-episode-frames", "20", "--shard-frames", "80", "--quiet")  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Three shards of 80 real CoinRun frames, made by `preprocess.generate`."""
    out = tmp_path_factory.mktemp("generated") / "coinrun"
    run_module(*GENERATE, "--out", str(out))
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    """A copy with the same mtimes (copy2), without the source's verification stamp."""
    return Path(shutil.copytree(src, tmp_path / src.name, ignore=shutil.ignore_patterns("verified.json")))


def flip_byte(name: str, offset: int = -1000) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        data = bytearray((root / name).read_bytes())
        data[offset] ^= 0xFF
        (root / name).write_bytes(bytes(data))

    return damage


def truncate(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).write_bytes((root / name).read_bytes()[:-5000])


def delete(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).unlink()


def set_value(name: str, index: tuple[int, ...], value: int) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        array = np.load(root / name, mmap_mode="r+")
        array[index] = value
        array.flush()

    return damage


def bump_action(name: str, row: int) -> Callable[[Path], None]:
    """Change one action id to another valid one: wrong data that only the sha256 can tell."""

    def damage(root: Path) -> None:
        actions = np.load(root / name, mmap_mode="r+")
        actions[row] = (actions[row] + 1) % 15
        actions.flush()

    return damage


def swap_dtype(name: str, dtype: type) -> Callable[[Path], None]:
    return lambda root: np.save(root / name, np.load(root / name).astype(dtype))


def list_absent_shard(root: Path) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    extra = {**manifest["shards"][-1], "name": "shard_00003", "index": 3}
    extra["files"] = {k: f"shard_00003.{k}.npy" for k in extra["files"]}
    manifest["shards"].append(extra)
    (root / "manifest.json").write_text(json.dumps(manifest))


# fault -> (damage, the file named, what the line says, whether the cheap check on open finds it)
FRAME_FAULTS = {
    "flipped byte in frames": (flip_byte("shard_00001.frames.npy"), "shard_00001.frames.npy", "differs from", False),
    "an action changed within range": (bump_action("shard_00000.actions.npy", 7), "shard_00000.actions.npy", "differs from", False),
    "truncated frames": (truncate("shard_00001.frames.npy"), "shard_00001.frames.npy", "file is truncated (", True),
    "missing actions file": (delete("shard_00002.actions.npy"), "shard_00002.actions.npy", "listed in manifest.json but missing", True),
    "action out of range": (set_value("shard_00000.actions.npy", (7,), 99), "shard_00000.actions.npy", "action id 99 is outside 0-14", True),
    "negative action": (set_value("shard_00002.actions.npy", (0,), -1), "shard_00002.actions.npy", "action id -1 is outside 0-14", True),
    "actions of the wrong dtype": (swap_dtype("shard_00000.actions.npy", np.int32), "shard_00000.actions.npy", "holds int32 but actions must be int64", True),
    "frames of the wrong dtype": (swap_dtype("shard_00001.frames.npy", np.uint16), "shard_00001.frames.npy", "holds uint16 but frames must be uint8", True),
    "episodes not an .npy file": (lambda root: (root / "shard_00000.episodes.npy").write_text("episodes"), "shard_00000.episodes.npy", "not a readable .npy file", True),
    "manifest lists an absent shard": (list_absent_shard, "shard_00003.frames.npy", "listed in manifest.json but missing", True),
}  # fmt: skip


def assert_one_line(message: str, file: Path, says: str, fix: str) -> None:
    assert "\n" not in message and message.startswith(f"{file}: "), message
    assert says in message and fix in message, message


def verify_cli(root: Path, file: Path, says: str, fix: str) -> None:
    """`preprocess.verify` exits 2 and names `file` on one line of its own, with no traceback."""
    proc = run_module("preprocess.verify", str(root), "--quiet", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert all(line.startswith("error: ") for line in lines), proc.stderr
    named = [line.removeprefix("error: ") for line in lines if line.startswith(f"error: {file}: ")]
    assert len(named) == 1, proc.stderr
    assert_one_line(named[0], file, says, fix)
    assert f"{root}: damaged: {len(lines)} files" in proc.stdout


@pytest.mark.parametrize("fault", FRAME_FAULTS)
def test_a_damaged_frames_dataset_is_refused_with_one_line(generated, tmp_path, fault):
    damage, name, says, cheap = FRAME_FAULTS[fault]
    root = copy(generated, tmp_path)
    damage(root)
    fix = "rerun the same `python -m preprocess.generate` command"
    with pytest.raises(OchreError) as err:
        EpisodeDataset(root).verify(progress=False)  # opening runs the cheap check
    assert_one_line(str(err.value), root / name, says, fix)
    if not cheap:
        EpisodeDataset(root)  # a flipped byte inside the data passes the cheap check: only sha256 finds it
    verify_cli(root, root / name, says, fix)


def test_a_sound_dataset_verifies_with_exit_0(generated):
    proc = run_module("preprocess.verify", str(generated), "--quiet")
    assert proc.stdout.strip().startswith(f"{generated}: ok: 3 shards, 240 frames, 0.00 GB in ")
    assert proc.stderr == ""


def test_token_ids_beyond_the_codebook_are_refused_on_open(tiny_world, tmp_path):
    root = copy(tiny_world["tokens"], tmp_path)
    size = read_manifest(root)["codebook_size"]
    set_value("shard_00001.tokens.npy", (3, 1, 2), size)(root)
    says = f"token id {size} is outside 0-{size - 1} (codebook_size {size} in manifest.json)"
    with pytest.raises(OchreError) as err:
        EpisodeDataset(root, expect_kind="tokens")
    assert_one_line(
        str(err.value), root / "shard_00001.tokens.npy", says, f"delete {root} and rerun the same `python -m vqvae.tokenize`"
    )
    verify_cli(root, root / "shard_00001.tokens.npy", says, "vqvae.tokenize")


def test_tokenizing_a_truncated_frames_dataset_stops_with_one_line(tiny_world, generated, tmp_path):
    root = copy(generated, tmp_path)
    truncate("shard_00002.frames.npy")(root)
    args = ["--tokenizer", str(tiny_world["tokenizer"]), "--data", str(root), "--out", str(tmp_path / "tokens")]
    proc = run_module("vqvae.tokenize", *args, "--device", "cpu", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert last.startswith(f"error: {root / 'shard_00002.frames.npy'}: file is truncated ("), last


def test_verify_once_hashes_only_files_changed_since_they_passed(generated, tmp_path):
    root = copy(generated, tmp_path)
    first = EpisodeDataset(root).verify_once(progress=False)
    assert first.hashed_bytes == first.total_bytes > 0 and (root / "verified.json").is_file()
    assert EpisodeDataset(root).verify_once(progress=False).hashed_bytes == 0
    flip_byte("shard_00002.frames.npy")(root)
    again = verify_dataset(root, read_manifest(root), reuse_stamp=True)
    assert again.hashed_bytes == (root / "shard_00002.frames.npy").stat().st_size
    assert [d.file.name for d in again.damage] == ["shard_00002.frames.npy"]
    with pytest.raises(OchreError, match="shard_00002.frames.npy: sha256 .* differs from"):
        EpisodeDataset(root).verify_once(progress=False)
    (root / "verified.json").write_text("{not json")  # a damaged stamp only means hashing everything again
    assert verify_dataset(root, read_manifest(root), reuse_stamp=True).hashed_bytes == first.total_bytes


def test_generate_rerun_replays_exactly_the_damaged_shard(generated, tmp_path):
    root = copy(generated, tmp_path)
    flip_byte("shard_00001.frames.npy")(root)
    kept = {f.name: f.stat().st_mtime_ns for f in root.glob("shard_0000[02].*.npy")}
    proc = run_module(*GENERATE, "--out", str(root))
    replayed = [line for line in proc.stdout.splitlines() if "re-playing" in line]
    assert replayed == [line for line in replayed if line.startswith(f"{root / 'shard_00001.frames.npy'}: sha256 ")]
    assert len(replayed) == 1 and replayed[0].endswith("; re-playing shard_00001"), proc.stdout
    for file in sorted(generated.iterdir()):
        if file.name != "verified.json":
            assert (root / file.name).read_bytes() == file.read_bytes(), file.name
    assert {f.name: f.stat().st_mtime_ns for f in root.glob("shard_0000[02].*.npy")} == kept  # sound shards untouched
    again = run_module(*GENERATE, "--out", str(root))
    assert "re-playing" not in again.stdout
