"""Train the ConvGRU/FiLM dynamics model on a token dataset; writes a world checkpoint.

python -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=data/coinrun_train_tokens train.max_steps=3000
"""

from __future__ import annotations

from ochre.config import config_from_argv
from ochre.errors import cli_entry
from ochre.training.dynamics import DynamicsTrainConfig, train_dynamics


@cli_entry
def main(argv: list[str] | None = None) -> None:
    train_dynamics(config_from_argv(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", argv, __doc__))


if __name__ == "__main__":
    main()
