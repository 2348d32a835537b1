"""Train the frame tokenizer.

python -m vqvae.train --config configs/coinrun/vqvae.yaml data.path=data/coinrun_train train.max_steps=2000

Data-parallel over several GPUs (DDP; a step sees train.batch_size x processes frames, the
VQ codebook's statistics are gathered over them, rank 0 alone writes the run folder):

torchrun --nproc_per_node 8 -m vqvae.train --config configs/coinrun/vqvae.yaml data.path=data/coinrun_train
"""

from __future__ import annotations

from ochre.config import config_from_argv
from ochre.errors import cli_entry
from ochre.training.tokenizer import TokenizerTrainConfig, train_tokenizer


@cli_entry
def main(argv: list[str] | None = None) -> None:
    train_tokenizer(config_from_argv(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", argv, __doc__))


if __name__ == "__main__":
    main()
