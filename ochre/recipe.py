"""Recipes: a world's whole chain of commands in one YAML file, each stage a run of an existing entry point.

    recipe = load_recipe("configs/coinrun/recipe.yaml", overrides=["dynamics.train.max_steps=10"])
    for stage in recipe.stages:
        print(stage.display())                      # python -m train.dynamics --config ... run.dir=... run.name=dynamics

A recipe file (see configs/new_game/recipe.yaml for a commented one):

    name: coinrun                      # names the run folder (runs/world_<name>) and the card
    run_dir: runs/world_coinrun        # optional: the one folder every stage writes into
    vars: {data: data}                 # optional: {data} in any string below; {run} is the run folder
    stages:
      - name: train_data               # {train_data} in a later stage is this stage's output
        run: preprocess.generate       # an entry point (STAGE_KINDS), or `copy`
        args: {world: coinrun, frames: 200000, env: {start_level: 0}}   # flags: --world coinrun --env start_level=0
        out: "{data}/coinrun_train"
      - name: tokenizer
        run: vqvae.train
        config: configs/coinrun/vqvae.yaml
        overrides: {data.path: "{train_data}", train.max_steps: 3000}
        stop_at: 1000                  # optional, trainers: stop at this checkpointed step (the schedule keeps max_steps)
      - name: tokenizer_more           # {tokenizer} is a trainer's final checkpoint, {tokenizer.state} its train_state.pt
        run: vqvae.train
        config: configs/coinrun/vqvae.yaml
        overrides: {data.path: "{train_data}", train.resume: "{tokenizer.state}", train.max_steps: 4000}
    card:                              # optional: numbers for the card section, compared with the card's
      - {label: "PSNR mean 1-32, gray 84x84", stage: evaluate, file: summary.json, key: model/gray84/mean_psnr,
         card: 18.68, tolerance: 0.5}

Trainer stages write their run folder at <run>/<stage name> (run.dir and run.name are set
by the recipe); every other stage names its output with `out`. Errors in the file are one
line naming the file, the field and the fix.
"""

from __future__ import annotations

import re
import shlex
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ochre.errors import OchreError

Kind = Literal["dataset", "tokens", "trainer", "report", "file", "note", "copy"]


@dataclass(frozen=True)
class StageKind:
    """How the runner treats one entry point: what it writes and how that output is checked."""

    kind: Kind
    product: str = ""  # trainers: the final checkpoint in <stage>/checkpoints/; reports: the file that proves it finished


STAGE_KINDS: dict[str, StageKind] = {
    "preprocess.generate": StageKind("dataset"),
    "vqvae.tokenize": StageKind("tokens"),
    "vqvae.train": StageKind("trainer", "tokenizer.pt"),
    "train.dynamics": StageKind("trainer", "world.pt"),
    "vqvae.evaluate": StageKind("report", "summary.json"),
    "train.evaluate": StageKind("report", "summary.json"),
    "train.playtest": StageKind("report", "playtest.json"),
    "train.stability": StageKind("report", "stability.json"),
    "train.compare": StageKind("report", "results.json"),
    "train.idm": StageKind("file"),
    "preprocess.seeds": StageKind("file"),
    "preprocess.camera_gain": StageKind("note"),
    "copy": StageKind("copy"),
}
STAGE_KEYS = {"name", "run", "args", "config", "overrides", "out", "stop_at", "from", "note"}
TOP_KEYS = {"name", "run_dir", "vars", "stages", "card"}
CARD_KEYS = {"label", "stage", "file", "key", "card", "tolerance"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Stage:
    """One stage, its strings already filled in ({run}, vars, earlier stages' outputs)."""

    name: str
    run: str
    args: dict[str, Any] = field(default_factory=dict)
    config: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    out: str = ""  # the stage's output: a dataset folder, report folder or file; trainers: their run folder
    stop_at: int = 0
    source: str = ""  # copy: the file copied to `out`
    note: str = ""  # a line for the card (what the stage stands for)
    needs: tuple[str, ...] = ()  # earlier stages whose output this one reads

    @property
    def kind(self) -> Kind:
        return STAGE_KINDS[self.run].kind

    @property
    def product(self) -> Path:
        """The file or folder whose presence and soundness say the stage finished."""
        if self.kind == "trainer":
            name = "pixel_world.pt" if self.model_type() == "pixel_film" else STAGE_KINDS[self.run].product
            return Path(self.out) / "checkpoints" / name
        return Path(self.out)

    def model_type(self) -> str:
        if "model.type" in self.overrides:
            return str(self.overrides["model.type"])
        preset = yaml.safe_load(Path(self.config).read_text()) if self.config else None
        return str(((preset or {}).get("model") or {}).get("type", ""))

    def argv(self, extra: tuple[str, ...] = ()) -> list[str]:
        """The command as an argument list (python -m <run> ...); `extra`: more dotted overrides (train.resume)."""
        if self.kind == "copy":
            return ["cp", self.source, self.out]
        cmd = [sys.executable, "-m", self.run]
        if self.kind == "trainer":
            cmd += ["--config", self.config] if self.config else []
            over = {**self.overrides, "run.dir": str(Path(self.out).parent), "run.name": Path(self.out).name}
            return cmd + [f"{k}={render(v)}" for k, v in over.items()] + list(extra)
        for flag, value in {**self.args, **({"out": self.out} if self.out and self.kind != "note" else {})}.items():
            cmd += flag_args(flag, value)
        return cmd

    def display(self, extra: tuple[str, ...] = ()) -> str:
        """The command as a user would type it."""
        argv = self.argv(extra)
        return shlex.join(["python", *argv[1:]] if argv[0] == sys.executable else argv)


# Settings that change how fast a stage runs, not what it makes: a stage run again with other values of these
# (more threads, another device, more workers) is the same stage, so its finished output is kept.
PACE_OVERRIDES = ("train.threads", "train.device")
PACE_FLAGS = ("--threads", "--device", "--workers")


def same_work(a: str, b: str) -> bool:
    """Whether two stage commands (as `Stage.display` writes them) make the same output: equal once the settings
    in PACE_OVERRIDES and PACE_FLAGS are left out."""
    return _work(a) == _work(b)


def _work(command: str) -> list[str]:
    out, skip = [], False
    for word in shlex.split(command):
        if skip:
            skip = False
        elif word in PACE_FLAGS:
            skip = True  # the flag's value follows it
        elif word.split("=", 1)[0] not in PACE_OVERRIDES + PACE_FLAGS:
            out.append(word)
    return out


@dataclass(frozen=True)
class CardNumber:
    """A number for the card: read from a stage's JSON output, beside the value the world's card gives."""

    label: str
    stage: str
    file: str
    key: str
    card: float | None = None
    tolerance: float | None = None


@dataclass
class Recipe:
    path: Path
    name: str
    run_dir: Path
    stages: list[Stage]
    card: list[CardNumber]
    raw: dict[str, Any]  # the file after --override, before its strings were filled in

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def upto(self, until: str) -> list[Stage]:
        """The stages to run with --until `until` (all of them when empty)."""
        if not until:
            return self.stages
        names = [s.name for s in self.stages]
        if until not in names:
            raise OchreError(f"--until {until}: no such stage in {self.path} (stages: {', '.join(names)})")
        return self.stages[: names.index(until) + 1]


def render(value: Any) -> str:
    """A value as a dotted override or flag writes it: lists compact (`[0.59,0.92]`), booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(render(v) for v in value) + "]"
    return str(value)


def flag_args(flag: str, value: Any) -> list[str]:
    """One `args` entry as flags: true -> --flag, false/None -> nothing, a mapping -> --flag k=v per key, a list ->
    --flag a b."""
    name = f"--{flag}"
    if value is True:
        return [name]
    if value is False or value is None:
        return []
    if isinstance(value, dict):
        return [part for k, v in value.items() for part in (name, f"{k}={render(v)}")]
    if isinstance(value, list):
        return [name, *(render(v) for v in value)]
    return [name, render(value)]


def load_recipe(path: str | Path, overrides: list[str] = (), run_dir: str = "") -> Recipe:
    """Read, override, check and fill in a recipe; every problem is one line naming the file, the field and the fix."""
    path = Path(path)
    raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item, path)
    check_top(raw, path)
    run = Path(run_dir or raw.get("run_dir") or f"runs/world_{raw['name']}")
    values: dict[str, str] = {"run": str(run)}
    for key, value in (raw.get("vars") or {}).items():
        values[key] = fill(str(value), values, path, f"vars.{key}")
    stages: list[Stage] = []
    for i, spec in enumerate(raw["stages"]):
        stage = build_stage(spec, i, values, path, run)
        stage.needs = tuple(n for n in stage.needs if n in {s.name for s in stages})
        values[stage.name] = str(stage.product)
        if stage.kind == "trainer":  # {name.state}: its train_state.pt, for a stage that continues the run exactly
            values[f"{stage.name}.state"] = str(Path(stage.out) / "checkpoints" / "train_state.pt")
        stages.append(stage)
    card = [check_card(entry, i, stages, path) for i, entry in enumerate(raw.get("card") or [])]
    return Recipe(path, raw["name"], run, stages, card, raw)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise OchreError(f"{path}: recipe file not found (recipes live at configs/<world>/recipe.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise OchreError(f"{path}: not valid YAML{line}; fix the syntax there") from None
    if not isinstance(raw, dict):
        raise OchreError(f"{path}: a recipe is a mapping with 'name' and 'stages'; see configs/new_game/recipe.yaml")
    return raw


def apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    """`stage.key=value` (a trainer's dotted config key, a flag, or out / stop_at / config), or `vars.key=value`."""
    target, eq, text = item.partition("=")
    head, dot, key = target.partition(".")
    if not eq or not dot or not key:
        raise OchreError(f"--override {item}: write STAGE.KEY=VALUE, e.g. dynamics.train.max_steps=500 or vars.data=data")
    value = yaml.safe_load(text) if text else ""
    if head == "vars":
        raw.setdefault("vars", {})[key] = value
        return
    stages = raw.get("stages") if isinstance(raw.get("stages"), list) else []
    spec = next((s for s in stages if isinstance(s, dict) and s.get("name") == head), None)
    if spec is None:
        names = ", ".join(str(s.get("name")) for s in stages if isinstance(s, dict))
        raise OchreError(f"--override {item}: {path} has no stage '{head}' (stages: {names})")
    if key in STAGE_KEYS - {"name", "args", "overrides"}:
        spec[key] = value
    elif STAGE_KINDS.get(spec.get("run"), StageKind("note")).kind == "trainer":
        spec.setdefault("overrides", {})[key] = value
    else:
        flag, _, sub = key.partition(".")
        args = spec.setdefault("args", {})
        if sub:
            args.setdefault(flag, {})[sub] = value
        else:
            args[flag] = value


def check_top(raw: dict[str, Any], path: Path) -> None:
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise OchreError(f"{path}: unknown field '{unknown[0]}'; a recipe has {', '.join(sorted(TOP_KEYS))}")
    if not isinstance(raw.get("name"), str) or not NAME.match(raw["name"]):
        raise OchreError(f"{path}: field 'name' must be a lower-case world name such as coinrun (it names the run folder)")
    if not isinstance(raw.get("vars", {}) or {}, dict):
        raise OchreError(f"{path}: field 'vars' must be a mapping of names to strings, e.g. vars: {{data: data}}")
    if not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise OchreError(f"{path}: field 'stages' must be a non-empty list of stages (name, run, ...)")
    names = [s.get("name") if isinstance(s, dict) else None for s in raw["stages"]]
    for i, name in enumerate(names):
        if not isinstance(name, str) or not NAME.match(name) or name in ("run", *(raw.get("vars") or {})):
            raise OchreError(f"{path}: stages[{i}].name must be a lower-case identifier not used by vars or 'run' (got {name!r})")
        if name in names[:i]:
            raise OchreError(f"{path}: stages[{i}].name '{name}' is used twice; give each stage its own name")


def build_stage(spec: dict[str, Any], i: int, values: dict[str, str], path: Path, run: Path) -> Stage:
    where = f"stages[{i}] ({spec['name']})"
    unknown = sorted(set(spec) - STAGE_KEYS)
    if unknown:
        raise OchreError(f"{path}: {where}.{unknown[0]} is not a stage field; use {', '.join(sorted(STAGE_KEYS))}")
    if spec.get("run") not in STAGE_KINDS:
        raise OchreError(
            f"{path}: {where}.run: {spec.get('run')!r} is not a stage the recipe runs; use one of {', '.join(STAGE_KINDS)}"
        )
    kind = STAGE_KINDS[spec["run"]].kind
    for key in ("args", "overrides"):
        if not isinstance(spec.get(key) or {}, dict):
            raise OchreError(f"{path}: {where}.{key} must be a mapping, e.g. {key}: {{frames: 1000}}")
    if kind == "trainer" and spec.get("args"):
        raise OchreError(f"{path}: {where}.args: a trainer takes its settings as 'overrides' (dotted config keys), not flags")
    if kind != "trainer" and (spec.get("overrides") or spec.get("config") or spec.get("stop_at")):
        raise OchreError(f"{path}: {where}: 'config', 'overrides' and 'stop_at' are for trainers; give {spec['run']} 'args'")
    if kind in ("dataset", "tokens", "report", "file", "copy") and not isinstance(spec.get("out"), str):
        raise OchreError(
            f'{path}: {where}.out is missing: name the folder or file this stage writes, e.g. out: "{{run}}/{spec["name"]}"'
        )
    if kind == "copy" and not isinstance(spec.get("from"), str):
        raise OchreError(f'{path}: {where}.from is missing: the file to copy, e.g. from: "{{dynamics}}"')
    stop_at = spec.get("stop_at") or 0
    if not isinstance(stop_at, int) or stop_at < 0:
        raise OchreError(f"{path}: {where}.stop_at must be a whole number of steps (a multiple of train.checkpoint_every)")
    needs: list[str] = []

    def filled(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return fill(value, values, path, f"{where}.{key}", needs)
        if isinstance(value, dict):
            return {k: filled(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v, key) for v in value]
        return value

    config = filled(spec.get("config") or "", "config")
    if config and not Path(config).is_file():
        raise OchreError(f"{path}: {where}.config: {config} not found; give a preset file, e.g. configs/tiny/dynamics.yaml")
    out = filled(spec["out"], "out") if kind not in ("trainer", "note") else str(run / spec["name"])
    if kind == "note" and spec.get("out"):
        raise OchreError(f"{path}: {where}.out: {spec['run']} writes no output; remove 'out'")
    return Stage(
        spec["name"],
        spec["run"],
        filled(dict(spec.get("args") or {}), "args"),
        config,
        filled(dict(spec.get("overrides") or {}), "overrides"),
        out,
        stop_at,
        filled(spec.get("from") or "", "from"),
        str(spec.get("note") or ""),
        tuple(dict.fromkeys(needs)),
    )


def fill(text: str, values: dict[str, str], path: Path, where: str, needs: list[str] | None = None) -> str:
    """`text` with {name} replaced by a var, {run}, an earlier stage's output or {stage.state} (a trainer's
    train_state.pt); names the stages it used in `needs`."""
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError:
        raise OchreError(f"{path}: {where}: unbalanced braces in {text!r}; write {{name}} for a reference") from None
    out = []
    for literal, name, _, _ in pieces:
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            known = ", ".join(values)
            raise OchreError(f"{path}: {where}: {{{name}}} is neither a var nor an earlier stage; use one of {known}")
        if needs is not None:
            needs.append(name.split(".")[0])
        out.append(values[name])
    return "".join(out)


def check_card(entry: Any, i: int, stages: list[Stage], path: Path) -> CardNumber:
    where = f"card[{i}]"
    if not isinstance(entry, dict) or not {"label", "stage", "file", "key"} <= set(entry):
        raise OchreError(f"{path}: {where} must be a mapping with label, stage, file and key (and optional card, tolerance)")
    unknown = sorted(set(entry) - CARD_KEYS)
    if unknown:
        raise OchreError(f"{path}: {where}.{unknown[0]} is not a card field; use {', '.join(sorted(CARD_KEYS))}")
    if entry["stage"] not in {s.name for s in stages}:
        raise OchreError(f"{path}: {where}.stage '{entry['stage']}' is not a stage of this recipe")
    for key in ("card", "tolerance"):
        if entry.get(key) is not None and not isinstance(entry[key], int | float):
            raise OchreError(f"{path}: {where}.{key} must be a number (the card's value, or how far from it is noise)")
    return CardNumber(**{k: entry.get(k) for k in CARD_KEYS})
