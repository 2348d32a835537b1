"""The latent worlds: continuous autoencoder -> latent dataset -> bridge and flow world, through the entry points,
played by the runtime, the live app, inference.py and the Gymnasium env; and the flow objective's math."""

from __future__ import annotations

import dataclasses
import json

import gymnasium
import numpy as np
import pytest
import torch

from live.app import load_world, open_session
from live.bindings import bindings_for
from live.controller import PlayController
from ochre import WorldModel
from ochre.checkpoint import tokenizer_payload
from ochre.config import load_config
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.errors import OchreError
from ochre.models.dynamics import DynamicsState
from ochre.models.flow import FlowSampling, euler, flow_loss, guided, interpolate, velocity_target
from ochre.models.latent_flow import LatentFlow, LatentFlowConfig
from ochre.models.latent_gaussian import GaussianLatent
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.runtime import LatentWorldModel
from ochre.training.latent_config import LatentFlowLoopConfig, LatentFlowTrainConfig
from ochre.training.latent_loss import feedback_start
from tests.conftest import keep_train_states, run_module

TYPES = ("latent_gru", "latent_flow")


@pytest.fixture(scope="module")
def latent_worlds(tmp_path_factory, frames_dataset) -> dict:
    """Tiny continuous autoencoder, its latent dataset, a tiny bridge and flow world, all made by the entry points."""
    root = tmp_path_factory.mktemp("latent")
    runs, latents = root / "runs", root / "latents"
    common = [f"run.dir={runs}", "data.val_every=4"]
    run_module("vqvae.train", "--config", "configs/tiny/latent_ae.yaml", f"data.path={frames_dataset}", "run.name=ae", *common)
    tokenizer = runs / "ae" / "checkpoints" / "tokenizer.pt"
    run_module("vqvae.tokenize", "--tokenizer", str(tokenizer), "--data", str(frames_dataset), "--out", str(latents), "--device", "cpu")  # fmt: skip
    for kind in TYPES:
        run_module("train.dynamics", "--config", f"configs/tiny/{kind}.yaml", f"data.path={latents}", f"run.name={kind}", *common)  # fmt: skip
    batch = WindowSampler(EpisodeDataset(frames_dataset), 8, split="all").fixed(2)
    seed = root / "seed.npz"
    np.savez(seed, frames=batch.rows.numpy()[0, :4], actions=batch.actions.numpy()[0, :3])
    worlds = {kind: runs / kind / "checkpoints" / "world.pt" for kind in TYPES}
    return {"runs": runs, "tokenizer": tokenizer, "latents": latents, "seed": seed, "windows": batch, **worlds}


@pytest.fixture(scope="module", params=TYPES)
def world(request, latent_worlds) -> tuple[str, LatentWorldModel]:
    return request.param, WorldModel.load(latent_worlds[request.param], device="cpu")


def seeds(latent_worlds) -> tuple[np.ndarray, np.ndarray]:
    batch = latent_worlds["windows"]
    return batch.rows.numpy(), batch.actions.numpy()


# -- the continuous autoencoder and its dataset ------------------------------
def test_autoencoder_logs_and_records_its_latent(latent_worlds):
    header = (latent_worlds["runs"] / "ae" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/kl", "train/latent_mean", "train/latent_std"} <= set(header)
    payload = torch.load(latent_worlds["tokenizer"], weights_only=True)
    assert payload["quantizer"] == "continuous" and payload["codebook_size"] == 0 and payload["embed_dim"] == 4


def test_latent_dataset_is_float16_with_its_statistics(latent_worlds):
    data = EpisodeDataset(latent_worlds["latents"], expect_kind="latents")
    rows = np.concatenate([np.asarray(s["latents"], dtype=np.float64) for s in data.shards])
    assert rows.shape[1:] == (4, 16, 16) and data.shards[0]["latents"].dtype == np.float16
    assert data.manifest["latent_shape"] == [4, 16, 16]
    np.testing.assert_allclose(data.manifest["latent_mean"], rows.mean((0, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(data.manifest["latent_std"], rows.std((0, 2, 3)), rtol=1e-3, atol=1e-6)
    data.verify()
    with pytest.raises(OchreError, match="'latents' is needed"):
        EpisodeDataset(data.manifest["frames_dataset"], expect_kind="latents")


def test_gaussian_latent_statistics():
    latent = GaussianLatent(3)
    mean = torch.randn(64, 3, 8, 8)
    z = torch.cat([mean, torch.full_like(mean, np.log(0.25))], 1)  # std 0.5
    assert torch.equal(latent.eval()(z).codes, mean)
    out = latent.train()(z)
    assert (out.codes - mean).std().item() == pytest.approx(0.5, rel=0.05)
    expected = 0.5 * (mean.pow(2) + 0.25 - 1 - np.log(0.25)).mean()
    assert out.kl.item() == pytest.approx(expected.item(), rel=1e-5)
    assert latent(torch.zeros(2, 6, 4, 4)).kl.item() == pytest.approx(0.0, abs=1e-7)  # N(0, 1) itself


def test_flow_training_resumes_exactly(latent_worlds, tmp_path, monkeypatch):
    """A flow run resumed from its step-2 training state ends with exactly the weights of the uninterrupted run
    (its noise, flow times, action dropout and fed-back samples all come from the saved random streams)."""
    import ochre.training.latent_dynamics as module

    snapshots = keep_train_states(module, monkeypatch, tmp_path)
    args = [f"data.path={latent_worlds['latents']}", f"run.dir={tmp_path}", "data.val_every=4", "train.checkpoint_every=2",
            "train.max_steps=6", "train.warmup_steps=1", "logging.sample_every=100"]  # fmt: skip
    load = lambda *extra: load_config(LatentFlowTrainConfig, "configs/tiny/latent_flow.yaml", args + list(extra))  # noqa: E731
    straight = torch.load(module.train_latent_dynamics(load("run.name=straight")), weights_only=True)
    resumed = torch.load(
        module.train_latent_dynamics(load("run.name=resumed", f"train.resume={snapshots[2]}")), weights_only=True
    )
    assert resumed["step"] == straight["step"] == 6
    for key, value in straight["dynamics"]["state_dict"].items():
        assert torch.equal(value, resumed["dynamics"]["state_dict"][key]), key


# -- the runtime contract ----------------------------------------------------
def test_world_contract_shapes_and_types(world, latent_worlds):
    kind, wm = world
    frames, actions = seeds(latent_worlds)
    assert isinstance(wm, LatentWorldModel) and wm.dynamics.cfg.type == kind
    assert (wm.flow_steps, wm.guidance) == ((2, 1.0) if kind == "latent_flow" else (None, None))
    z = wm.encode(frames[0, :4])
    assert z.shape == (4, 4, 16, 16) and z.dtype == torch.float32
    decoded = wm.decode(z)
    assert decoded.shape == (4, 64, 64, 3) and decoded.dtype == np.uint8
    state = wm.reset(frames[0, :4], actions[0, :3])
    frame, after = wm.step(state, int(actions[0, 3]))
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and after.step_count == state.step_count + 1
    video = wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:7], sampling="sample", seed=0)
    assert video.shape == (2, 4, 64, 64, 3) and video.dtype == np.uint8


@pytest.mark.parametrize("sampling", ["greedy", "sample"])
def test_rollout_matches_repeated_step(world, latent_worlds, sampling):
    _, wm = world
    frames, actions = seeds(latent_worlds)
    video = wm.rollout(frames[:1, :4], actions[:1, :3], actions[:1, 3:7], sampling=sampling, seed=5)
    state = wm.reset(frames[0, :4], actions[0, :3])
    wm.sampling, wm.generator = sampling, torch.Generator().manual_seed(5)
    for j in range(4):
        frame, state = wm.step(state, int(actions[0, 3 + j]))
        assert (frame == video[0, j]).all()
    wm.sampling = "greedy"


def test_seeded_sampling_is_reproducible_and_draws_several_futures(world, latent_worlds):
    kind, wm = world
    frames, actions = seeds(latent_worlds)

    def rollout(seed):
        return wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:7], sampling="sample", temperature=1.0, seed=seed)

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert (a == b).all()
    state = wm.reset(frames[0, :4], actions[0, :3])
    if kind == "latent_flow":  # one state, several futures: the flow draws, the bridge predicts one
        assert not np.array_equal(a, c)
        wm.sampling = "sample"
        _, first = wm.step(state, 3)
        _, second = wm.step(state, 3)
        assert not torch.equal(first.tokens, second.tokens)
        wm.sampling = "greedy"
    else:
        assert (a == c).all()


def test_world_checkpoint_is_one_weights_only_file(latent_worlds):
    for kind in TYPES:
        payload = torch.load(latent_worlds[kind], weights_only=True)
        assert payload["format"] == "ochre-world" and payload["dynamics"]["config"]["type"] == kind
        assert payload["tokenizer"]["config"]["quantizer"] == "continuous" and payload["codebook_size"] == 0
        assert len(payload["dynamics"]["config"]["latent_mean"]) == 4


def test_a_latent_model_needs_its_continuous_tokenizer(latent_worlds, tmp_path):
    payload = torch.load(latent_worlds["latent_flow"], weights_only=True)
    fsq = tokenizer_payload(Tokenizer(TokenizerConfig(channels=[16, 32], res_blocks=0, fsq_levels=[5, 5, 5])), 0, {})
    payload["tokenizer"] = {k: fsq[k] for k in ("config", "state_dict", "codebook_size", "embed_dim")}
    torch.save(payload, tmp_path / "mixed.pt")
    with pytest.raises(
        OchreError, match=r"mixed.pt: the latent_flow model takes latents \[4, 16, 16\] but its tokenizer makes fsq"
    ):
        WorldModel.load(tmp_path / "mixed.pt")


# -- the callers: inference.py, the live app, the Gymnasium env --------------
def test_inference_writes_several_samples(latent_worlds, tmp_path):
    actions = tmp_path / "actions.npy"
    np.save(actions, np.array([7, 7, 5, 4]))
    out = tmp_path / "out"
    args = ["--seed-frames", str(latent_worlds["seed"]), "--actions", str(actions), "--out", str(out), "--device", "cpu"]
    run_module("inference.py", "--checkpoint", str(latent_worlds["latent_flow"]), *args, "--samples", "2", "--flow-steps", "2", "--sampling", "sample")  # fmt: skip
    saved = np.load(out / "frames.npz")
    assert saved["frames"].shape == (4, 64, 64, 3) and saved["samples"].shape == (2, 4, 64, 64, 3)
    assert (out / "video.mp4").is_file() and (out / "video.gif").is_file()
    proc = run_module("inference.py", "--checkpoint", str(latent_worlds["latent_gru"]), *args, "--flow-steps", "3")
    assert "--flow-steps apply to flow worlds only" in proc.stdout


def test_live_app_plays_a_flow_world_and_shows_its_sampler(latent_worlds, tmp_path):
    session = open_session(load_world(str(latent_worlds["latent_flow"]), "cpu"), str(latent_worlds["seed"]), 1.0)
    controller = PlayController(session, bindings_for(session.wm.action_spec))
    assert "flow 2 steps, guidance 1" in controller.hud_lines(15.0)[2]
    assert session.wm.set_flow_sampling(4, 1.5) == "" and "flow 4 steps, guidance 1.5" in controller.hud_lines(15.0)[2]
    controller.close()
    out = tmp_path / "play"
    run_module("live.play", "--checkpoint", str(latent_worlds["latent_flow"]), "--seed-frames", str(latent_worlds["seed"]),
               "--headless", "--frames", "6", "--out", str(out), "--device", "cpu", "--flow-steps", "1")  # fmt: skip
    assert len((out / "timings.csv").read_text().splitlines()) == 7 and (out / "play.mp4").is_file()


def test_the_stability_check_runs_on_a_flow_world(latent_worlds):
    from ochre.inputs import load_seed
    from ochre.stability import judge, stability_rollout

    wm = WorldModel.load(latent_worlds["latent_flow"], device="cpu")
    frames, actions = load_seed(latent_worlds["seed"])
    frames, actions = (frames, actions) if frames.ndim == 4 else (frames[0], None if actions is None else actions[0])
    trace = stability_rollout(wm, frames, actions, "random", steps=12, chunk=5)
    assert trace.frames.shape == (12, 64, 64, 3) and trace.detail.shape == (12,) and np.isfinite(trace.detail).all()
    assert judge(trace).verdict in {"alive", "static", "frozen", "blur"}


def test_the_stability_cli_judges_the_sampler_it_is_given(latent_worlds, tmp_path):
    def run(name: str, *sampler: str) -> tuple[dict, dict]:
        run_module("train.stability", "--checkpoint", str(latent_worlds["latent_flow"]), "--seed-frames",
                   str(latent_worlds["seed"]), "--steps", "6", "--policies", "random", "--out", str(tmp_path / name),
                   "--device", "cpu", *sampler)  # fmt: skip
        report = json.loads((tmp_path / name / "stability.json").read_text())
        return report["sampler"], report["policies"]["random"]

    sampled = ("--sampling", "sample", "--temperature", "0.5", "--flow-steps", "3", "--guidance", "1.5")
    sampler, first = run("a", *sampled)
    assert sampler == {"sampling": "sample", "temperature": 0.5, "flow_steps": 3, "guidance": 1.5}
    assert run("b", *sampled)[1] == first  # the seed fixes the draws
    sampler, greedy = run("greedy")
    assert sampler == {"sampling": "greedy", "flow_steps": 2, "guidance": 1.0}
    assert (greedy["pixel_std"], greedy["mean_change"]) != (first["pixel_std"], first["mean_change"])


def test_gymnasium_env_plays_a_flow_world(latent_worlds):
    env = gymnasium.make("ochre/World-v0", checkpoint=str(latent_worlds["latent_flow"]), seed_frames=str(latent_worlds["seed"]),
                         device="cpu", sampling="sample", max_episode_steps=3)  # fmt: skip
    frame, _ = env.reset(seed=0)
    steps = [env.step(env.action_space.sample()) for _ in range(3)]
    assert frame.shape == (64, 64, 3) and steps[-1][0].dtype == np.uint8 and steps[-1][3]  # truncated at 3
    env.reset(seed=1)
    again = env.reset(seed=0)[0]
    assert (again == frame).all()
    plans = np.stack([[env.action_space.sample() for _ in range(2)] for _ in range(3)])
    video = env.unwrapped.imagine(plans, seed=4)  # planning rolls a latent world out too
    assert video.shape == (3, 2, 64, 64, 3) and (env.unwrapped.imagine(plans, seed=4) == video).all()
    env.close()


def test_latent_worlds_carry_decoded_seed_contexts_and_play_alone(world, latent_worlds):
    kind, wm = world
    val_context = 2  # configs/tiny/latent_*.yaml
    assert wm.seeds.frames.shape[1:] == (val_context, 64, 64, 3) and wm.seeds.source["kind"] == "latents"
    assert wm.seeds.frames.std() > 1  # decoded pictures, not a constant
    env = gymnasium.make("ochre/World-v0", checkpoint=str(latent_worlds[kind]), device="cpu", max_episode_steps=2)
    frame, info = env.reset(seed=0)
    assert np.array_equal(frame, wm.seeds.frames[info["seed_index"], -1])
    assert [env.step(env.action_space.sample())[3] for _ in range(2)] == [False, True]
    env.close()


# -- the flow objective and sampler ------------------------------------------
def test_flow_loss_is_zero_at_the_true_velocity_of_a_linear_path():
    noise, data, t = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.rand(4)
    x_t = interpolate(noise, data, t)
    torch.testing.assert_close(x_t, noise + t[:, None, None, None] * (data - noise))
    assert flow_loss(velocity_target(noise, data), noise, data).item() == pytest.approx(0.0, abs=1e-12)
    assert flow_loss(torch.zeros_like(data), noise, data).item() > 0.5


def test_one_euler_step_is_exact_on_a_constant_velocity_field():
    x0, v = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(euler(lambda x, t: v, x0, steps=1), x0 + v)
    torch.testing.assert_close(euler(lambda x, t: v, x0, steps=4), x0 + v)


def test_guidance_of_one_is_the_conditional_velocity():
    v_cond, v_uncond = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(guided(v_cond, v_uncond, 1.0), v_cond)
    torch.testing.assert_close(guided(v_cond, v_uncond, 0.0), v_uncond)


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_flow_model_samples_with_classifier_free_guidance(scale):
    torch.manual_seed(0)
    model = LatentFlow(LatentFlowConfig(latent_channels=2, latent_grid=[8, 8], embed_dim=8, hidden_dim=8, width=8, cond_dim=16))
    for p in model.parameters():  # the zero-initialised outputs would make every velocity 0
        torch.nn.init.normal_(p, std=0.1)
    model.eval()
    state = model.observe(model.initial_state(2), torch.randn(2, 2, 8, 8))
    z, action, x0 = torch.randn(2, 2, 8, 8), torch.tensor([1, 7]), torch.randn(2, 2, 8, 8)

    def expected(x, t):
        v_cond = model.velocity(state, x, t, z, action)
        v_uncond = model.velocity(state, x, t, z, action, keep=torch.zeros(2, dtype=torch.bool))
        return guided(v_cond, v_uncond, scale)

    with torch.no_grad():
        got = model.sample(state, z, action, FlowSampling(3, scale), generator=torch.Generator().manual_seed(1))
        x0 = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(got, euler(expected, x0, 3), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model.sample(state, z, action, FlowSampling(2, scale, noise=0.0)),
                                   euler(expected, torch.zeros_like(z), 2), atol=1e-5, rtol=1e-4)  # fmt: skip
    assert isinstance(state, DynamicsState) and state.step == 1


def test_a_residual_flow_draws_the_change_from_the_observed_latent():
    """Untrained, the U-Net predicts zero velocity: the residual flow from zero noise keeps the picture as it is,
    from noise it adds the noise; its training target is the change."""
    torch.manual_seed(0)
    cfg = LatentFlowConfig(latent_channels=2, latent_grid=[8, 8], embed_dim=8, hidden_dim=8, width=8, cond_dim=16)
    model = LatentFlow(dataclasses.replace(cfg, residual=True)).eval()
    z, z_next, action = torch.randn(2, 2, 8, 8), torch.randn(2, 2, 8, 8), torch.tensor([1, 7])
    state = model.observe(model.initial_state(2), z)
    with torch.no_grad():
        torch.testing.assert_close(model.sample(state, z, action, FlowSampling(2, noise=0.0)), z)
        got = model.sample(state, z, action, FlowSampling(2), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, z + torch.randn(z.shape, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(model.flow_target(z_next, z), z_next - z)
    torch.testing.assert_close(LatentFlow(cfg).flow_target(z_next, z), z_next)


@pytest.mark.parametrize("greedy_share,greedy_rows", [(0.0, 0), (1.0, 64), (0.5, None)])
def test_a_greedy_share_of_the_fed_back_samples_starts_from_zero_noise(greedy_share, greedy_rows):
    """Untrained, the residual flow adds its starting noise to the observed latent, so a fed-back sample equals its
    input exactly where it was drawn greedily; the share set is the share of such rows."""
    torch.manual_seed(0)
    cfg = LatentFlowConfig(latent_channels=2, latent_grid=[8, 8], embed_dim=8, hidden_dim=8, width=8, cond_dim=16)
    model = LatentFlow(dataclasses.replace(cfg, residual=True)).eval()
    z, action = torch.randn(64, 2, 8, 8), torch.zeros(64, dtype=torch.long)
    loop = LatentFlowLoopConfig(feedback_noise=1.0, feedback_greedy=greedy_share)
    state = model.observe(model.initial_state(64), z)
    with torch.no_grad():
        fed = model.sample(state, z, action, FlowSampling(2, noise=1.0), start=feedback_start(z, loop))
    kept = (fed - z).flatten(1).abs().amax(1) == 0
    if greedy_rows is None:
        assert 16 < int(kept.sum()) < 48
    else:
        assert int(kept.sum()) == greedy_rows
    if not kept.all():
        assert ((fed - z)[~kept].std() - 1).abs() < 0.1


def test_flow_sampling_settings_are_checked(latent_worlds):
    with pytest.raises(ValueError, match="at least 1"):
        FlowSampling(0)
    wm = WorldModel.load(latent_worlds["latent_flow"], device="cpu")
    wm.flow_steps = 0
    frames, actions = seeds(latent_worlds)
    with pytest.raises(OchreError, match="flow sampling: flow steps must be at least 1"):
        wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:5])
    assert json.loads(json.dumps(wm.info["configs"]["dynamics_train"]))["model"]["type"] == "latent_flow"
