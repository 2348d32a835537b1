"""Data-parallel training: torchrun processes on the CPU (gloo), and the single-process path.

The launches run this file as each process's entry point (`-m tests.test_ddp`, see the
bottom): it installs test-only probes, then runs the real `train.dynamics` CLI (or, with
ENTRY_ENV=tokenizer, `vqvae.train`). Each dynamics rank appends to `trace.rank<r>` one line
per training window batch (`batch <digest>`) and per optimizer step (`weights <digest>` of
every weight after the step); rank 0 keeps a copy of each training state it writes. A probe
can also poison one rank's loss at one step. Each tokenizer rank appends `state <digest>` of
the tokenizer's weights and buffers (the VQ codebook) and the discriminator's weights after
every step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ochre.training import distributed
from tests.conftest import ROOT

TRACE_ENV = "OCHRE_TEST_DDP_TRACE"  # folder for the probes' traces and training-state copies
POISON_ENV = "OCHRE_TEST_DDP_POISON"  # "<rank>:<n>": that rank's loss is NaN in the n-th step of the launch
ENTRY_ENV = "OCHRE_TEST_DDP_ENTRY"  # "tokenizer": run vqvae.train instead of train.dynamics
PROCS = 3  # with two, a sum over ranks is a + b in any order: three also check that it is always summed alike
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def digest(tensors: Iterable[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def read_trace(trace: Path, rank: int, kind: str) -> list[str]:
    lines = (trace / f"trace.rank{rank}").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith(kind + " ")]


def torchrun(
    tokens: Path, runs: Path, trace: Path, *overrides: str, poison: str = "", procs: int = PROCS, entry: str = "dynamics"
) -> subprocess.CompletedProcess:
    """`procs` processes on this machine (torchrun --standalone picks a free rendezvous port); `tokens`: the data."""
    trace.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env |= {"OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", TRACE_ENV: str(trace), POISON_ENV: poison, ENTRY_ENV: entry}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
    preset = {"dynamics": "configs/tiny/dynamics.yaml", "tokenizer": "configs/tiny/vqvae.yaml"}[entry]
    args = ["--config", preset, f"data.path={tokens}", f"run.dir={runs}", "data.val_every=4", "train.max_steps=4",
            "train.checkpoint_every=2"]  # fmt: skip
    if entry == "dynamics":
        args += ["model.memory=2", "model.memory_heads=2", "model.idm_span=1", "train.idm_weight=0.5"]
    cmd = [*launcher, "-m", "tests.test_ddp", *args, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def ddp_run(tiny_world, tmp_path_factory) -> dict:
    """Four steps on PROCS ranks, with the optional memory and IDM modules; rank 1 alone sees a NaN loss at step 0."""
    root = tmp_path_factory.mktemp("ddp")
    proc = torchrun(tiny_world["tokens"], root / "runs", root / "trace", "run.name=ddp", poison="1:0")
    return {"tokens": tiny_world["tokens"], "runs": root / "runs", "trace": root / "trace", "proc": proc}


def test_ranks_write_one_run_and_keep_identical_weights(ddp_run):
    from ochre import WorldModel

    runs, trace, proc = ddp_run["runs"], ddp_run["trace"], ddp_run["proc"]
    assert [p.name for p in runs.iterdir()] == ["ddp"]
    assert proc.stdout.count("run folder:") == 1 and f"{PROCS} processes" in proc.stdout  # only rank 0 reports
    world_path = runs / "ddp" / "checkpoints" / "world.pt"
    world = WorldModel.load(world_path, device="cpu")
    assert world.info["step"] == 4
    assert "train/loss" in (runs / "ddp" / "metrics.csv").read_text()
    # Step 0 was skipped on every rank (the NaN was only rank 1's); after every other step the weights agree.
    assert (proc.stdout + proc.stderr).count("step 0: loss is nan; step skipped") == 1
    weights = [read_trace(trace, r, "weights") for r in range(PROCS)]
    assert len(weights[0]) == 3 and all(w == weights[0] for w in weights)
    assert weights[0][-1] == digest(torch.load(world_path, weights_only=True)["dynamics"]["state_dict"].values())
    batches = [read_trace(trace, r, "batch") for r in range(PROCS)]
    assert all(len(b) == 4 for b in batches)
    assert all(len(set(step)) == PROCS for step in zip(*batches, strict=True))  # each rank samples its own windows


def test_resumed_ranks_continue_exactly(ddp_run, tmp_path):
    """Resumed from the step-2 state, all ranks draw the same windows and reach the same weights as the straight run."""
    straight = ddp_run["trace"]
    state = tmp_path / "state_2.pt"
    shutil.copy(straight / "state_2.pt", state)
    torchrun(ddp_run["tokens"], tmp_path / "runs", tmp_path / "trace", "run.name=resumed", f"train.resume={state}")
    for rank in range(PROCS):
        assert read_trace(tmp_path / "trace", rank, "batch") == read_trace(straight, rank, "batch")[2:]
        assert read_trace(tmp_path / "trace", rank, "weights") == read_trace(straight, rank, "weights")[-2:]


def test_a_state_saved_by_three_processes_resumes_in_two_and_in_one(ddp_run, tmp_path):
    """Ranks the saved run had go on with their own windows; the ones it had beyond the new launch are dropped."""
    straight = ddp_run["trace"]
    state = tmp_path / "state_2.pt"
    shutil.copy(straight / "state_2.pt", state)
    for procs in (2, 1):
        trace, runs = tmp_path / f"trace{procs}", tmp_path / f"runs{procs}"
        proc = torchrun(ddp_run["tokens"], runs, trace, "run.name=resumed", f"train.resume={state}", procs=procs)
        assert f"the random streams of 3 processes, this run has {procs}; kept for rank" in proc.stdout
        for rank in range(procs):
            assert read_trace(trace, rank, "batch") == read_trace(straight, rank, "batch")[2:]
        rows = (runs / "resumed" / "metrics.csv").read_text().splitlines()
        steps = [int(row.split(",")[0]) for row in rows[1:]]
        loss_col = rows[0].split(",").index("train/loss")
        losses = [float(row.split(",")[loss_col]) for row in rows[1:] if row.split(",")[loss_col]]
        assert steps == [2, 3] and len(losses) == 2 and all(0 < x < 20 for x in losses)  # the curve goes on from step 2
        assert torch.load(runs / "resumed" / "checkpoints" / "world.pt", weights_only=True)["step"] == 4


def test_ranks_without_saved_streams_start_fresh_deterministic_ones(capsys):
    """A state of one process resumed by three: rank 0 takes the saved streams, ranks 1 and 2 fresh ones from
    (seed, rank, step), the same on a rerun, apart from each other and from the rank's stream at step 0."""
    import numpy as np

    cpu = torch.device("cpu")
    saved = distributed.RankRNG(np.random.default_rng(0), cpu, 0, distributed.Launch()).gather()

    def resumed(rank: int) -> tuple[int, float]:
        rng = np.random.default_rng(rank)  # as the sampler of rank `rank` starts (seed + rank)
        torch.manual_seed(rank)
        distributed.RankRNG(rng, cpu, 0, distributed.Launch(rank, 3)).restore(saved, step=2)
        return int(rng.integers(1 << 30)), float(torch.rand(()))

    own = resumed(0)
    assert capsys.readouterr().out.strip() == (
        "resume: the training state holds the random streams of 1 process, this run has 3; kept for rank 0, "
        "fresh ones from train.seed, the rank and the step for ranks 1-2"
    )
    expected = np.random.default_rng()
    expected.bit_generator.state = saved[0]["numpy"]
    torch.set_rng_state(saved[0]["torch"])
    assert own == (int(expected.integers(1 << 30)), float(torch.rand(())))
    fresh = [resumed(1), resumed(2)]
    assert fresh == [resumed(1), resumed(2)] and fresh[0] != fresh[1]
    torch.manual_seed(1)
    assert fresh[0] != (int(np.random.default_rng(1).integers(1 << 30)), float(torch.rand(())))


def test_tokenizer_trains_data_parallel_with_one_codebook(tiny_world, tmp_path):
    """Two ranks, VQ codebook and discriminator: one run folder, and after every step the same tokenizer weights,
    codebook buffers and discriminator weights on both ranks."""
    vq_gan = ["model.quantizer=vq", "model.vq_codes=32", "model.vq_dim=4", "train.adv_weight=0.1", "train.adv_start=1"]
    trace, runs = tmp_path / "trace", tmp_path / "runs"
    proc = torchrun(tiny_world["frames"], runs, trace, "run.name=tok", *vq_gan, procs=2, entry="tokenizer")
    assert [p.name for p in runs.iterdir()] == ["tok"]
    assert proc.stdout.count("run folder:") == 1 and "2 processes" in proc.stdout
    assert torch.load(runs / "tok" / "checkpoints" / "tokenizer.pt", weights_only=True)["step"] == 4
    states = [read_trace(trace, rank, "state") for rank in range(2)]
    assert len(states[0]) == 4 and states[0] == states[1]
    assert len(set(states[0])) == 4  # the codebook and weights move every step


@pytest.mark.parametrize("rank", [0, 1])
def test_one_process_trainers_refuse_torchrun(tiny_world, tmp_path, monkeypatch, capsys, rank):
    """Pixel FiLM and the IDM under a two-process launch: rank 0 says so in one line, rank 1 stops quietly."""
    from train.dynamics import main as train_dynamics_main
    from train.idm import main as idm_main

    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    frames = str(tiny_world["frames"])
    for main, argv in [
        (train_dynamics_main, ["--config", "configs/tiny/pixel_film.yaml", f"data.path={frames}", f"run.dir={tmp_path}"]),
        (idm_main, ["--data", frames, "--out", str(tmp_path / "idm.pt")]),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        if rank:
            assert err == []
        else:
            assert len(err) == 1 and "trains in one process only" in err[0] and "without torchrun" in err[0], err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def no_launch(monkeypatch) -> None:
    """No torchrun variables, and a process group that must not be created."""
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: pytest.fail("init_process_group called"))


def test_single_process_helpers_do_nothing(monkeypatch):
    no_launch(monkeypatch)
    launch = distributed.detect_launch()
    assert launch == distributed.Launch() and not launch.distributed
    module = torch.nn.Linear(2, 2)
    cpu = torch.device("cpu")
    with distributed.process_group(launch, cpu):
        assert not dist.is_initialized()
        assert distributed.is_main()
        assert distributed.rank_device(cpu, launch) == cpu
        assert distributed.data_parallel(module, cpu) is module
        logs = {"loss": torch.tensor(1.5), "acc": torch.tensor(0.25)}
        assert distributed.all_reduce_mean(logs) is logs
        assert distributed.broadcast_from_main(cpu) is cpu
        distributed.barrier()


def test_means_over_ranks_stay_tensors(tmp_path):
    """In a process group the logs are averaged as tensors, in their own key order, without a read into Python."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        means = distributed.all_reduce_mean({"loss": torch.tensor(1.5), "acc": torch.tensor(0.25, dtype=torch.float64)})
    finally:
        dist.destroy_process_group()
    assert list(means) == ["loss", "acc"] and all(isinstance(v, torch.Tensor) for v in means.values())
    assert means["loss"].item() == 1.5 and means["acc"].item() == 0.25


def test_single_process_training_creates_no_process_group(tiny_world, tmp_path, monkeypatch):
    from ochre.config import load_config
    from ochre.training.dynamics import train_dynamics
    from ochre.training.dynamics_config import DynamicsTrainConfig

    no_launch(monkeypatch)
    overrides = [f"data.path={tiny_world['tokens']}", f"run.dir={tmp_path}", "data.val_every=4", "train.max_steps=1"]
    assert train_dynamics(load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml", overrides)).exists()
    assert not dist.is_initialized()


def test_launch_comes_from_torchrun_variables(monkeypatch):
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.detect_launch() == distributed.Launch(rank=5, world_size=8, local_rank=1)
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: a plain run
    assert not distributed.detect_launch().distributed


def test_process_group_is_left_on_errors(monkeypatch):
    calls = []
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **k: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("destroy", None)))
    with pytest.raises(RuntimeError, match="boom"), distributed.process_group(distributed.Launch(0, 2), torch.device("cpu")):
        raise RuntimeError("boom")
    assert calls == [("init", "gloo"), ("destroy", None)]


def install_probes(trace: Path, poison: str) -> None:
    """Test-only hooks around the real trainer (see the module docstring)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    import ochre.training.dynamics as dyn
    import ochre.training.dynamics_loss as dyn_loss

    rank = int(os.environ["RANK"])
    out = trace / f"trace.rank{rank}"
    bad_rank, bad_step = (int(x) for x in poison.split(":")) if poison else (-1, -1)
    calls = iter(range(sys.maxsize))
    real_loss, real_save = dyn_loss.sequence_loss, dyn.save_train_state

    def traced_loss(model, batch, *args, **kwargs):
        loss, logs = real_loss(model, batch, *args, **kwargs)
        if torch.is_grad_enabled():  # a training window batch, not validation
            with out.open("a") as f:
                f.write(f"batch {digest([batch.rows, batch.actions])}\n")
            if (rank, next(calls)) == (bad_rank, bad_step):
                return loss * float("nan"), logs | {"loss": logs["loss"] * float("nan")}
        return loss, logs

    def kept_save(path, model, opt, step, *args, **kwargs):
        real_save(path, model, opt, step, *args, **kwargs)
        shutil.copy(path, trace / f"state_{step}.pt")

    def after_step(opt, args, kwargs):
        with out.open("a") as f:
            f.write(f"weights {digest(p for group in opt.param_groups for p in group['params'])}\n")

    dyn_loss.sequence_loss, dyn.save_train_state = traced_loss, kept_save  # where WindowLoss and `save` look them up
    register_optimizer_step_post_hook(after_step)


def install_tokenizer_probes(trace: Path) -> None:
    """Test-only hook around the real tokenizer trainer: each rank's state digest after every step."""
    import ochre.training.tokenizer as tok

    out = trace / f"trace.rank{os.environ['RANK']}"
    real_step = tok.train_step

    def traced_step(run, step):
        logs = real_step(run, step)
        disc = run.critics.disc.state_dict().values() if run.critics.disc is not None else []
        with out.open("a") as f:
            f.write(f"state {digest([*run.model.state_dict().values(), *disc])}\n")
        return logs

    tok.train_step = traced_step  # where `fit` looks it up


if __name__ == "__main__":  # one torchrun process: probes, then the real CLI
    if os.environ.get(ENTRY_ENV) == "tokenizer":
        from vqvae.train import main

        install_tokenizer_probes(Path(os.environ[TRACE_ENV]))
    else:
        from train.dynamics import main

        install_probes(Path(os.environ[TRACE_ENV]), os.environ.get(POISON_ENV, ""))
    main(sys.argv[1:])
