"""Make a world from its recipe: every stage's command in order, into one run folder with a card section.

    python -m train.recipe configs/coinrun/recipe.yaml                 # make world WORLD=coinrun
    python -m train.recipe configs/new_game/recipe.yaml --override vars.env_id=MountainCar-v0
    python -m train.recipe configs/pong/recipe.yaml --dry-run          # print the commands, run nothing
    python -m train.recipe configs/tiny/recipe.yaml --until tokenize --override dynamics.train.max_steps=8

A recipe (configs/<world>/recipe.yaml; configs/new_game/recipe.yaml explains the format) lists
the stages: data, held-out data, tokenizer, tokenize, dynamics stages with their overrides,
baselines, evaluation, play tests, and the card's numbers. Each stage runs as a subprocess of
its entry point (preprocess.generate, vqvae.train, vqvae.tokenize, train.dynamics,
train.evaluate, train.playtest, ...); its output goes into the run folder (runs/world_<name>
unless the recipe or --run-dir says otherwise), its log to <run>/logs/<stage>.log.

Run it again at any time: stages whose outputs are complete and sound are skipped, an
interrupted stage resumes (a trainer from its train_state.pt, generation re-plays the shards
it lacks), and <run>/card.md is written again with every command, data size, wall time and
result, and the card's numbers beside this run's.

To go on elsewhere (another machine, one with a GPU), `--pack run.tar.xz` writes what the rest
of the recipe needs, without frames or spent checkpoints; `--unpack run.tar.xz` there, with the
same recipe and overrides, puts it back; then run the recipe as usual (ochre/recipe_pack.py).
"""

from __future__ import annotations

from ochre.cli import ArgumentParser, input_file
from ochre.errors import cli_entry
from ochre.recipe import load_recipe


def parse_args(argv: list[str] | None):
    p = ArgumentParser(description=__doc__)
    p.add_argument("recipe", type=input_file, help="recipe file, e.g. configs/coinrun/recipe.yaml")
    p.add_argument("--until", default="", metavar="STAGE", help="stop after this stage")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands and run nothing")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="STAGE.KEY=VALUE",
        help="change one stage (a trainer's dotted config key, a flag, out or stop_at) or vars.NAME=VALUE (repeatable)",
    )
    p.add_argument("--run-dir", default="", help="the run folder (default: the recipe's run_dir, or runs/world_<name>)")
    moves = p.add_mutually_exclusive_group()
    moves.add_argument("--pack", default="", metavar="ARCHIVE", help="pack the run to go on elsewhere (.tar.xz, .tar.gz, .tar)")
    moves.add_argument("--unpack", default="", metavar="ARCHIVE", help="put a packed run in place, then stop")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    recipe = load_recipe(args.recipe, args.override, args.run_dir)
    stages = recipe.upto(args.until)
    if args.dry_run:
        print(f"# {recipe.path}: {len(stages)} stages into {recipe.run_dir}")
        for stage in stages:
            print(f"# {stage.name}" + (f" (stopped at step {stage.stop_at})" if stage.stop_at else ""))
            print(stage.display())
        return
    if args.pack or args.unpack:
        from ochre.recipe_pack import pack_run, unpack_run

        if args.pack:
            pack_run(recipe, args.pack)
        else:
            unpack_run(recipe, args.unpack)
        return
    from ochre.recipe_run import RecipeRun  # imports torch; a dry run does not need it

    RecipeRun(recipe).run(args.until)


if __name__ == "__main__":
    main()
