"""Train the ConvGRU/FiLM dynamics model on a token dataset; writes a world checkpoint.

python -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=data/coinrun_train_tokens train.max_steps=3000
"""

from __future__ import annotations

import argparse

from ochre.config import load_config
from ochre.errors import cli_entry
from ochre.training.dynamics import DynamicsTrainConfig, train_dynamics


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/coinrun/dynamics.yaml", help="YAML preset")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=5")
    args = p.parse_args(argv)
    train_dynamics(load_config(DynamicsTrainConfig, args.config, args.overrides))


if __name__ == "__main__":
    main()
