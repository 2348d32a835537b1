"""Tokenizer throughput: frames per second for encode, decode, and encode + decode.

python -m vqvae.bench --tokenizer checkpoints/coinrun.pt            # batch 64, this machine's threads
python -m vqvae.bench --tokenizer checkpoints/coinrun.pt --device cuda --batch 256

--tokenizer takes a tokenizer checkpoint or a world checkpoint. Each figure is the
median over `--repeats` timed batches after warm-up, in inference mode.
"""

from __future__ import annotations

import statistics

import torch

from ochre.benchmark import step_times
from ochre.checkpoint import load_tokenizer_or_world
from ochre.cli import ArgumentParser, input_file, known_device, positive_int
from ochre.device import resolve_device
from ochre.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--tokenizer", type=input_file, default="checkpoints/coinrun.pt", help="tokenizer or world checkpoint")
    p.add_argument("--batch", type=positive_int, default=64, help="frames per batch")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed batches")
    p.add_argument("--device", type=known_device, default="cpu", help="cpu | cuda | auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    model = load_tokenizer_or_world(args.tokenizer).to(device).eval()
    h, w = model.cfg.frame_size
    x = torch.rand(args.batch, 3, h, w, device=device) * 2 - 1
    with torch.inference_mode():
        tokens, _ = model.encode(x)
        calls = {
            "encode": lambda: model.encode(x),
            "decode": lambda: model.decode_tokens(tokens),
            "encode+decode": lambda: model.decode_tokens(model.encode(x)[0]),
        }
        # 3 warm-up calls: allocator, kernels, caches
        timings = {name: statistics.median(step_times(fn, args.repeats, 3, device)) for name, fn in calls.items()}
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"tokenizer {args.tokenizer}: {h}x{w} -> {model.cfg.token_grid}, batch {args.batch}, {device}, threads {threads}")
    for name, seconds in timings.items():
        print(f"  {name:14s} {args.batch / seconds:9.0f} frames/s  ({seconds * 1000:.1f} ms per batch)")


if __name__ == "__main__":
    main()
