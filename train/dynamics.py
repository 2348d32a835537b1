"""Train a dynamics model; writes a world checkpoint.

python -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=data/coinrun_train_tokens train.max_steps=3000

model.type picks the model: `convgru` (default; the ConvGRU/FiLM token dynamics,
trained on a token dataset, writes world.pt) or `pixel_film` (the pixel-space FiLM
baseline of the pixel world model report, trained on a frame dataset, writes
pixel_world.pt for `python -m train.evaluate --baseline`):

python -m train.dynamics --config configs/coinrun/pixel_film.yaml data.path=data/coinrun_train

`latent_gru` (the deterministic latent predictor) and `latent_flow` (the rectified-flow
world) train on a latent dataset (`vqvae.tokenize` with a continuous tokenizer) and
write world.pt, which `ochre.WorldModel` plays like a token world:

python -m train.dynamics --config configs/coinrun/latent_flow.yaml data.path=data/coinrun_play_latents

Data-parallel (PyTorch DDP, convgru) over several GPUs: torchrun starts one process
per GPU, each takes train.batch_size windows per step (one step sees batch_size x
processes), gradients are averaged and rank 0 alone writes the run folder:

torchrun --nproc_per_node 8 -m train.dynamics --config configs/coinrun/dynamics.yaml data.path=...

Several machines: the same command on each, with the node count, the node's index
and one reachable host:port for the rendezvous (data.path must exist on every node;
the run folder is written on node 0):

torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint host:29500 -m train.dynamics ...

On CPU the processes use gloo (set OMP_NUM_THREADS, or train.threads, per process);
train.dist_backend overrides the backend. train.resume continues a run on any number
of processes: ranks the saved run had go on with their random streams, new ranks start
fresh ones. model.type=pixel_film, latent_gru and latent_flow train in one process only.

--help lists the config keys of the model type the preset and overrides pick, e.g.
python -m train.dynamics --config configs/coinrun/latent_flow.yaml --help
"""

from __future__ import annotations

from ochre.config import load_config, peek, preset_args
from ochre.errors import ConfigError, cli_entry
from ochre.training.dynamics import train_dynamics
from ochre.training.dynamics_config import DynamicsTrainConfig
from ochre.training.latent_config import LatentFlowTrainConfig, LatentGRUTrainConfig
from ochre.training.latent_dynamics import train_latent_dynamics
from ochre.training.pixel_film import PixelFiLMTrainConfig, train_pixel_film

MODEL_TYPES = {
    "convgru": (DynamicsTrainConfig, train_dynamics),
    "pixel_film": (PixelFiLMTrainConfig, train_pixel_film),
    "latent_gru": (LatentGRUTrainConfig, train_latent_dynamics),
    "latent_flow": (LatentFlowTrainConfig, train_latent_dynamics),
}


def config_class(preset: str, overrides: list[str]) -> type:
    """The config class of the model type the preset and overrides pick (for --help; convgru when unknown)."""
    return MODEL_TYPES.get(peek(preset, overrides, "model.type", "convgru"), MODEL_TYPES["convgru"])[0]


@cli_entry
def main(argv: list[str] | None = None) -> None:
    preset, overrides = preset_args("configs/coinrun/dynamics.yaml", argv, __doc__, config_class)
    kind = peek(preset, overrides, "model.type", "convgru")
    if kind not in MODEL_TYPES:
        raise ConfigError(f"{preset}: model.type must be one of {list(MODEL_TYPES)}, got {kind!r}")
    config_cls, train = MODEL_TYPES[kind]
    train(load_config(config_cls, preset, overrides))


if __name__ == "__main__":
    main()
