"""The fault corpus: bad inputs made here, each refused by its entry point with exit 2 and one line.

Every case is one line of CASES: the entry point, a category (corrupt, truncated, foreign, NaN,
out of range, wrong shape, wrong kind, missing), what is wrong, the arguments given over the
entry point's good ones (BASE), and what the last line must name. The bad files are made
(tests/faults/corpus.py) from the good inputs of the session fixtures. A case passes when
the entry point exits with status 2, its last stderr line starts with `error: ` and names
the file, key or flag, no traceback is shown and nothing is left in the output folder.
Here each case runs in-process through the entry point's `main(argv)` (wrapped by
`cli_entry`, which makes the exit status), a hang bounded by an alarm; `make test-faults`
runs the first case of each entry point and category again as a real command (marker
`slow_faults`).

    pytest tests/faults/test_corpus.py -k "inference.py: nan"      # one entry point's NaN cases
"""

from __future__ import annotations

import importlib
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, run_module
from tests.faults.corpus import (
    FRAMES,
    Goods,
    Maker,
    checkpoint,
    dataset,
    fifo,
    folder,
    garbage,
    json_file,
    manifest,
    minerl,
    npy,
    npz,
    png_folder,
    text,
    truncated,
)
from tests.faults.test_checkpoints import WORLD_FAULTS
from tests.faults.test_datasets import flip_byte, set_value, swap_dtype
from tests.faults.test_datasets import truncate as cut

HANG_S = 60  # a case that runs longer than this hangs (a FIFO read, say)
CUDA = torch.cuda.is_available()

INF, GEN, IMP, INS, VER = (
    "inference.py",
    "preprocess.generate",
    "preprocess.import_videos",
    "preprocess.inspect",
    "preprocess.verify",
)
VQT, DYN, TOK, VQE = "vqvae.train", "train.dynamics", "vqvae.tokenize", "vqvae.evaluate"
EVA, PLT, STB, PLAY, REC = "train.evaluate", "train.playtest", "train.stability", "live.play", "live.record"
IDM = "train.idm"
SEE, CAM, PBN, VQB, AVA, TBN, LBN = (
    "preprocess.seeds",
    "preprocess.camera_gain",
    "preprocess.bench",
    "vqvae.bench",
    "train.avatar",
    "train.bench",
    "live.bench",
)

# The good arguments of each entry point; a case's arguments come after them (a repeated flag or override wins).
BASE = {
    INF: "--checkpoint {world} --seed-frames {seed} --actions {actions} --out {out} --device cpu",
    GEN: "--world coinrun --frames 40 --num-envs 2 --shard-frames 20 --env num_levels=5 --out {out} --quiet",
    IMP: "--format minerl --out {out} --strict",
    INS: "--out {out}",
    VER: "--quiet",
    VQT: "--config configs/tiny/vqvae.yaml data.path={frames} run.dir={out} run.name=x data.val_every=4",
    DYN: "--config configs/tiny/dynamics.yaml data.path={tokens} run.dir={out} run.name=x data.val_every=4",
    TOK: "--tokenizer {tokenizer} --data {frames} --out {out} --device cpu",
    VQE: "--tokenizer {tokenizer} --data {frames} --frames 8 --out {out} --device cpu",
    EVA: "--checkpoint {world} --data {frames} --horizon 2 --windows 2 --batch 2 --out {out} --device cpu --playtest-seeds 0 "
    "--stability-steps 0 --no-world-checks",
    PLT: "--checkpoint {world} --seeds 1 --programs stand --sampling greedy --out {out} --device cpu --no-videos",
    STB: "--checkpoint {world} --seed-frames {seed} --steps 4 --policies noop --out {out} --device cpu",
    PLAY: "--checkpoint {world} --seed-frames {seed} --headless --frames 2 --out {out} --device cpu",
    REC: "--world coinrun --out {out} --headless --frames 2",
    IDM: "--data {frames} --out {out}/idm.pt --steps 1 --batch 2 --channels 8 8 --val-every 4 --device cpu",
    SEE: "--data {frames} --out {out}/seeds.npz --count 2",
    CAM: "--data {frames}",
    PBN: "--worlds coinrun --workers 1 --seconds 0.1 --out {out}/bench.json",
    VQB: "--tokenizer {tokenizer} --batch 2 --repeats 1 --device cpu",
    AVA: "--data {frames} --eval-data {frames} --out {out}/avatar.pt --steps 1 --frames 4",
    TBN: "--device cpu --steps 1 --repeats 1 --warmup 0 --matmul-size 8 --out {out}/bench.json",
    LBN: "--checkpoint {world} --seed-frames {seed} --frames 2 --warmup 0 --out {out}/live.json --device cpu",
}
PIXEL_FILM = (
    "--config configs/tiny/pixel_film.yaml data.path={frames} run.dir={out} run.name=x"  # train.dynamics, model.type pixel_film
)
IDM_SCORE = "--world {world} --eval-data {frames} --windows 2 --device cpu"  # train.idm scoring a trained IDM
NAN_FRAMES = np.full((4, 64, 64, 3), np.nan, np.float32)


def _nan_weight(section: str) -> Maker:
    return checkpoint("world", WORLD_FAULTS[f"NaN {section} weight"][0])


@dataclass(frozen=True)
class Case:
    entry: str
    category: str
    what: str
    args: str  # over BASE[entry]; {bad} is the maker's file, {out}, {afile} (a regular file), {tmp} and the goods as in BASE
    names: str  # what the last line names (formatted like args)
    make: Maker | None = None
    xfail: str = ""  # a defect whose fix lies in a file another engineer owns: the reason, with that file
    no_cuda: bool = False  # only where CUDA is not available
    base: str = ""  # the good arguments, when not BASE[entry]


C = Case
CASES = [
    # inference.py: offline video from a seed and an action script
    C(INF, "range", "--steps -1", "--steps -1", "--steps"),
    C(INF, "range", "--steps 0", "--steps 0", "--steps"),
    C(INF, "range", "more steps than actions", "--steps 99", "{actions}"),
    C(INF, "range", "--temperature 0", "--sampling sample --temperature 0", "--temperature"),
    C(INF, "range", "--temperature -1", "--sampling sample --temperature -1", "--temperature"),
    C(INF, "nan", "--temperature nan", "--sampling sample --temperature nan", "--temperature"),
    C(INF, "range", "--top-k 0", "--sampling sample --top-k 0", "--top-k"),
    C(INF, "range", "--fps 0", "--fps 0", "--fps"),
    C(INF, "nan", "--fps inf", "--fps inf", "--fps"),
    C(INF, "range", "--samples 0", "--samples 0", "--samples"),
    C(INF, "range", "--seed -1", "--seed -1", "--seed"),
    C(INF, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(INF, "kind", "--device that is no device", "--device tpu", "--device"),
    C(INF, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(INF, "kind", "--out is a regular file", "--out {afile}", "--out"),
    C(INF, "kind", "seed frames from a FIFO", "--seed-frames {bad}", "{bad}", fifo()),
    C(INF, "kind", "actions from a FIFO", "--actions {bad}", "{bad}", fifo()),
    C(INF, "kind", "checkpoint from a FIFO", "--checkpoint {bad}", "{bad}", fifo()),
    C(INF, "kind", "ground truth from a FIFO", "--gt {bad}", "{bad}", fifo()),
    C(INF, "kind", "checkpoint is a folder", "--checkpoint {bad}", "{bad}", folder("world.pt")),
    C(INF, "kind", "seed frames of an unknown type", "--seed-frames {bad}", "{bad}", text("seed.txt", "frames")),
    C(INF, "kind", "actions of an unknown type", "--actions {bad}", "{bad}", text("actions.txt", "1 2 3")),
    C(INF, "kind", "seed frames: an empty folder", "--seed-frames {bad}", "{bad}", folder("empty")),
    C(INF, "missing", "checkpoint", "--checkpoint {tmp}/missing.pt", "missing.pt"),
    C(INF, "missing", "seed frames", "--seed-frames {tmp}/missing.npz", "missing.npz"),
    C(INF, "missing", "actions", "--actions {tmp}/missing.json", "missing.json"),
    C(INF, "missing", "ground truth", "--gt {tmp}/missing.npz", "missing.npz"),
    C(INF, "corrupt", "checkpoint of random bytes", "--checkpoint {bad}", "{bad}", garbage("world.pt")),
    C(INF, "corrupt", "seed .npz of random bytes", "--seed-frames {bad}", "{bad}", garbage("seed.npz")),
    C(INF, "corrupt", "actions .npy of random bytes", "--actions {bad}", "{bad}", garbage("actions.npy")),
    C(INF, "corrupt", "actions .json cut mid-list", "--actions {bad}", "{bad}", text("actions.json", "[1, 2,")),
    C(INF, "corrupt", "actions .csv of words", "--actions {bad}", "{bad}", text("actions.csv", "action\nleft\nright\n")),
    C(INF, "corrupt", "seed .mp4 of random bytes", "--seed-frames {bad}", "{bad}", garbage("seed.mp4")),
    C(INF, "corrupt", "a PNG seed frame of random bytes", "--seed-frames {bad}", "000.png", folder("pngs", {"000.png": b"\x89PNG junk"})),
    C(INF, "corrupt", "ground truth .npz of random bytes", "--gt {bad}", "{bad}", garbage("gt.npz")),
    C(INF, "truncated", "checkpoint", "--checkpoint {bad}", "{bad}", truncated("world")),
    C(INF, "truncated", "seed .npz", "--seed-frames {bad}", "{bad}", truncated("seed")),
    C(INF, "truncated", "actions .npy", "--actions {bad}", "{bad}", truncated("actions")),
    C(INF, "foreign", "a tokenizer checkpoint as the world", "--checkpoint {tokenizer}", "{tokenizer}"),
    C(INF, "foreign", "a YAML preset as the checkpoint", "--checkpoint configs/tiny/dynamics.yaml", "dynamics.yaml"),
    C(INF, "foreign", "seed .npz without frames", "--seed-frames {bad}", "{bad}", npz(tokens=np.zeros((4, 16, 16), np.uint16))),
    C(INF, "foreign", "actions .json object without actions", "--actions {bad}", "{bad}", json_file("a.json", {"keys": [1]})),
    C(INF, "foreign", "actions .json of key names", "--actions {bad}", "{bad}", json_file("a.json", ["left", "right"])),
    C(INF, "nan", "NaN dynamics weights", "--checkpoint {bad}", "{bad}", _nan_weight("dynamics")),
    C(INF, "nan", "NaN tokenizer weights", "--checkpoint {bad}", "{bad}", _nan_weight("tokenizer")),
    C(INF, "nan", "seed frames of float NaN", "--seed-frames {bad}", "{bad}", npz(frames=NAN_FRAMES)),
    C(INF, "nan", "actions .npy of NaN", "--actions {bad}", "{bad}", npy("a.npy", np.array([1.0, np.nan]))),
    C(INF, "nan", "actions .json with NaN", "--actions {bad}", "{bad}", text("a.json", "[1, NaN, 2]")),
    C(INF, "nan", "seed actions of NaN", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES, actions=np.array([0.0, np.nan, 1.0]))),
    C(INF, "range", "action id 15 of 15", "--actions {bad}", "{bad}", json_file("a.json", [1, 2, 15])),
    C(INF, "range", "action id -1", "--actions {bad}", "{bad}", json_file("a.json", [-1, 2])),
    C(INF, "range", "action id 99 in .npy", "--actions {bad}", "{bad}", npy("a.npy", np.array([0, 99]))),
    C(INF, "range", "fractional action id", "--actions {bad}", "{bad}", json_file("a.json", [1.5, 2])),
    C(INF, "range", "seed action id 20", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES, actions=np.array([0, 0, 20]))),
    C(INF, "kind", "seed frames of uint16", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES.astype(np.uint16))),
    C(INF, "shape", "seed frames 32x64", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES[:, :32])),
    C(INF, "shape", "seed frames with 4 channels", "--seed-frames {bad}", "{bad}", npz(frames=np.zeros((4, 64, 64, 4), np.uint8))),
    C(INF, "shape", "one seed frame without K", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES[0])),
    C(INF, "shape", "no seed frames (K=0)", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES[:0])),
    C(INF, "shape", "seed PNGs of two sizes", "--seed-frames {bad}", "{bad}", png_folder((64, 64), (32, 32))),
    C(INF, "shape", "actions of 3 dimensions", "--actions {bad}", "{bad}", npy("a.npy", np.zeros((2, 3, 4), np.int64))),
    C(INF, "shape", "an empty action list", "--actions {bad}", "{bad}", json_file("a.json", [])),
    C(INF, "shape", "3 action sequences for 1 seed", "--actions {bad}", "{bad}", npy("a.npy", np.zeros((3, 6), np.int64))),
    C(INF, "shape", "2 seed actions for 4 frames", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES, actions=np.zeros(2, np.int64))),
    C(INF, "shape", "ground truth 32x32", "--gt {bad}", "{bad}", npz("gt.npz", frames=np.zeros((6, 32, 32, 3), np.uint8))),
    C(INF, "shape", "ground truth shorter than the rollout", "--gt {bad}", "{bad}", npz("gt.npz", frames=FRAMES[:2])),
    # preprocess.generate: roll out a world into a dataset
    C(GEN, "range", "--frames 0", "--frames 0", "--frames"),
    C(GEN, "range", "--frames -5", "--frames -5", "--frames"),
    C(GEN, "kind", "--frames nan", "--frames nan", "--frames"),
    C(GEN, "range", "--num-envs 0", "--num-envs 0", "--num-envs"),
    C(GEN, "range", "--workers 0", "--workers 0", "--workers"),
    C(GEN, "range", "--max-episode-frames -1", "--max-episode-frames -1", "--max-episode-frames"),
    C(GEN, "range", "--shard-frames 0", "--shard-frames 0", "--shard-frames"),
    C(GEN, "range", "--seed -1", "--seed -1", "--seed"),
    C(GEN, "kind", "an unknown policy", "--policy wander", "--policy"),
    C(GEN, "range", "policy hold_min 0", "--policy-set hold_min=0", "hold_min"),
    C(GEN, "range", "policy hold_min above hold_max", "--policy-set hold_min=5 --policy-set hold_max=2", "hold_min"),
    C(GEN, "range", "policy noop_prob 2", "--policy-set noop_prob=2", "noop_prob"),
    C(GEN, "foreign", "an unknown policy setting", "--policy-set bogus=1", "bogus"),
    C(GEN, "range", "env num_levels -1", "--env num_levels=-1", "num_levels"),
    C(GEN, "foreign", "env distribution_mode unknown", "--env distribution_mode=weird", "distribution_mode"),
    C(GEN, "foreign", "an env setting of another world", "--env frame_skip=4", "env.frame_skip"),
    C(GEN, "kind", "env start_level of words", "--env start_level=abc", "env.start_level"),
    C(GEN, "corrupt", "env value of broken YAML", "--env num_levels=[1,", "num_levels=[1,"),
    C(GEN, "foreign", "an unknown world", "--world coinrunn", "coinrunn"),
    C(GEN, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(GEN, "kind", "--out is a regular file", "--out {afile}", "--out"),
    C(GEN, "missing", "--disjoint-from", "--disjoint-from {tmp}/missing", "missing"),
    C(GEN, "kind", "--disjoint-from a FIFO", "--disjoint-from {bad}", "{bad}", fifo()),
    # preprocess.import_videos: recordings into a dataset (--strict: any bad recording stops it)
    C(IMP, "range", "--fps 0", "{bad} --fps 0", "--fps", minerl()),
    C(IMP, "range", "--fps -3", "{bad} --fps -3", "--fps", minerl()),
    C(IMP, "range", "--size 0x64", "{bad} --size 0x64", "--size", minerl()),
    C(IMP, "kind", "--size of words", "{bad} --size big", "--size", minerl()),
    C(IMP, "range", "--drop-seconds -1", "{bad} --drop-seconds -1", "--drop-seconds", minerl()),
    C(IMP, "range", "--tolerance -0.1", "{bad} --tolerance -0.1", "--tolerance", minerl()),
    C(IMP, "range", "--shard-frames 0", "{bad} --shard-frames 0", "--shard-frames", minerl()),
    C(IMP, "kind", "an unknown --format", "{bad} --format youtube", "--format", minerl()),
    C(IMP, "missing", "SRC", "{tmp}/missing", "missing"),
    C(IMP, "kind", "SRC is a regular file", "{afile}", "{afile}"),
    C(IMP, "kind", "SRC is a FIFO", "{bad}", "{bad}", fifo()),
    C(IMP, "kind", "--out under a regular file", "{bad} --out {afile}/out", "--out", minerl()),
    C(IMP, "corrupt", "video of random bytes", "{bad}", "recording.mp4", minerl(video=b"\x00\x00\x00\x18ftypmp42 junk")),
    C(IMP, "truncated", "video cut in half", "{bad}", "recording.mp4", minerl(video=b"")),
    C(IMP, "corrupt", "metadata.json of random bytes", "{bad}", "metadata.json", minerl(metadata=b"\xff\xfe{")),
    C(IMP, "missing", "rendered.npz", "{bad}", "rec", minerl(rendered=None)),
    C(IMP, "nan", "camera angles of NaN", "{bad}", "rendered.npz", minerl(camera=np.full((20, 2), np.nan))),
    C(IMP, "range", "a button pressed with 3", "{bad}", "rendered.npz", minerl(forward=np.full(20, 3))),
    C(IMP, "shape", "camera of 3 columns", "{bad}", "rendered.npz", minerl(camera=np.zeros((20, 3)))),
    C(IMP, "range", "metadata steps that disagree with the video", "{bad}", "metadata.json", minerl(metadata={"duration_ms": 1000, "duration_steps": 60})),
    C(IMP, "foreign", "gamefactory files as minerl", "{bad}", "{bad}", folder("gf", {"video.mp4": b"", "meta.json": b"{}"})),
    # preprocess.inspect: stats and plots of a dataset
    C(INS, "range", "--samples 0", "{frames} --samples 0", "--samples"),
    C(INS, "range", "--travel-episodes -1", "{frames} --travel-episodes -1", "--travel-episodes"),
    C(INS, "range", "--seed -1", "{frames} --seed -1", "--seed"),
    C(INS, "missing", "the dataset", "{tmp}/missing", "missing"),
    C(INS, "kind", "the dataset is a regular file", "{afile}", "{afile}"),
    C(INS, "kind", "the dataset is a FIFO", "{bad}", "{bad}", fifo()),
    C(INS, "kind", "--out under a regular file", "{frames} --out {afile}/out", "--out"),
    C(INS, "missing", "manifest.json", "{bad}", "{bad}", folder("not_a_dataset")),
    C(INS, "corrupt", "manifest.json of random bytes", "{bad}", "manifest.json", dataset("frames", lambda r: (r / "manifest.json").write_bytes(b"\x00{"))),
    C(INS, "foreign", "manifest.json a list", "{bad}", "manifest.json", dataset("frames", manifest(lambda m: [m]))),
    C(INS, "foreign", "manifest of an unknown kind", "{bad}", "manifest.json", dataset("frames", manifest(lambda m: m.update(kind="audio")))),
    C(INS, "truncated", "a frames shard", "{bad}", "shard_00001.frames.npy", dataset("frames", cut("shard_00001.frames.npy"))),
    C(INS, "kind", "frames of uint16", "{bad}", "shard_00000.frames.npy", dataset("frames", swap_dtype("shard_00000.frames.npy", np.uint16))),
    C(INS, "range", "an action id out of range", "{bad}", "shard_00000.actions.npy", dataset("frames", set_value("shard_00000.actions.npy", (3,), 40))),
    # preprocess.verify: sha256 of every shard
    C(VER, "missing", "the dataset", "{tmp}/missing", "missing"),
    C(VER, "missing", "manifest.json", "{bad}", "{bad}", folder("not_a_dataset")),
    C(VER, "kind", "the dataset is a FIFO", "{bad}", "{bad}", fifo()),
    C(VER, "corrupt", "manifest.json of random bytes", "{bad}", "manifest.json", dataset("frames", lambda r: (r / "manifest.json").write_bytes(b"\x00{"))),
    C(VER, "foreign", "manifest.json without shards", "{bad}", "manifest.json", dataset("frames", manifest(lambda m: m.pop("shards")))),
    C(VER, "corrupt", "a flipped byte in a frames shard", "{bad}", "shard_00001.frames.npy", dataset("frames", flip_byte("shard_00001.frames.npy"))),
    C(VER, "truncated", "a token shard", "{bad}", "shard_00000.tokens.npy", dataset("tokens", cut("shard_00000.tokens.npy"))),
    # vqvae.train: config values over configs/tiny/vqvae.yaml
    C(VQT, "range", "train.batch_size=-4", "train.batch_size=-4", "train.batch_size"),
    C(VQT, "range", "train.lr=-1", "train.lr=-1", "train.lr"),
    C(VQT, "range", "train.lr=0", "train.lr=0", "train.lr"),
    C(VQT, "nan", "train.lr=.nan", "train.lr=.nan", "train.lr"),
    C(VQT, "nan", "train.mse_weight=.inf", "train.mse_weight=.inf", "train.mse_weight"),
    C(VQT, "range", "train.max_steps=0", "train.max_steps=0", "train.max_steps"),
    C(VQT, "range", "train.warmup_steps=-1", "train.warmup_steps=-1", "train.warmup_steps"),
    C(VQT, "range", "train.grad_clip=0", "train.grad_clip=0", "train.grad_clip"),
    C(VQT, "range", "train.l1_weight=-1", "train.l1_weight=-1", "train.l1_weight"),
    C(VQT, "range", "train.lpips_weight=-0.1", "train.lpips_weight=-0.1", "train.lpips_weight"),
    C(VQT, "range", "model.vq_decay=1.5", "model.quantizer=vq model.vq_decay=1.5", "model.vq_decay"),
    C(VQT, "range", "model.vq_codes=0", "model.quantizer=vq model.vq_codes=0", "model.vq_codes"),
    C(VQT, "range", "model.channels=[0,8]", "model.channels=[0,8]", "model.channels[0]"),
    C(VQT, "range", "model.fsq_levels=[1,5]", "model.fsq_levels=[1,5]", "model.fsq_levels[0]"),
    C(VQT, "range", "data.val_every=1", "data.val_every=1", "data.val_every"),
    C(VQT, "range", "logging.log_every=0", "logging.log_every=0", "logging.log_every"),
    C(VQT, "range", "logging.sample_every=0", "logging.sample_every=0", "logging.sample_every"),
    C(VQT, "range", "train.checkpoint_every=0", "train.checkpoint_every=0", "train.checkpoint_every"),
    C(VQT, "range", "train.threads=-1", "train.threads=-1", "train.threads"),
    C(VQT, "range", "train.seed=-1", "train.seed=-1", "train.seed"),
    C(VQT, "kind", "train.device=cuda without CUDA", "train.device=cuda", "train.device", no_cuda=True),
    C(VQT, "kind", "train.device=tpu", "train.device=tpu", "train.device"),
    C(VQT, "kind", "train.amp=fp8", "train.amp=fp8", "train.amp"),
    C(VQT, "kind", "train.lr=fast", "train.lr=fast", "train.lr"),
    C(VQT, "foreign", "an unknown key", "train.max_stepz=3", "train.max_stepz"),
    C(VQT, "corrupt", "an override without =", "train.lr", "train.lr"),
    C(VQT, "corrupt", "an override of broken YAML", "model.channels=[1,", "model.channels=[1,"),
    C(VQT, "missing", "--config", "--config {tmp}/missing.yaml", "missing.yaml"),
    C(VQT, "corrupt", "--config of random bytes", "--config {bad}", "{bad}", garbage("preset.yaml")),
    C(VQT, "foreign", "--config a YAML list", "--config {bad}", "{bad}", text("preset.yaml", "- train\n- model\n")),
    C(VQT, "kind", "--config a FIFO", "--config {bad}", "{bad}", fifo()),
    C(VQT, "kind", "run.dir under a regular file", "run.dir={afile}/runs", "run.dir"),
    C(VQT, "missing", "data.path", "data.path={tmp}/missing", "missing"),
    C(VQT, "foreign", "a token dataset as frames", "data.path={tokens}", "{tokens}"),
    C(VQT, "truncated", "a frames shard", "data.path={bad}", "shard_00000.frames.npy", dataset("frames", cut("shard_00000.frames.npy"))),
    C(VQT, "corrupt", "a flipped byte in a frames shard", "data.path={bad}", "shard_00000.frames.npy", dataset("frames", flip_byte("shard_00000.frames.npy"))),
    # train.dynamics: config values over configs/tiny/dynamics.yaml (and the pixel baseline)
    C(DYN, "range", "train.seq_len=1", "train.seq_len=1", "train.seq_len"),
    C(DYN, "range", "train.ar_max=1.5", "train.ar_max=1.5", "train.ar_max"),
    C(DYN, "range", "train.token_noise=-0.1", "train.token_noise=-0.1", "train.token_noise"),
    C(DYN, "range", "train.hard_share=2", "train.hard_share=2", "train.hard_share"),
    C(DYN, "range", "train.gumbel_tau=0", "train.gumbel_tau=0", "train.gumbel_tau"),
    C(DYN, "range", "train.batch_size=0", "train.batch_size=0", "train.batch_size"),
    C(DYN, "range", "train.pixel_samples=0", "train.pixel_samples=0", "train.pixel_samples"),
    C(DYN, "range", "train.val_horizon=0", "train.val_horizon=0", "train.val_horizon"),
    C(DYN, "range", "train.change_weight=-2", "train.change_weight=-2", "train.change_weight"),
    C(DYN, "range", "model.hidden_dim=0", "model.hidden_dim=0", "model.hidden_dim"),
    C(DYN, "range", "model.memory=-1", "model.memory=-1", "model.memory"),
    C(DYN, "range", "model.layers=0", "model.layers=0", "model.layers"),
    C(DYN, "nan", "model.camera_warp=[.nan,1]", "model.camera_warp=[.nan,1]", "model.camera_warp[0]"),
    C(DYN, "foreign", "an unknown model.type", "model.type=transformer", "model.type"),
    C(DYN, "foreign", "a frames dataset as tokens", "data.path={frames}", "{frames}"),
    C(DYN, "range", "a token id beyond the codebook", "data.path={bad}", "shard_00001.tokens.npy", dataset("tokens", set_value("shard_00001.tokens.npy", (3, 1, 2), 125))),
    C(DYN, "range", "model.codebook_size that is not the data's", "model.codebook_size=1024", "model.codebook_size"),
    C(DYN, "corrupt", "tokenizer.path of random bytes", "tokenizer.path={bad}", "{bad}", garbage("tokenizer.pt")),
    C(DYN, "missing", "train.resume", "train.resume={tmp}/missing.pt", "missing.pt"),
    C(DYN, "corrupt", "train.resume of random bytes", "train.resume={bad}", "{bad}", garbage("train_state.pt")),
    C(DYN, "missing", "train.init_from", "train.init_from={tmp}/missing.pt", "missing.pt"),
    C(DYN, "nan", "train.init_from with NaN weights", "train.init_from={bad}", "{bad}", _nan_weight("dynamics")),
    C(DYN, "kind", "run.dir under a regular file", "run.dir={afile}/runs", "run.dir"),
    C(DYN, "range", "pixel baseline model.past_frames=0", "model.past_frames=0", "model.past_frames", base=PIXEL_FILM),
    C(DYN, "range", "pixel baseline train.motion_weight=-1", "train.motion_weight=-1", "train.motion_weight", base=PIXEL_FILM),
    # vqvae.tokenize: frames into tokens
    C(TOK, "range", "--batch 0", "--batch 0", "--batch"),
    C(TOK, "range", "--batch -1", "--batch -1", "--batch"),
    C(TOK, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(TOK, "missing", "--tokenizer", "--tokenizer {tmp}/missing.pt", "missing.pt"),
    C(TOK, "corrupt", "tokenizer of random bytes", "--tokenizer {bad}", "{bad}", garbage("tokenizer.pt")),
    C(TOK, "truncated", "tokenizer", "--tokenizer {bad}", "{bad}", truncated("tokenizer")),
    C(TOK, "nan", "a world with NaN tokenizer weights", "--tokenizer {bad}", "{bad}", _nan_weight("tokenizer")),
    C(TOK, "foreign", "a manifest.json as the tokenizer", "--tokenizer {frames}/manifest.json", "manifest.json"),
    C(TOK, "kind", "tokenizer from a FIFO", "--tokenizer {bad}", "{bad}", fifo()),
    C(TOK, "missing", "--data", "--data {tmp}/missing", "missing"),
    C(TOK, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(TOK, "truncated", "a frames shard", "--data {bad}", "shard_00001.frames.npy", dataset("frames", cut("shard_00001.frames.npy"))),
    C(TOK, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    # vqvae.evaluate: reconstruction quality
    C(VQE, "range", "--frames 0", "--frames 0", "--frames"),
    C(VQE, "range", "--val-every 0", "--split val --val-every 0", "--val-every"),
    C(VQE, "range", "--seed -1", "--seed -1", "--seed"),
    C(VQE, "corrupt", "tokenizer of random bytes", "--tokenizer {bad}", "{bad}", garbage("tokenizer.pt")),
    C(VQE, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(VQE, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(VQE, "kind", "LPIPS weights from a FIFO", "--lpips-weights {bad}", "{bad}", fifo()),
    # train.evaluate: the full evaluation report
    C(EVA, "range", "--context 0", "--context 0", "--context"),
    C(EVA, "range", "--horizon 0", "--horizon 0", "--horizon"),
    C(EVA, "range", "--windows 0", "--windows 0", "--windows"),
    C(EVA, "range", "--batch 0", "--batch 0", "--batch"),
    C(EVA, "range", "--stability-steps -1", "--stability-steps -1", "--stability-steps"),
    C(EVA, "range", "--idm-horizon 0", "--idm-horizon 0", "--idm-horizon"),
    C(EVA, "range", "--real-game-episodes -1", "--real-game-episodes -1", "--real-game-episodes"),
    C(EVA, "range", "--playtest-seeds -1", "--playtest-seeds -1", "--playtest-seeds"),
    C(EVA, "corrupt", "checkpoint of random bytes", "--checkpoint {bad}", "{bad}", garbage("world.pt")),
    C(EVA, "missing", "--data", "--data {tmp}/missing", "missing"),
    C(EVA, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(EVA, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(EVA, "corrupt", "IDM of random bytes", "--idm {bad}", "{bad}", garbage("idm.pt")),
    C(EVA, "corrupt", "baseline of random bytes", "--baseline {bad}", "{bad}", garbage("pixel_world.pt")),
    C(EVA, "foreign", "a world checkpoint as the baseline", "--baseline {world}", "{world}"),
    C(EVA, "kind", "--baseline and --train-baseline", "--baseline {world} --train-baseline {frames}", "--train-baseline"),
    C(EVA, "foreign", "an unknown play-test program", "--playtest-seeds 1 --playtest-programs fly", "fly"),
    # train.playtest: play tests beside the real game
    C(PLT, "range", "--seeds 0", "--seeds 0", "--seeds"),
    C(PLT, "range", "--temperature 0", "--temperature 0", "--temperature"),
    C(PLT, "range", "--top-k -1", "--top-k -1", "--top-k"),
    C(PLT, "range", "--context 0", "--context 0", "--context"),
    C(PLT, "corrupt", "checkpoint of random bytes", "--checkpoint {bad}", "{bad}", garbage("world.pt")),
    C(PLT, "foreign", "an unknown program", "--programs fly", "fly"),
    C(PLT, "missing", "--program-dir", "--program-dir {tmp}/missing", "missing"),
    C(PLT, "corrupt", "a program of broken JSON", "--program-dir {bad}", "stand.json", folder("programs", {"stand.json": b"{"})),
    C(PLT, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(PLT, "kind", "--gif under a regular file", "--gif {afile}/x.gif --gif-program stand_greedy", "--gif"),
    C(PLT, "foreign", "a --gif-program not played", "--gif {tmp}/x.gif --gif-program fly_greedy", "--gif-program"),
    C(PLT, "foreign", "an unknown sampling mode", "--sampling greedy,beam", "--sampling"),
    # train.stability: long open-loop rollouts
    C(STB, "range", "--steps 0", "--steps 0", "--steps"),
    C(STB, "range", "--every 0", "--every 0", "--every"),
    C(STB, "range", "--seed-index -1", "--seed-index -1", "--seed-index"),
    C(STB, "range", "--seed-index past the batch", "--seed-frames {seed_batch} --seed-index 5", "--seed-index"),
    C(STB, "kind", "an unknown policy", "--policies dance", "--policies"),
    C(STB, "corrupt", "seed .npz of random bytes", "--seed-frames {bad}", "{bad}", garbage("seed.npz")),
    C(STB, "kind", "seed frames from a FIFO", "--seed-frames {bad}", "{bad}", fifo()),
    C(STB, "shape", "seed frames 32x64", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES[:, :32])),
    C(STB, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    # live.play (headless): the app
    C(PLAY, "range", "--frames 0", "--frames 0", "--frames"),
    C(PLAY, "range", "--scale 0", "--scale 0", "--scale"),
    C(PLAY, "range", "--fps 0", "--fps 0", "--fps"),
    C(PLAY, "range", "--temperature 0", "--temperature 0", "--temperature"),
    C(PLAY, "range", "--top-k 0", "--top-k 0", "--top-k"),
    C(PLAY, "range", "--threads -1", "--threads -1", "--threads"),
    C(PLAY, "range", "--rewind-seconds -1", "--rewind-seconds -1", "--rewind-seconds"),
    C(PLAY, "range", "--context 0", "--context 0", "--context"),
    C(PLAY, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(PLAY, "corrupt", "checkpoint of random bytes", "--checkpoint {bad}", "{bad}", garbage("world.pt")),
    C(PLAY, "corrupt", "seed .npz of random bytes", "--seed-frames {bad}", "{bad}", garbage("seed.npz")),
    C(PLAY, "kind", "seed frames from a FIFO", "--seed-frames {bad}", "{bad}", fifo()),
    C(PLAY, "shape", "seed frames 32x64", "--seed-frames {bad}", "{bad}", npz(frames=FRAMES[:, :32])),
    C(PLAY, "missing", "a policy script", "--policy script {tmp}/missing.json", "missing.json"),
    C(PLAY, "range", "a policy script with action 15", "--policy script {bad}", "{bad}", json_file("moves.json", [1, 15])),
    C(PLAY, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(PLAY, "corrupt", "--keys of broken YAML", "--keys {bad}", "{bad}", text("keys.yaml", "a: [")),
    # live.record (headless): the real game into a dataset
    C(REC, "range", "--frames 0", "--frames 0", "--frames"),
    C(REC, "range", "--episodes -1", "--episodes -1", "--episodes"),
    C(REC, "range", "--scale 0", "--scale 0", "--scale"),
    C(REC, "range", "--fps 0", "--fps 0", "--fps"),
    C(REC, "range", "--seed -1", "--seed -1", "--seed"),
    C(REC, "foreign", "an unknown world", "--world coinrunn", "coinrunn"),
    C(REC, "range", "env num_levels -1", "--env num_levels=-1", "num_levels"),
    C(REC, "kind", "--out under a regular file", "--out {afile}/out", "--out"),
    C(REC, "kind", "--out is a regular file", "--out {afile}", "--out"),
    C(REC, "corrupt", "a policy script of broken JSON", "--policy script {bad}", "{bad}", text("moves.json", "[1,")),
    # train.idm: the inverse-dynamics classifier
    C(IDM, "range", "--steps 0", "--steps 0", "--steps"),
    C(IDM, "range", "--lr -1", "--lr -1", "--lr"),
    C(IDM, "nan", "--lr nan", "--lr nan", "--lr"),
    C(IDM, "range", "--channels 0 8", "--channels 0 8", "--channels"),
    C(IDM, "range", "--val-every 0", "--val-every 0", "--val-every"),
    C(IDM, "range", "--seed -1", "--seed -1", "--seed"),
    C(IDM, "range", "--windows 0", "--world {world} --eval-data {frames} --windows 0", "--windows"),
    C(IDM, "range", "--horizon 0", "--world {world} --eval-data {frames} --horizon 0", "--horizon"),
    C(IDM, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(IDM, "kind", "--out under a regular file", "--out {afile}/idm.pt", "--out"),
    C(IDM, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(IDM, "corrupt", "an IDM of random bytes", "--idm {bad}", "{bad}", garbage("idm.pt"), base=IDM_SCORE),
    # preprocess.seeds: seed files cut from a dataset
    C(SEE, "range", "--count 0", "--count 0", "--count"),
    C(SEE, "range", "--context 1", "--context 1", "--context"),
    C(SEE, "range", "--offset -1", "--offset -1", "--offset"),
    C(SEE, "range", "more seeds than episodes", "--count 999", "{frames}"),
    C(SEE, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(SEE, "missing", "--data", "--data {tmp}/missing", "missing"),
    C(SEE, "kind", "--out under a regular file", "--out {afile}/seeds.npz", "--out"),
    # preprocess.camera_gain: camera gain of a first-person dataset
    C(CAM, "range", "--episodes 0", "--episodes 0", "--episodes"),
    C(CAM, "range", "--steps 1", "--steps 1", "--steps"),
    C(CAM, "foreign", "a dataset without a camera", "", "{frames}"),
    C(CAM, "foreign", "a token dataset", "--data {tokens}", "{tokens}"),
    C(CAM, "missing", "--data", "--data {tmp}/missing", "missing"),
    # preprocess.bench: data generation rates
    C(PBN, "range", "--workers 0", "--workers 0", "--workers"),
    C(PBN, "range", "--num-envs 0", "--num-envs 0", "--num-envs"),
    C(PBN, "range", "--seconds 0", "--seconds 0", "--seconds"),
    C(PBN, "kind", "--out under a regular file", "--out {afile}/bench.json", "--out"),
    # vqvae.bench: tokenizer throughput
    C(VQB, "range", "--batch 0", "--batch 0", "--batch"),
    C(VQB, "range", "--repeats 0", "--repeats 0", "--repeats"),
    C(VQB, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(VQB, "corrupt", "tokenizer of random bytes", "--tokenizer {bad}", "{bad}", garbage("tokenizer.pt")),
    C(VQB, "missing", "--tokenizer", "--tokenizer {tmp}/missing.pt", "missing.pt"),
    C(VQB, "kind", "tokenizer from a FIFO", "--tokenizer {bad}", "{bad}", fifo()),
    # train.avatar: the play tests' avatar detector
    C(AVA, "range", "--steps 0", "--steps 0", "--steps"),
    C(AVA, "range", "--frames 0", "--frames 0", "--frames"),
    C(AVA, "range", "--seed -1", "--seed -1", "--seed"),
    C(AVA, "foreign", "a token dataset as frames", "--data {tokens}", "{tokens}"),
    C(AVA, "foreign", "a world without a learned avatar", "--world pong", "pong"),
    C(AVA, "kind", "--out under a regular file", "--out {afile}/avatar.pt", "--out"),
    # train.bench: training throughput
    C(TBN, "range", "--batch 0", "--batch 0", "--batch"),
    C(TBN, "range", "--seq-len 1", "--seq-len 1", "--seq-len"),
    C(TBN, "range", "--steps 0", "--steps 0", "--steps"),
    C(TBN, "range", "--warmup -1", "--warmup -1", "--warmup"),
    C(TBN, "range", "--pixel-weight -1", "--pixel-weight -1", "--pixel-weight"),
    C(TBN, "kind", "--device cuda without CUDA", "--device cuda", "--device", no_cuda=True),
    C(TBN, "kind", "--out under a regular file", "--out {afile}/bench.json", "--out"),
    # live.bench: live frame times
    C(LBN, "range", "--frames 0", "--frames 0", "--frames"),
    C(LBN, "range", "--fps 0", "--fps 0", "--fps"),
    C(LBN, "range", "--warmup -1", "--warmup -1", "--warmup"),
    C(LBN, "range", "--threads -1", "--threads -1", "--threads"),
    C(LBN, "corrupt", "checkpoint of random bytes", "--checkpoint {bad}", "{bad}", garbage("world.pt")),
    C(LBN, "kind", "seed frames from a FIFO", "--seed-frames {bad}", "{bad}", fifo()),
    C(LBN, "kind", "--out under a regular file", "--out {afile}/live.json", "--out"),
]  # fmt: skip
CATEGORIES = ("corrupt", "truncated", "foreign", "nan", "range", "shape", "kind", "missing")


def case_params(cases: list[Case]) -> list:
    params = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        marks += [pytest.mark.skipif(CUDA, reason="CUDA is available here")] if case.no_cuda else []
        params.append(pytest.param(case, id=f"{case.entry}: {case.category}: {case.what}", marks=marks))
    return params


@pytest.fixture(scope="module")
def goods(tmp_path_factory, tiny_world) -> Goods:
    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler

    batch = WindowSampler(EpisodeDataset(tiny_world["frames"]), 10, split="all").fixed(2)
    frames, actions = batch.rows.numpy(), batch.actions.numpy()
    d = tmp_path_factory.mktemp("goods")
    np.savez(d / "seed.npz", frames=frames[0, :4], actions=actions[0, :3])
    np.savez(d / "seed_batch.npz", frames=frames[:, :4], actions=actions[:, :3])
    np.save(d / "actions.npy", actions[0, 3:9])
    return Goods(
        tiny_world["world"], tiny_world["tokenizer"], tiny_world["frames"], tiny_world["tokens"],
        d / "seed.npz", d / "seed_batch.npz", d / "actions.npy",
    )  # fmt: skip


@dataclass(frozen=True)
class Resolved:
    argv: list[str]
    names: str
    out: Path


def resolve(case: Case, goods: Goods, tmp: Path) -> Resolved:
    """The case's argv and what its line must name, with its bad file made under `tmp`."""
    (tmp / "afile").write_text("a regular file where a folder or another kind of file belongs\n")
    values = {k: str(v) for k, v in vars(goods).items()} | {"out": str(tmp / "out"), "tmp": str(tmp), "afile": str(tmp / "afile")}
    if case.make is not None:
        values["bad"] = str(case.make(goods, tmp))
    argv = [part.format(**values) for part in f"{case.base or BASE[case.entry]} {case.args}".split()]
    return Resolved(argv, case.names.format(**values), tmp / "out")


def check_refused(code: int | str | None, stderr: str, names: str, out: Path) -> None:
    """Exit 2, a last line `error: ...` naming `names`, no traceback, nothing left in `out`."""
    lines = stderr.strip().splitlines()
    assert code == 2, f"exit status {code!r}, stderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), stderr[-3000:]
    assert "unrecognized arguments" not in lines[-1], f"the case's own arguments are wrong: {lines[-1]}"
    assert names in lines[-1], f"{names!r} not in {lines[-1]!r}"
    assert not out.exists() or not any(out.rglob("*")), f"{out} holds {sorted(p.name for p in out.rglob('*'))}"


@contextmanager
def bounded(seconds: int) -> Iterator[None]:
    """Fail a call that runs longer than `seconds` (a hang) instead of waiting for ever."""

    def hang(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def call_main(entry: str, argv: list[str], capsys) -> tuple[int | str | None, str]:
    """Run `entry`'s main(argv) in this process -> (exit status, stderr)."""
    module = importlib.import_module(entry.removesuffix(".py"))
    capsys.readouterr()
    with bounded(HANG_S), pytest.raises(SystemExit) as exit_:
        module.main(argv)
    return exit_.value.code, capsys.readouterr().err


@pytest.fixture
def kept_state(monkeypatch):
    """Entry points set torch's thread count and SDL's driver; put them back for the next case."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", case_params(CASES))
def test_a_bad_input_stops_with_one_line_and_leaves_nothing(case, goods, tmp_path, capsys, kept_state):
    bad = resolve(case, goods, tmp_path)
    code, stderr = call_main(case.entry, bad.argv, capsys)
    check_refused(code, stderr, bad.names, bad.out)


# The first case of each entry point and category, run again as a real command (python -m ...): the exit status,
# the last line and no traceback as a user sees them, and a hang bounded by a real timeout.
def first_of_each_kind(cases: list[Case]) -> list[Case]:
    first: dict[tuple[str, str], Case] = {}
    for case in cases:
        first.setdefault((case.entry, case.category), case)
    return list(first.values())


REAL = first_of_each_kind(CASES)


@pytest.mark.slow_faults
@pytest.mark.parametrize("case", case_params(REAL))
def test_a_bad_input_stops_the_real_command_too(case, goods, tmp_path):
    bad = resolve(case, goods, tmp_path)
    try:
        proc = run_module(case.entry, *bad.argv, check=False, timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {HANG_S} s: it hangs")
    check_refused(proc.returncode, proc.stderr, bad.names, bad.out)


MIXED = {  # recording name -> its damage, for the mixed batch below
    "b_video_of_random_bytes": {"video": b"\x00\x00\x00\x18ftypmp42 junk"},
    "c_video_cut_in_half": {"video": b""},
    "d_metadata_of_random_bytes": {"metadata": b"\xff\xfe{"},
    "e_no_rendered_npz": {"rendered": None},
    "f_camera_of_nan": {"camera": np.full((20, 2), np.nan)},
    "g_button_pressed_with_3": {"forward": np.full(20, 3)},
    "h_camera_of_3_columns": {"camera": np.zeros((20, 3))},
}


def test_a_mixed_batch_keeps_every_good_recording_and_names_every_bad_one(tmp_path, capsys, kept_state):
    from ochre.data.store import EpisodeDataset
    from preprocess.import_videos import main
    from tests.faults.corpus import minerl_recording

    src = tmp_path / "src"
    for name in ("a_good", "z_good"):
        minerl_recording(src, name)
    for name, damage in MIXED.items():
        minerl_recording(src, name, **damage)
    with bounded(HANG_S):
        main(["--format", "minerl", str(src), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert f"imported 2 recordings (32 frames) to {tmp_path / 'out'}; skipped {len(MIXED)}" in out, out
    assert all(f"{src / name}" in out for name in MIXED), out
    assert len(EpisodeDataset(tmp_path / "out").episodes()) == 2


def test_the_corpus_covers_every_entry_point_and_category():
    counts = Counter((c.entry, c.category) for c in CASES)
    assert len(CASES) >= 100 and set(BASE) == {c.entry for c in CASES}
    assert {c.category for c in CASES} == set(CATEGORIES)
    assert len({(c.entry, c.category, c.what) for c in CASES}) == len(CASES), "two cases share an id"
    assert all(sum(n for (e, _), n in counts.items() if e == entry) >= 4 for entry in BASE)


def corpus_table() -> str:
    """The README's table of the corpus: entry points down, categories across, case counts."""
    counts = Counter((c.entry, c.category) for c in CASES)
    head = ["entry point", *CATEGORIES, "all"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in BASE:
        cells = [str(counts[entry, cat] or "") for cat in CATEGORIES]
        rows.append(f"| `{entry}` | " + " | ".join(cells) + f" | {sum(counts[entry, cat] for cat in CATEGORIES)} |")
    totals = [str(sum(counts[e, cat] for e in BASE)) for cat in CATEGORIES]
    rows.append("| **all** | " + " | ".join(totals) + f" | **{len(CASES)}** |")
    return "\n".join(rows)


def test_the_readme_table_counts_the_corpus():
    readme = (Path(ROOT) / "README.md").read_text()
    assert corpus_table() in readme, "README's reliability table is out of date; paste tests.faults.test_corpus.corpus_table()"
