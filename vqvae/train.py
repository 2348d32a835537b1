"""Train the frame tokenizer.

python -m vqvae.train --config configs/coinrun/vqvae.yaml data.path=data/coinrun_train train.max_steps=2000
"""

from __future__ import annotations

import argparse

from ochre.config import load_config
from ochre.errors import cli_entry
from ochre.training.tokenizer import TokenizerTrainConfig, train_tokenizer


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/coinrun/vqvae.yaml", help="YAML preset")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=5")
    args = p.parse_args(argv)
    train_tokenizer(load_config(TokenizerTrainConfig, args.config, args.overrides))


if __name__ == "__main__":
    main()
