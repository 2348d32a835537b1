"""A recipe's run packed into one archive, to go on with it on another machine (or after a session lost its disk).

    python -m train.recipe configs/pong/recipe.yaml --pack pong_run.tar.xz      # here
    python -m train.recipe configs/pong/recipe.yaml --unpack pong_run.tar.xz    # there; then run the recipe as usual

What goes in: recipe_state.json, card.md and the logs; every token set (they compress well); each finished
trainer's final checkpoint, and the training state of one that is unfinished, with their small text files (config,
metrics); every report, copy and file. What stays out:
- frame datasets: their stages make them again from the same seed, and the recipe checks the new shards' sha256
  against the digest packed with their record, so the stages that read them stand (`RecipeRun.execute`);
- trainer checkpoints that only started stages now finished or resumable (`RecipeRun.spent`): nothing reads them;
- the rest of a trainer's folder: samples, videos and images.
Members are named run/<path in the run folder>, or out/<stage>/<path> for an output the recipe puts elsewhere
(a dataset folder under data/), so the same recipe and overrides put every file back where it was.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ochre.errors import OchreError
from ochre.io import atomic_path
from ochre.recipe import Recipe, Stage
from ochre.recipe_run import STATE, RecipeRun, output_digest

TEXT = (".json", ".jsonl", ".yaml", ".md", ".txt", ".log", ".csv")  # a trainer's small files, kept beside its weights
COMPRESSION = {".gz": "gz", ".tgz": "gz", ".xz": "xz", ".bz2": "bz2", ".tar": ""}


@dataclass
class Pack:
    """What one archive holds: (file on disk, member name) pairs, and the outputs left out with why."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def add(self, path: Path, member: str) -> None:
        if path.is_file():
            self.files.append((path, member))
        elif path.is_dir():
            self.files += [(f, f"{member}/{f.relative_to(path).as_posix()}") for f in sorted(path.rglob("*")) if f.is_file()]


def pack_run(recipe: Recipe, archive: str | Path) -> Path:
    """Write the archive of `recipe`'s run folder (see the module doc); -> its path."""
    archive, mode = Path(archive), compression(Path(archive))
    run = RecipeRun(recipe)
    if not (run.dir / STATE).is_file():
        raise OchreError(f"{run.dir / STATE}: no run of {recipe.path} to pack here (run the recipe first, or pass --run-dir)")
    pack, state = Pack(), run.state  # add_stage writes the digests into its records; the file on disk stays as it is
    for name in ("card.md", "recipe.yaml", "logs"):
        pack.add(run.dir / name, f"run/{name}")
    for stage in recipe.stages:
        record = state["stages"].get(stage.name)
        if record is not None:
            add_stage(pack, run, stage, record)
    payload = (json.dumps(state, indent=2) + "\n").encode()
    with atomic_path(archive) as tmp, tarfile.open(tmp, f"w:{mode}".rstrip(":")) as tar:
        for path, member in pack.files:
            tar.add(path, arcname=member, recursive=False)
        info = tarfile.TarInfo(f"run/{STATE}")
        info.size, info.mtime = len(payload), int(time.time())
        tar.addfile(info, io.BytesIO(payload))
    size, packed = sum(path.stat().st_size for path, _ in pack.files) + len(payload), archive.stat().st_size
    print(f"[recipe] packed {len(pack.files) + 1} files ({size / 1e6:,.1f} MB) into {archive} ({packed / 1e6:,.1f} MB)")
    for line in pack.left_out:
        print(f"[recipe] left out: {line}")
    return archive


def add_stage(pack: Pack, run: RecipeRun, stage: Stage, record: dict) -> None:
    out, member = Path(stage.out), member_name(run, stage)
    if stage.kind == "dataset":
        if digest := output_digest(stage):
            record.setdefault("digest", digest)  # so the frames made again there are known for the same ones
        pack.left_out.append(f"{stage.name}: {out} (its stage makes the frames again from the same seed)")
    elif stage.kind == "tokens":
        if record.get("done") and (digest := output_digest(stage)):
            record.setdefault("digest", digest)
            pack.add(out, member)
    elif stage.kind == "trainer":
        pack.files += [(f, f"{member}/{f.relative_to(out).as_posix()}") for f in sorted(out.glob("*")) if f.suffix in TEXT]
        if not record.get("done"):
            pack.add(out / "checkpoints" / "train_state.pt", f"{member}/checkpoints/train_state.pt")
        elif run.spent(stage):
            pack.left_out.append(f"{stage.name}: {stage.product} (only the stages it started read it; they go on without it)")
        else:
            pack.add(stage.product, f"{member}/{stage.product.relative_to(out).as_posix()}")
    elif stage.kind != "note":
        pack.add(out, member)


def member_name(run: RecipeRun, stage: Stage) -> str:
    out = Path(stage.out)
    if run.holds(out):
        return "run/" + out.resolve().relative_to(run.dir.resolve()).as_posix()
    return f"out/{stage.name}"


def compression(archive: Path) -> str:
    if archive.suffix not in COMPRESSION:
        raise OchreError(f"{archive}: name the archive .tar, .tar.gz, .tar.xz or .tar.bz2 (the suffix picks the compression)")
    return COMPRESSION[archive.suffix]


def unpack_run(recipe: Recipe, archive: str | Path) -> None:
    """Put every file of a packed run back where `recipe` (with the same overrides) keeps it; never over a run."""
    archive = Path(archive)
    if not archive.is_file():
        raise OchreError(f"{archive}: no such archive (make one with --pack on the machine that holds the run)")
    if (recipe.run_dir / STATE).is_file():
        raise OchreError(
            f"{recipe.run_dir}: already holds a run of {recipe.path}; move it away or unpack into another one with --run-dir"
        )
    names = {stage.name: stage for stage in recipe.stages}
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        targets = [target(m.name, recipe, names, archive) for m in members]
        for path in {t.parent for t in targets}:
            path.mkdir(parents=True, exist_ok=True)
        for member, path in zip(members, targets, strict=True):
            with tar.extractfile(member) as source, atomic_path(path) as tmp:
                tmp.write_bytes(source.read())
    print(f"[recipe] unpacked {len(members)} files from {archive} into {recipe.run_dir}; run the recipe to go on")


def target(name: str, recipe: Recipe, stages: dict[str, Stage], archive: Path) -> Path:
    parts = PurePosixPath(name).parts
    if ".." in parts or PurePosixPath(name).is_absolute() or len(parts) < 2 or parts[0] not in ("run", "out"):
        raise OchreError(f"{archive}: member {name!r} is not one --pack writes; unpack only archives made by --pack")
    if parts[0] == "run":
        return recipe.run_dir.joinpath(*parts[1:])
    if parts[1] not in stages:
        raise OchreError(f"{archive}: holds the output of stage {parts[1]!r}, which {recipe.path} has not; pass the same recipe")
    return Path(stages[parts[1]].out).joinpath(*parts[2:])
