"""Roll out a world with an exploration policy into a sharded dataset: parallel, deterministic, resumable.

The dataset is planned before anything runs: shard i holds `shard_frames` frames
(the last one the remainder), played by `num_envs` envs and a policy seeded from
(seed, i). A shard's content depends only on the job and its index, so it comes
out the same with any number of workers and on any rerun.

Workers write each shard's files atomically; only the parent writes the
manifest, adding a shard once all its files are on disk. Killing a run loses at
most the shards in progress: running the same command again finds the job in
`generate.json`, checks the finished shards against their sha256, keeps the
sound ones untouched and plays the rest, damaged or missing ones included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing as mp
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ochre.config import from_dict, to_dict
from ochre.data.integrity import verify_dataset
from ochre.data.policies import ExplorationPolicy, PolicyConfig
from ochre.data.store import FORMAT_VERSION, MANIFEST, read_manifest
from ochre.envs.worlds import frame_shape, make_env, make_vec_env, world_kind, world_settings
from ochre.errors import OchreError
from ochre.io import save_npy, sha256_file, write_json

JOB_FILE = "generate.json"


@dataclass
class GenerateJob:
    """Everything that decides a generated dataset's content."""

    world: str
    frames: int
    env: dict[str, Any] = field(default_factory=dict)  # world settings overrides (see ochre.envs.worlds)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    num_envs: int = 16
    seed: int = 0
    shard_frames: int = 20_000
    max_episode_frames: int = 0  # > 0: restart all envs on fresh episodes every this many steps

    def check(self) -> None:
        world_settings(self.world, self.env)
        self.policy.check()
        for name in ("frames", "num_envs", "shard_frames"):
            if getattr(self, name) < 1:
                raise OchreError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def num_shards(self) -> int:
        return -(-self.frames // self.shard_frames)

    def shard_size(self, index: int) -> int:
        return min(self.shard_frames, self.frames - index * self.shard_frames)


def seed_for(*parts: int) -> int:
    """A 31-bit seed derived from (job seed, shard, ...), independent across parts."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] % (2**31 - 1))


class ShardWriter:
    """Streams finished episodes into one shard's files.

    A shard's frame count is known in advance, so the frames file is written
    episode by episode under a temporary name and hashed as it goes, on a
    background thread (file writes and hashing release the GIL, so the game keeps
    stepping meanwhile). `close()` renames every file into place and returns the
    shard's manifest entry.
    """

    def __init__(self, root: Path, index: int, num_frames: int, frame_shape: tuple[int, ...], action_shape: tuple[int, ...]):
        self.root, self.index, self.name = root, index, f"shard_{index:05d}"
        self.num_frames = num_frames
        self.files = {key: f"{self.name}.{key}.npy" for key in ("frames", "actions", "episodes")}
        self._tmp = root / f".{self.files['frames']}.tmp"
        self._file = open(self._tmp, "wb")  # noqa: SIM115  (closed in close())
        self._digest = hashlib.sha256()
        self._io = ThreadPoolExecutor(max_workers=1)  # one thread keeps the episodes in order
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": (num_frames, *frame_shape)}
        )
        self._pending = [self._io.submit(self._write, header.getvalue())]
        self.actions = np.zeros((num_frames, *action_shape), dtype=np.int64)
        self.episodes = np.zeros(num_frames, dtype=np.int64)
        self.rows = self.num_episodes = 0

    def _write(self, data: bytes | np.ndarray) -> None:
        self._file.write(data)
        self._digest.update(data)

    def add(self, frames: list[np.ndarray], actions: list[np.ndarray]) -> None:
        end = self.rows + len(frames)
        self._pending.append(self._io.submit(self._write, np.stack(frames)))
        self.actions[self.rows : end] = actions
        self.episodes[self.rows : end] = self.num_episodes
        self.rows, self.num_episodes = end, self.num_episodes + 1

    def close(self) -> dict[str, Any]:
        for future in self._pending:
            future.result()  # re-raises a failed write
        self._io.shutdown()
        self._file.close()
        if self.rows != self.num_frames:
            raise RuntimeError(f"{self.name}: {self.rows} of {self.num_frames} rows written")
        self._tmp.replace(self.root / self.files["frames"])
        save_npy(self.root / self.files["actions"], self.actions)
        save_npy(self.root / self.files["episodes"], self.episodes)
        sha = {"frames": self._digest.hexdigest()}
        sha |= {key: sha256_file(self.root / self.files[key]) for key in ("actions", "episodes")}
        return {
            "name": self.name,
            "index": self.index,
            "num_frames": self.rows,
            "num_episodes": self.num_episodes,
            "files": self.files,
            "sha256": sha,
        }


def play_shard(job: GenerateJob, index: int, root: Path, progress: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Play shard `index` of `job` and write it under `root`; returns its manifest entry.

    Episodes still open when the frame budget runs out (or at a `max_episode_frames`
    restart) are kept as truncated episodes.
    """
    settings = world_settings(job.world, job.env)
    target = job.shard_size(index)
    num = min(job.num_envs, target)
    vec = make_vec_env(job.world, settings, num, seed=seed_for(job.seed, index, 0))
    policy = ExplorationPolicy(job.policy, vec.action_spec, num, np.random.default_rng([job.seed, index, 1]))
    writer = ShardWriter(root, index, target, frame_shape(job.world, settings), vec.action_spec.shape)
    frames: list[list[np.ndarray]] = [[] for _ in range(num)]
    actions: list[list[np.ndarray]] = [[] for _ in range(num)]

    def close_episode(i: int) -> None:
        if frames[i]:
            writer.add(frames[i], actions[i])
        frames[i], actions[i] = [], []

    obs, first = vec.observe()
    recorded = steps = chunk = 0
    while recorded < target:
        if job.max_episode_frames and steps == job.max_episode_frames:
            for i in range(num):
                close_episode(i)
            chunk, steps = chunk + 1, 0
            vec.restart(seed_for(job.seed, index, chunk))
            obs, first = vec.observe()
            first[:] = True
        for i in np.flatnonzero(first):
            policy.episode_started(int(i))
        act = policy.act(obs)
        take = min(num, target - recorded)  # the last step may record only some envs
        for i in range(take):
            frames[i].append(obs[i])
            actions[i].append(act[i])
        vec.act(act)
        obs, first = vec.observe()
        for i in np.flatnonzero(first):
            close_episode(int(i))
        recorded, steps = recorded + take, steps + 1
        progress(take)
    for i in range(num):
        close_episode(i)
    vec.close()
    return writer.close()


def _shard_task(job_dict: dict[str, Any], root: str, index: int, queue: Any) -> dict[str, Any]:
    """Worker entry: play and write one shard, reporting frames to `queue` in batches."""
    job = job_from_dict(job_dict)
    pending = [0]

    def report(n: int) -> None:
        pending[0] += n
        if pending[0] >= 1000:
            queue.put(pending[0])
            pending[0] = 0

    entry = play_shard(job, index, Path(root), report)
    queue.put(pending[0])
    return entry


def job_from_dict(data: dict[str, Any]) -> GenerateJob:
    return from_dict(GenerateJob, data)


class _Manifest:
    """The parent's view of the dataset: finished shards, written out after each one."""

    def __init__(self, root: Path, job: GenerateJob, meta: dict[str, Any], progress: bool = False):
        self.root, self.job, self.meta = root, job, meta
        self.shards: dict[int, dict[str, Any]] = {}
        self.replay: dict[int, str] = {}  # finished shard -> a line saying what is wrong with it (it is played again)
        if (root / MANIFEST).is_file():
            self._keep_sound_shards(progress)

    def _keep_sound_shards(self, progress: bool) -> None:
        """Keep the listed shards whose files pass the sha256 check; note the others for re-playing."""
        try:
            listed = read_manifest(self.root)
        except OchreError as err:
            print(f"{err}; re-playing every shard")
            return
        damaged: dict[str, str] = {}
        for d in verify_dataset(self.root, listed, progress).damage:
            damaged.setdefault(d.shard, f"{d.file}: {d.problem}")
        for shard in listed["shards"]:
            if shard["name"] in damaged:
                self.replay[shard["index"]] = damaged[shard["name"]]
            else:
                self.shards[shard["index"]] = shard

    @property
    def num_frames(self) -> int:
        return sum(s["num_frames"] for s in self.shards.values())

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.shards[entry["index"]] = entry
        return self.write()

    def write(self) -> dict[str, Any]:
        shards = [self.shards[i] for i in sorted(self.shards)]
        manifest = {
            "format": "ochre-dataset",
            "format_version": FORMAT_VERSION,
            "kind": "frames",
            **self.meta,
            "complete": len(shards) == self.job.num_shards,
            "num_frames": sum(s["num_frames"] for s in shards),
            "num_episodes": sum(s["num_episodes"] for s in shards),
            "shards": shards,
        }
        write_json(self.root / MANIFEST, manifest)
        return manifest


def check_disjoint_levels(job: GenerateJob, other: str | Path) -> None:
    """Raise unless `job` plays Procgen levels that the dataset at `other` never saw."""
    source = read_manifest(other).get("source", {})
    settings = source.get("settings", {})
    if source.get("env") != "procgen" or world_kind(job.world) != "procgen":
        raise OchreError(f"{other}: level ranges can only be compared between procgen datasets")
    mine = world_settings(job.world, job.env)
    a0, a1 = mine.start_level, mine.start_level + mine.num_levels
    b0, b1 = settings["start_level"], settings["start_level"] + settings["num_levels"]
    if a0 < b1 and b0 < a1:
        raise OchreError(
            f"levels {a0}-{a1 - 1} overlap {other}'s levels {b0}-{b1 - 1}; "
            f"pass --env start_level={b1} (or higher) for held-out data"
        )


def _start_job(root: Path, job: GenerateJob) -> None:
    """Record the job, or check that a rerun asks for the same one."""
    wanted = to_dict(job)
    file = root / JOB_FILE
    if file.is_file():
        try:
            saved = json.loads(file.read_text())
        except json.JSONDecodeError:
            raise OchreError(f"{file}: not valid JSON; delete {root} and rerun to generate it afresh") from None
        if saved != wanted:
            changed = sorted(k for k in wanted.keys() | saved.keys() if wanted.get(k) != saved.get(k))
            raise OchreError(
                f"{root}: holds a dataset generated with other settings (differs in: {', '.join(changed)}); "
                f"rerun with the same arguments to resume, or choose another --out"
            )
    elif (root / MANIFEST).exists():
        raise OchreError(f"{root}: a dataset already exists here; choose another --out or delete it")
    else:
        write_json(file, wanted)


def generate(out: str | Path, job: GenerateJob, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Generate (or finish generating) `job` into `out`; returns the manifest."""
    job.check()
    settings = world_settings(job.world, job.env)
    probe = make_env(job.world, settings)  # an env that cannot be made stops here, before --out exists
    spec, fps = probe.action_spec, probe.fps
    probe.close()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    _start_job(root, job)
    meta = {
        "world": job.world,
        "action_schema": spec.to_dict(),
        "frame_shape": list(frame_shape(job.world, settings)),
        "fps": fps,
        "source": {"env": world_kind(job.world), "settings": dataclasses.asdict(settings), "generator": to_dict(job)},
    }
    manifest = _Manifest(root, job, meta, progress)
    for index, problem in sorted(manifest.replay.items()):
        print(f"{problem}; re-playing shard_{index:05d}")
    todo = [i for i in range(job.num_shards) if i not in manifest.shards]
    bar = tqdm(total=job.frames, initial=manifest.num_frames, desc=f"generate {job.world}", unit="frame", disable=not progress)
    if workers <= 1 or len(todo) <= 1:
        for index in todo:
            manifest.add(play_shard(job, index, root, bar.update))
    else:
        _run_pool(root, job, todo, workers, manifest, bar)
    bar.close()
    return manifest.write()


def _run_pool(root: Path, job: GenerateJob, todo: list[int], workers: int, manifest: _Manifest, bar: tqdm) -> None:
    """Shards in `workers` processes; each finished shard enters the manifest at once."""
    ctx = mp.get_context("spawn")  # game engines do not survive fork reliably
    with ctx.Manager() as sync, ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
        queue = sync.Queue()
        drain = threading.Thread(target=_drain, args=(queue, bar), daemon=True)
        drain.start()
        futures = [pool.submit(_shard_task, to_dict(job), str(root), i, queue) for i in todo]
        try:
            for future in as_completed(futures):
                manifest.add(future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            queue.put(None)
            drain.join()


def _drain(queue: Any, bar: tqdm) -> None:
    while (n := queue.get()) is not None:
        bar.update(n)
