"""Put seed contexts from a dataset into a world checkpoint, so the world plays from its file alone.

    python -m train.seeds --checkpoint checkpoints/coinrun.pt --data data/coinrun_heldout --val-every 0

Cuts --count clips of --context frames (and the actions between them) from different
episodes of --data (its validation episodes, every --val-every-th; 0 takes every episode,
for a held-out dataset), every other one at an episode's start and the rest in its
middle, and writes them into the checkpoint in place (atomically), replacing any it held.
A token or latent dataset is decoded with the checkpoint's own tokenizer. Trainers do
this themselves at save time; this is for checkpoints written before that. Afterwards
`live.play --checkpoint C`, `inference.py --checkpoint C --out DIR` and
`gymnasium.make("ochre/World-v0", checkpoint=C)` need no seed file.
"""

from __future__ import annotations

from ochre.checkpoint import add_seed_contexts, load_tokenizer_or_world
from ochre.cli import ArgumentParser, input_file, input_path, int_range, nonneg_int, positive_int
from ochre.data.store import EpisodeDataset
from ochre.errors import cli_entry
from ochre.seed_contexts import CONTEXT, COUNT, seed_contexts, tokenizer_decoder


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, required=True, help="world (or pixel world) checkpoint, rewritten in place")
    p.add_argument("--data", type=input_path, required=True, help="a dataset of this world: frames, tokens or latents")
    p.add_argument("--count", type=positive_int, default=COUNT, help="clips, each from another episode")
    p.add_argument("--context", type=int_range(2), default=CONTEXT, help="frames per clip K (at least 2)")
    p.add_argument("--val-every", type=nonneg_int, default=10, help="clips from every n-th episode; 0 = any episode")
    args = p.parse_args(argv)
    data = EpisodeDataset(args.data)
    decode = tokenizer_decoder(load_tokenizer_or_world(args.checkpoint)) if data.kind != "frames" else None
    seeds = seed_contexts(data, args.context, args.val_every, decode, args.count)
    add_seed_contexts(args.checkpoint, seeds, data.action_spec)
    print(f"{args.checkpoint}: {len(seeds)} seed contexts of {args.context} frames from {args.data} ({seeds.source['split']})")


if __name__ == "__main__":
    main()
