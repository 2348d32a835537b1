"""Encode a frame dataset into a token dataset (uint16 grids, same actions and episodes).

python -m vqvae.tokenize --tokenizer runs/<run>/checkpoints/tokenizer.pt --data data/coinrun_train --out data/coinrun_train_tokens

--tokenizer may also be a world checkpoint: its tokenizer encodes the frames, and `train.dynamics`
reads the same file back from the tokens' manifest.
"""

from __future__ import annotations

from ochre.checkpoint import load_tokenizer_or_world
from ochre.cli import ArgumentParser, input_file, input_path, known_device, positive_int, writable_dir
from ochre.data.tokenize import tokenize_dataset
from ochre.device import resolve_device
from ochre.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--tokenizer",
        type=input_file,
        required=True,
        help="tokenizer checkpoint from vqvae.train, or a world checkpoint (its tokenizer)",
    )
    p.add_argument("--data", type=input_path, required=True, help="frame dataset folder")
    p.add_argument("--out", type=writable_dir, required=True, help="output token dataset folder")
    p.add_argument("--batch", type=positive_int, default=256, help="frames per encoder batch")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    args = p.parse_args(argv)
    model = load_tokenizer_or_world(args.tokenizer)
    device = str(resolve_device(args.device))
    manifest = tokenize_dataset(model, args.tokenizer, args.data, args.out, args.batch, device)
    print(f"wrote {manifest['num_frames']} token grids {manifest['token_grid']} to {args.out}")


if __name__ == "__main__":
    main()
