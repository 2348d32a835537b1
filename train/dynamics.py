"""Train the ConvGRU/FiLM dynamics model on a token dataset; writes a world checkpoint.

python -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=data/coinrun_train_tokens train.max_steps=3000

Data-parallel (PyTorch DDP) over several GPUs: torchrun starts one process per GPU,
each takes train.batch_size windows per step (one step sees batch_size x processes),
gradients are averaged and rank 0 alone writes the run folder:

torchrun --nproc_per_node 8 -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=...

Several machines: the same command on each, with the node count, the node's index
and one reachable host:port for the rendezvous (data.path must exist on every node;
the run folder is written on node 0):

torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint host:29500 -m train.dynamics ...

On CPU the processes use gloo (set OMP_NUM_THREADS, or train.threads, per process);
train.dist_backend overrides the backend. Resume with train.resume under the same
number of processes.
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
