"""Running a recipe: each stage as a subprocess of its entry point, skipped when its output is complete and sound,
resumed when it was interrupted, logged into one run folder with a generated card section.

    recipe = load_recipe("configs/tiny/recipe.yaml")
    RecipeRun(recipe).run(until="")       # <run>/logs/<stage>.log, <run>/recipe_state.json, <run>/card.md

What "complete" means, per kind of stage (`check_output`):
- dataset: manifest.json says complete, was generated with this stage's arguments (frames, seed, world, ...), and
  every shard passes `EpisodeDataset.verify_once` (sha256 once per state);
  a rerun of `preprocess.generate` re-plays damaged or missing shards, so an unfinished dataset is simply run again;
- tokens: the same, and made by this stage's tokenizer (its sha256) from this stage's frames;
- trainer: the final checkpoint loads and checks (format, config, shapes, finite weights) at train.max_steps, or at
  the stage's stop_at; an unfinished run goes on with train.resume=<stage>/checkpoints/train_state.pt;
- report, file: the output parses; copy: the copy's sha256 is the source's.
A stage is also redone when its command changed or a stage it reads was redone after it (recipe_state.json
records both); an old output inside the run folder is moved to <run>/replaced/, one outside it is never touched.
A dataset made again with the same shards (sha256) as before does not count as redone: generation is seeded, so a
run folder moved to another machine without its frames (`ochre.recipe_pack`) makes them again and goes on.
A finished trainer whose checkpoint is gone is not redone while every stage it started (train.init_from or
train.resume) is finished or resumes from its own training state: nothing reads that checkpoint any more.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ochre.errors import OchreError
from ochre.io import atomic_path, load_torch, sha256_file, write_json, write_text
from ochre.recipe import Recipe, Stage, same_work
from ochre.recipe_card import card_markdown, format_wall

STATE = "recipe_state.json"


@dataclass(frozen=True)
class Check:
    """What a stage's output is now: done, or not (and then, for a trainer, the step its training state reached)."""

    done: bool
    detail: str  # one line for the log and the card: sizes, steps, or what is missing
    resume_from: int = 0  # trainers: step of train_state.pt, 0 when there is none
    foreign: bool = False  # the output exists but was made from other inputs: it cannot be finished, only replaced


def check_output(stage: Stage) -> Check:
    checks = {"dataset": check_dataset, "tokens": check_tokens, "trainer": check_trainer, "copy": check_copy}
    return checks.get(stage.kind, check_file)(stage)


def check_dataset(stage: Stage) -> Check:
    from ochre.data.store import MANIFEST, EpisodeDataset

    if not (Path(stage.out) / MANIFEST).is_file():
        return Check(False, f"{stage.out}: no dataset yet")
    try:
        data = EpisodeDataset(stage.out)
        if mismatch := generator_mismatch(stage, data.manifest):  # before hashing shards that are not the stage's
            return Check(False, f"{stage.out}: generated with {mismatch}", foreign=True)
        data.verify_once(progress=False)
    except OchreError as err:
        return Check(False, str(err))
    if not data.manifest.get("complete", True):
        return Check(False, f"{stage.out}: {data.num_frames:,} frames so far, unfinished")
    size = sum(f.stat().st_size for f in Path(stage.out).glob("shard_*.npy"))
    return Check(True, f"{data.num_frames:,} frames, {len(data.episodes()):,} episodes, {size / 1e6:,.1f} MB")


def generator_mismatch(stage: Stage, manifest: dict[str, Any]) -> str:
    """For a `preprocess.generate` stage, the first of its arguments the dataset was generated otherwise with
    ("--frames 6000, this stage asks for 20000"); empty when they agree or the manifest does not say."""
    made = (manifest.get("source") or {}).get("generator")
    if stage.run != "preprocess.generate" or not isinstance(made, dict):
        return ""
    for flag, wanted in stage.args.items():
        key = flag.replace("-", "_")
        if key not in made:
            continue
        value = made[key].get("kind") if key == "policy" and isinstance(made[key], dict) else made[key]
        nested = isinstance(value, dict) or isinstance(wanted, dict)  # env settings compare as dicts, flags as text
        if (value != wanted) if nested else str(value) != str(wanted):
            return f"--{flag} {value}, this stage asks for {wanted}"
    return ""


def check_tokens(stage: Stage) -> Check:
    check = check_dataset(stage)
    if not (Path(stage.out) / "manifest.json").is_file():
        return check
    made = json.loads((Path(stage.out) / "manifest.json").read_text())
    tokenizer, frames = str(stage.args.get("tokenizer", "")), str(stage.args.get("data", ""))
    same = made.get("frames_dataset") == frames and Path(tokenizer).is_file()
    if not same or made.get("tokenizer", {}).get("sha256") != sha256_file(tokenizer):
        return Check(
            False, f"{stage.out}: made by another tokenizer or from other frames than {tokenizer} on {frames}", foreign=True
        )
    return check


def check_trainer(stage: Stage) -> Check:
    product, state = stage.product, Path(stage.out) / "checkpoints" / "train_state.pt"
    resume_from = train_state_step(state)
    target = stage.stop_at or max_steps(stage)
    if not product.is_file():
        return Check(False, f"{product}: not written yet", resume_from)
    try:
        step = load_product(product)
    except OchreError as err:
        return Check(False, str(err), resume_from)
    if target and step < target:
        return Check(False, f"{product}: step {step} of {target}", resume_from)
    return Check(True, f"step {step:,}" + (f" (stopped at {stage.stop_at:,})" if stage.stop_at else ""))


def output_digest(stage: Stage) -> str:
    """A dataset's or token set's content, as one sha256 over its manifest's shard hashes; empty for other kinds."""
    manifest = Path(stage.out) / "manifest.json"
    if stage.kind not in ("dataset", "tokens") or not manifest.is_file():
        return ""
    shards = json.loads(manifest.read_text()).get("shards") or []
    hashes = [shard.get("sha256") for shard in shards]
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


START_KEYS = ("train.init_from", "train.resume")  # a stage reads these once, to start from


def references(reader: Stage, stage: Stage) -> list[str]:
    """The keys (overrides, flags, `from`) through which `reader` names `stage`'s output."""
    names = re.compile(re.escape(str(stage.out)) + r"(?=$|[/'\"\s,}\]])")  # the folder itself or a file in it
    named = {**reader.overrides, **reader.args, "from": reader.source}
    return [key for key, value in named.items() if names.search(str(value))]


def load_product(path: Path) -> int:
    """Load and check a trainer's final checkpoint (config, weights' shapes, finiteness); -> its step."""
    payload = load_torch(path)
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == "ochre-tokenizer":
        from ochre.checkpoint import load_tokenizer

        load_tokenizer(path)
    elif fmt == "ochre-world":
        from ochre.runtime import WorldModel

        WorldModel.load(path, device="cpu")
    elif fmt == "ochre-pixel-world":
        from ochre.pixel_world import PixelWorld

        PixelWorld.load(path, device="cpu")
    else:
        raise OchreError(f"{path}: not a checkpoint of this project (format {fmt!r})")
    return int(payload.get("step", 0))


def train_state_step(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        saved = load_torch(path, "training state")
    except OchreError:
        return 0
    return int(saved.get("step", 0)) if isinstance(saved, dict) else 0


def max_steps(stage: Stage) -> int:
    """train.max_steps of a trainer stage: its override, else its preset's, else what its run folder resolved."""
    if "train.max_steps" in stage.overrides:
        return int(stage.overrides["train.max_steps"])
    for file in (Path(stage.config) if stage.config else None, Path(stage.out) / "resolved_config.yaml"):
        settings = yaml.safe_load(file.read_text()) if file and file.is_file() else None
        steps = ((settings or {}).get("train") or {}).get("max_steps")
        if steps:
            return int(steps)
    return 0


def check_copy(stage: Stage) -> Check:
    out, source = Path(stage.out), Path(stage.source)
    if not out.is_file():
        return Check(False, f"{out}: not copied yet")
    if not source.is_file() or sha256_file(out) != sha256_file(source):
        return Check(False, f"{out}: differs from {source}")
    return Check(True, f"{out.stat().st_size / 1e6:.1f} MB")


def check_file(stage: Stage) -> Check:
    """Reports (their summary file parses), files (.pt, .npz, .json load) and notes (never 'done' by themselves)."""
    if stage.kind == "note":
        return Check(False, "")
    path = stage.product
    if stage.kind == "report":
        from ochre.recipe import STAGE_KINDS

        path = path / STAGE_KINDS[stage.run].product
    if not path.is_file():
        return Check(False, f"{path}: not written yet")
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            np.load(path).files  # noqa: B018 (reading the index is the check)
        else:
            load_torch(path, "file")
    except (OchreError, ValueError, OSError) as err:
        return Check(False, f"{path}: unreadable ({err})")
    return Check(True, f"{path.name}")


class RecipeRun:
    """One recipe's run folder: its state file, logs and card, and the stages run into it."""

    def __init__(self, recipe: Recipe):
        self.recipe, self.dir = recipe, recipe.run_dir
        self.state: dict[str, Any] = {"seq": 0, "stages": {}}
        if (self.dir / STATE).is_file():
            try:
                self.state = json.loads((self.dir / STATE).read_text())
            except json.JSONDecodeError:
                raise OchreError(f"{self.dir / STATE}: not valid JSON; delete it (outputs are checked again)") from None

    def run(self, until: str = "") -> Path:
        """Run (or skip) every stage up to `until`; -> the card's path."""
        stages = self.recipe.upto(until)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text(self.dir / "recipe.yaml", yaml.safe_dump(self.recipe.raw, sort_keys=False))
        card = self.dir / "card.md"

        def write_card() -> None:
            write_text(card, card_markdown(self.recipe, self.state["stages"], stages))

        try:
            for stage in stages:
                self.step(stage)
                write_card()  # after every stage, so a killed run keeps the card of what it did
        finally:  # a failed or interrupted run still leaves it too
            write_card()
        print(f"card section: {card}")
        return card

    def step(self, stage: Stage) -> None:
        record = self.state["stages"].get(stage.name)
        changed = record is not None and not same_work(record.get("command", ""), stage.display())
        stale = record is not None and any(self.seq(dep) > self.since(record) for dep in stage.needs)
        check = check_output(stage)
        adoptable = record is None and stage.kind in ("tokens", "trainer", "copy")
        if check.done and not changed and not stale and (adoptable or (record or {}).get("done")):
            print(f"[recipe] {stage.name}: complete, skipped ({check.detail})")
            if record is None:
                self.record(stage, {"done": True, "wall_s": None, "detail": check.detail, "adopted": True})
            return
        if (record or {}).get("done") and not changed and not stale and not stage.product.exists() and self.spent(stage):
            print(f"[recipe] {stage.name}: complete, skipped (its checkpoint is gone; every stage it started goes on without it)")
            return
        extra: tuple[str, ...] = ()
        if changed or stale or check.foreign:
            why = (
                "its command changed" if changed else "a stage it reads was redone" if stale else "it was made from other inputs"
            )
            self.set_aside(stage, why)
        elif stage.kind == "trainer" and check.resume_from:
            extra = (f"train.resume={Path(stage.out) / 'checkpoints' / 'train_state.pt'}",)
            if (start := stage.overrides.get("train.init_from")) and not Path(str(start)).is_file():
                extra += ("train.init_from=",)  # spent (see `spent`): the training state holds the weights
            print(f"[recipe] {stage.name}: resuming from step {check.resume_from:,}")
        elif stage.kind in ("trainer", "report") and Path(stage.out).exists() and self.holds(Path(stage.out)):
            self.set_aside(stage, "it was interrupted before it saved anything to resume from")
        self.execute(stage, extra, check.resume_from if extra else 0)

    def spent(self, stage: Stage) -> bool:
        """Whether a finished trainer's checkpoint is read by no stage that still has to start: every stage that reads
        it reads it only to start from (train.init_from, train.resume) and is finished or resumes from its own state."""
        if stage.kind != "trainer":
            return False
        readers = [s for s in self.recipe.stages if stage.name in s.needs]
        return bool(readers) and all(self.started_without(reader, stage) for reader in readers)

    def started_without(self, reader: Stage, stage: Stage) -> bool:
        if any(key not in START_KEYS for key in references(reader, stage)):
            return False  # it reads the checkpoint (or the run folder) as data, every time it runs
        if float(reader.overrides.get("train.hard_share", 0) or 0) > 0:
            return False  # a resumed run scores its windows with the init_from world again
        record = self.state["stages"].get(reader.name) or {}
        if not same_work(record.get("command", ""), reader.display()):
            return False
        return bool(record.get("done")) or train_state_step(Path(reader.out) / "checkpoints" / "train_state.pt") > 0

    def holds(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.dir.resolve())

    def seq(self, name: str) -> int:
        return int(self.state["stages"].get(name, {}).get("seq", 0))

    def since(self, record: dict[str, Any]) -> int:
        """The newest finished stage this stage's output already reflects: its own seq when it finished, the newest
        seq when it started when it was interrupted (a record from before `after` was kept: the newest now)."""
        if record.get("done"):
            return int(record.get("seq", 0))
        return int(record.get("after", self.state["seq"]))

    def set_aside(self, stage: Stage, why: str) -> None:
        out = Path(stage.out)
        if not out.exists():
            return
        if not self.holds(out):
            raise OchreError(
                f"{out}: holds an earlier output of stage {stage.name} and {why}; delete it, "
                f"or write this one elsewhere with --override {stage.name}.out=<path>"
            )
        spare = self.dir / "replaced" / f"{stage.name}_{time.strftime('%Y%m%d_%H%M%S')}"
        spare.parent.mkdir(parents=True, exist_ok=True)
        out.rename(spare)
        print(f"[recipe] {stage.name}: {why}; the earlier output is kept in {spare}")

    def execute(self, stage: Stage, extra: tuple[str, ...], resumed_from: int) -> None:
        print(f"[recipe] {stage.name}: {stage.display(extra)}", flush=True)
        before = dict(self.state["stages"].get(stage.name) or {})
        self.record(stage, {"done": False, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "after": self.state["seq"]})
        t0 = time.time()
        if stage.kind == "copy":
            copy_file(Path(stage.source), Path(stage.out))
        else:
            run_logged(stage, stage.argv(extra), self.dir / "logs" / f"{stage.name}.log")
        wall = time.time() - t0
        check = check_output(stage)
        if stage.kind != "note" and not check.done:
            raise OchreError(f"stage {stage.name} ended but its output is not complete: {check.detail}; see {self.log(stage)}")
        detail = check.detail or last_line(self.log(stage))
        digest = output_digest(stage)
        entry = {"done": True, "wall_s": round(wall, 1), "detail": detail}
        if digest and digest == before.get("digest") and before.get("seq"):
            print(f"[recipe] {stage.name}: made again the same as before (sha256), so the stages that read it stand")
            entry |= {"seq": int(before["seq"]), "wall_s": before.get("wall_s"), "remade_s": round(wall, 1)}
        else:
            self.state["seq"] += 1
            entry["seq"] = self.state["seq"]
        entry |= {"digest": digest} if digest else {}
        self.record(stage, entry | ({"resumed_from": resumed_from} if resumed_from else {}))
        print(f"[recipe] {stage.name}: done in {format_wall(wall)} ({detail})")

    def log(self, stage: Stage) -> Path:
        return self.dir / "logs" / f"{stage.name}.log"

    def record(self, stage: Stage, entry: dict[str, Any]) -> None:
        old = self.state["stages"].get(stage.name, {})
        keep = {k: old[k] for k in ("started", "seq") if k in old}
        self.state["stages"][stage.name] = keep | {"command": stage.display(), "run": stage.run} | entry
        write_json(self.dir / STATE, self.state)


def run_logged(stage: Stage, argv: list[str], log: Path) -> None:
    """Run `argv`, its output to the console and to `log`; stop it at the stage's stop_at step; raise on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as sink:
        sink.write(f"$ {stage.display()}\n")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        copier = threading.Thread(target=tee, args=(proc.stdout, sink), daemon=True)
        copier.start()
        stopped, watch = False, StepWatch(Path(stage.out) / "checkpoints" / "train_state.pt")
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if stage.stop_at and watch.step() >= stage.stop_at:
                    proc.terminate()  # the checkpoint of stop_at is on disk; the schedule kept train.max_steps
                    stopped = True
                    proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        copier.join(timeout=5)
    if proc.returncode != 0 and not stopped:
        raise OchreError(
            f"stage {stage.name} failed (exit {proc.returncode}): {last_line(log)}; "
            f"its log: {log}; fix it and run the recipe again (finished stages are kept, this one resumes)"
        )


class StepWatch:
    """The step of a training state file, read again only when the file changes."""

    def __init__(self, path: Path):
        self.path, self.seen, self.last = path, (0, 0), 0

    def step(self) -> int:
        try:
            stat = self.path.stat()
        except OSError:
            return self.last
        if (stat.st_mtime_ns, stat.st_size) != self.seen:
            self.seen, self.last = (stat.st_mtime_ns, stat.st_size), train_state_step(self.path)
        return self.last


def tee(stream: Any, sink: Any) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        sink.write(line)
        sink.flush()


def copy_file(source: Path, out: Path) -> None:
    if not source.is_file():
        raise OchreError(f"{source}: nothing to copy (the stage that writes it has not finished)")
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)


def last_line(log: Path) -> str:
    if not log.is_file():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
