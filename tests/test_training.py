import pytest
import torch

from ochre.data.windows import Batch
from ochre.errors import OchreError
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.training.dynamics import init_weights
from ochre.training.dynamics_config import DynamicsLoopConfig, DynamicsTrainConfig
from ochre.training.dynamics_loss import ar_probability, sequence_loss
from tests.conftest import keep_train_states


class RecordingDynamics(Dynamics):
    """Records which frame each step is fed (decoded back from the input embedding), to check teacher forcing."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.fed: list[torch.Tensor] = []
        self.fed_embeddings: list[torch.Tensor] = []

    def step_embedded(self, state, emb, action):
        table = self.token_embed.weight.detach()  # (K, E): the nearest row is the token that was fed
        dist = (emb.detach().permute(0, 2, 3, 1)[..., None, :] - table).pow(2).sum(-1)
        self.fed.append(dist.argmin(-1))
        self.fed_embeddings.append(emb)
        return super().step_embedded(state, emb, action)


def make_model() -> RecordingDynamics:
    return RecordingDynamics(
        DynamicsConfig(codebook_size=16, token_grid=[4, 4], num_actions=3, embed_dim=8, hidden_dim=8, layers=1, action_dim=8)
    )


def test_teacher_forcing_feeds_frame_t_and_never_the_target():
    model = make_model()
    tokens = torch.stack([torch.full((2, 4, 4), t) for t in range(6)], 1)  # frame t is filled with value t
    batch = Batch(tokens, torch.zeros(2, 6, dtype=torch.long))
    loss, logs = sequence_loss(model, batch, DynamicsLoopConfig(token_noise=0.0), p_ar=0.0)
    assert len(model.fed) == 5
    for t, fed in enumerate(model.fed):
        assert (fed == t).all(), f"step {t} was fed frame {fed.flatten()[0].item()}, expected frame {t}"
    assert loss.requires_grad and logs["copy_acc"] == 0.0


def test_own_predictions_are_fed_back_after_context():
    model = make_model()
    tokens = torch.stack([torch.full((3, 4, 4), t) for t in range(6)], 1)
    batch = Batch(tokens, torch.zeros(3, 6, dtype=torch.long))
    _, logs = sequence_loss(model, batch, DynamicsLoopConfig(token_noise=0.0, context=2), p_ar=1.0)
    for t in range(2):
        assert (model.fed[t] == t).all()  # warm-up context is always real
    assert logs["fed_back"] > 0
    assert any((model.fed[t] != t).any() for t in range(2, 5))


def test_ar_probability_ramp():
    cfg = DynamicsLoopConfig(ar_max=0.5, ar_start=10, ar_end=20)
    assert ar_probability(0, cfg) == 0 and ar_probability(15, cfg) == pytest.approx(0.25) and ar_probability(99, cfg) == 0.5


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    model = make_model()
    tokens = torch.randint(0, 16, (4, 5, 4, 4))
    batch = Batch(tokens, torch.randint(0, 3, (4, 5)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cfg = DynamicsLoopConfig(token_noise=0.0)
    first = None
    for _ in range(30):
        loss, _ = sequence_loss(model, batch, cfg, 0.0)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.8


@pytest.mark.parametrize("stage", ["tokenizer", "tokenizer_vq_gan", "dynamics"])
def test_resume_continues_exactly(tiny_world, tmp_path, monkeypatch, stage):
    """A run resumed from its step-2 training state ends with exactly the weights of the uninterrupted run."""
    import ochre.training.dynamics as dyn
    import ochre.training.tokenizer as tok
    from ochre.config import load_config

    module, cfg_cls, train, preset, data = {
        "tokenizer": (tok, tok.TokenizerTrainConfig, tok.train_tokenizer, "configs/tiny/vqvae.yaml", tiny_world["frames"]),
        "tokenizer_vq_gan": (tok, tok.TokenizerTrainConfig, tok.train_tokenizer, "configs/tiny/vqvae.yaml", tiny_world["frames"]),
        "dynamics": (dyn, DynamicsTrainConfig, dyn.train_dynamics, "configs/tiny/dynamics.yaml", tiny_world["tokens"]),
    }[stage]
    # The VQ codebook's EMA buffers, the discriminator and its optimizer must all resume too.
    vq_gan = ["model.quantizer=vq", "model.vq_codes=32", "model.vq_dim=4", "train.adv_weight=0.1", "train.adv_start=1"]
    snapshots = keep_train_states(module, monkeypatch, tmp_path)
    args = [f"data.path={data}", f"run.dir={tmp_path}", "data.val_every=4", "train.checkpoint_every=2",
            "train.max_steps=6", "train.warmup_steps=1"] + (vq_gan if stage == "tokenizer_vq_gan" else [])  # fmt: skip
    load = lambda *extra: load_config(cfg_cls, preset, args + list(extra))  # noqa: E731
    straight = torch.load(train(load("run.name=straight")), weights_only=True)
    resumed = torch.load(train(load("run.name=resumed", f"train.resume={snapshots[2]}")), weights_only=True)
    weights = (lambda p: p["state_dict"]) if stage.startswith("tokenizer") else (lambda p: p["dynamics"]["state_dict"])
    assert resumed["step"] == straight["step"] == 6
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(resumed)[key]), key


def tiny_pair(**dyn):
    """A tiny tokenizer (32x32 -> 8x8, 32 codes) and a dynamics model that matches it."""
    from ochre.models.tokenizer import Tokenizer, TokenizerConfig

    tok = Tokenizer(TokenizerConfig(frame_size=[32, 32], channels=[8, 16], res_blocks=0, fsq_levels=[2, 2, 2, 4]))
    tok.requires_grad_(False).eval()
    cfg = dict(codebook_size=32, token_grid=[8, 8], num_actions=3, embed_dim=8, hidden_dim=8, layers=1, action_dim=8)
    return tok, Dynamics(DynamicsConfig(**(cfg | dyn)))


def tiny_batch(b=3, t=5):
    return Batch(torch.randint(0, 32, (b, t, 8, 8)), torch.randint(0, 3, (b, t)))


@pytest.mark.parametrize("term", ["pixel", "lpips"])
def test_perceptual_loss_through_the_decoder_trains_the_dynamics(term):
    from ochre.losses import LPIPSLoss
    from ochre.training.dynamics_loss import LossContext

    torch.manual_seed(0)
    tok, model = tiny_pair()
    batch = tiny_batch()
    weights = {"pixel_weight": 1.0} if term == "pixel" else {"lpips_weight": 1.0}
    ctx = LossContext(tok, LPIPSLoss.random_backbone() if term == "lpips" else None)

    def head_grad(**w):
        model.zero_grad()
        torch.manual_seed(1)
        loss, logs = sequence_loss(model, batch, DynamicsLoopConfig(token_noise=0.0, **w), 0.0, ctx)
        loss.backward()
        return model.head[-1].weight.grad.clone(), logs

    plain, _ = head_grad()
    with_term, logs = head_grad(**weights)
    assert logs[term] > 0
    assert (with_term - plain).abs().sum() > 0  # the decoded-frame term adds gradient to the dynamics weights
    assert all(p.grad is None for p in tok.parameters())  # the tokenizer stays frozen


@pytest.mark.parametrize("feedback,detach,flows", [("gumbel", False, True), ("gumbel", True, False), ("greedy", False, False)])
def test_gumbel_feedback_carries_gradient_across_fed_back_steps(feedback, detach, flows):
    torch.manual_seed(0)
    model = make_model()
    cfg = DynamicsLoopConfig(token_noise=0.0, context=1, feedback=feedback, detach_feedback=detach)
    batch = Batch(torch.randint(0, 16, (2, 4, 4, 4)), torch.zeros(2, 4, dtype=torch.long))
    sequence_loss(model, batch, cfg, p_ar=1.0)
    fed = model.fed_embeddings[2]  # an input the model produced itself
    grad = torch.autograd.grad(fed.sum(), model.head[-1].weight, allow_unused=True)[0]
    assert (grad is not None and grad.abs().sum() > 0) == flows


def test_predicted_frames_are_held_to_the_action_by_the_frozen_idm():
    torch.manual_seed(0)
    _, model = tiny_pair(idm_span=2)
    cfg = DynamicsLoopConfig(token_noise=0.0, idm_pred_weight=1.0)
    loss, logs = sequence_loss(model, tiny_batch(), cfg, 0.0)
    loss.backward()
    assert logs["idm_pred"] > 0 and model.head[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.idm.parameters())
    model.zero_grad()
    loss, logs = sequence_loss(model, tiny_batch(), DynamicsLoopConfig(idm_weight=1.0), 0.0)
    loss.backward()
    assert 0 <= logs["idm_acc"] <= 1 and any(p.grad.abs().sum() > 0 for p in model.idm.parameters())


def test_inverse_sigmoid_schedule_ramps_monotonically():
    from ochre.training.dynamics_loss import ramp

    cfg = DynamicsLoopConfig(ar_start=100, ar_end=500, ar_schedule="inverse_sigmoid")
    values = [ramp(s, cfg) for s in range(0, 800, 20)]
    assert values[0] == 0 and values[-1] > 0.99 and all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert ramp(300, cfg) == pytest.approx(0.5)


def test_training_stops_after_too_many_non_finite_losses(tiny_world, tmp_path, monkeypatch):
    import ochre.training.dynamics as dyn
    import ochre.training.dynamics_loss as dyn_loss
    from ochre.config import load_config
    from ochre.errors import OchreError

    real = dyn_loss.sequence_loss

    def poisoned(*args, **kwargs):
        loss, logs = real(*args, **kwargs)
        return loss * float("nan"), logs | {"loss": logs["loss"] * float("nan")}

    monkeypatch.setattr(dyn_loss, "sequence_loss", poisoned)  # where WindowLoss looks it up
    cfg = load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml",
                      [f"data.path={tiny_world['tokens']}", f"run.dir={tmp_path}", "data.val_every=4", "train.max_bad_steps=2"])  # fmt: skip
    with pytest.raises(OchreError, match=r"3 steps with a non-finite loss \(train.max_bad_steps=2\)"):
        dyn.train_dynamics(cfg)


def test_changed_cells_weigh_more_in_the_cross_entropy_by_hand():
    from ochre.training.dynamics_loss import changed_weighted_ce

    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 0, 0, 0] = 2.0  # cell 0 predicts code 0 confidently, cell 1 is a coin flip
    previous = torch.tensor([[[0, 0]]])
    target = torch.tensor([[[0, 1]]])  # cell 1 changed
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    assert changed_weighted_ce(logits, target, previous, 0.0).item() == pytest.approx(ce.mean().item())
    # weights 1 (still) and 1 + 9 = 10 (changed), normalised: (1 * ce0 + 10 * ce1) / 11
    want = (ce[0] + 10 * ce[1]) / 11
    assert changed_weighted_ce(logits, target, previous, 9.0).item() == pytest.approx(want.item())


def test_changed_pixels_weigh_more_in_the_pixel_loss_by_hand():
    from ochre.training.dynamics_loss import changed_weighted_l1

    previous = torch.zeros(1, 3, 1, 2)
    target = previous.clone()
    target[0, :, 0, 1] = 1.0  # pixel 1 changed (a ball arrived), pixel 0 is still field
    pred = torch.full_like(target, 0.5)  # off by 0.5 everywhere
    assert changed_weighted_l1(pred, target, previous, 0.0).item() == pytest.approx(0.5)
    pred[0, :, 0, 0] = 0.0  # the field exactly right, the ball half drawn: plain L1 0.25
    assert changed_weighted_l1(pred, target, previous, 0.0).item() == pytest.approx(0.25)
    # weights 1 (still) and 1 + 9 = 10 (changed), normalised: (1 * 0 + 10 * 0.5) / 11
    assert changed_weighted_l1(pred, target, previous, 9.0).item() == pytest.approx(5 / 11)


def test_camera_warp_resolves_to_a_shift_per_bin():
    from types import SimpleNamespace

    from ochre.actions import DiscreteActionSpec, FirstPersonActionSpec
    from ochre.errors import ConfigError
    from ochre.training.dynamics import camera_shift

    spec = FirstPersonActionSpec()
    tokenizer = SimpleNamespace(cfg=SimpleNamespace(frame_size=[64, 64], token_grid=[16, 16]))  # 4 px cells
    shift = camera_shift([0.5, 1.0], spec, tokenizer, "test")
    bins, still = spec.camera_bins, spec.still_bin
    dx, dy = shift[:bins], shift[bins:]
    assert len(shift) == 2 * bins and dx[still] == 0 and dy[still] == 0
    right, up = spec.bin_centers[-1] * spec.max_deg, spec.bin_centers[-1] * spec.max_deg
    assert dx[-1] == pytest.approx(-right * 0.5 / 4, abs=1e-3)  # turning right moves the scene left
    assert dy[-1] == pytest.approx(up * 1.0 / 4, abs=1e-3)  # looking up moves it down
    assert dx == sorted(dx, reverse=True) and dy == sorted(dy)
    with pytest.raises(ConfigError, match="first-person"):
        camera_shift([0.5, 1.0], DiscreteActionSpec("test", ("noop", "fire")), tokenizer, "test")


def test_init_from_a_one_frame_head_starts_the_two_frame_head_where_it_was():
    small = dict(codebook_size=32, token_grid=[8, 8], num_actions=5, embed_dim=8, hidden_dim=8, layers=2, action_dim=8)
    source = Dynamics(DynamicsConfig(**small)).eval()
    for p in source.parameters():
        torch.nn.init.normal_(p, std=0.3)
    grown = Dynamics(DynamicsConfig(**small, head_frames=2)).eval()
    init_weights(grown, dict(source.state_dict()), "source.pt")
    tokens, actions = torch.randint(0, 32, (2, 5, 8, 8)), torch.randint(0, 5, (2, 5))
    assert torch.allclose(source(tokens, actions)[1], grown(tokens, actions)[1], atol=1e-6)
    other = Dynamics(DynamicsConfig(**(small | {"embed_dim": 4})))
    with pytest.raises(OchreError, match=r"source\.pt: dynamics weight token_embed\.weight"):
        init_weights(other, dict(source.state_dict()), "source.pt")


class PixelTokens:
    """A stand-in tokenizer for the Pong ball check: one token per pixel, 0 = the field, 1 = the ball."""

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 64, 64) -> (B, 3, 64, 64) in [-1, 1]
        from ochre.world_checks import PONG_BACKGROUND, PONG_BALL

        colours = torch.tensor([PONG_BACKGROUND, PONG_BALL], dtype=torch.float32) / 127.5 - 1
        return colours[tokens].permute(0, 3, 1, 2)


class Shift(torch.nn.Module):
    """Predicts every token `dx` cells right of where it was; dx = 0 repeats the last frame."""

    def __init__(self, dx: int):
        super().__init__()
        self.dx, self.unused = dx, torch.nn.Parameter(torch.zeros(()))

    def initial_state(self, batch, device=None):
        return None

    def step(self, state, tokens, action):
        return state, torch.nn.functional.one_hot(tokens.roll(self.dx, -1), 2).permute(0, 3, 1, 2).float()


class Erase(Shift):
    """Predicts the empty field."""

    def step(self, state, tokens, action):
        return super().step(state, torch.zeros_like(tokens), action)


def test_validation_ball_check_scores_the_rollout_at_step_six():
    from ochre.training.dynamics_validation import validate_ball

    rows = torch.zeros(3, 10, 64, 64, dtype=torch.long)  # 4 seed frames + 6 steps; the ball moves 1 px right a step
    for t in range(10):
        rows[0, t, 30, 10 + t] = 1
        rows[1, t, 40, 20 + t] = 1  # the third window has no ball: not a case
    windows = Batch(rows, torch.zeros(3, 10, dtype=torch.long))
    right = validate_ball(Shift(1), PixelTokens(), windows, context=4, batch=2)
    assert right == {"val/ball@1": 1.0, "val/ball_missing@1": 0.0, "val/ball@6": 1.0, "val/ball_missing@6": 0.0,
                     "val/ball_cases": 2.0}  # fmt: skip
    still = validate_ball(Shift(0), PixelTokens(), windows, context=4)  # copy-last: 1 px behind at step 1, 6 at step 6
    assert still["val/ball@1"] == 1.0 and still["val/ball@6"] == 0.0 and still["val/ball_missing@6"] == 0.0
    erased = validate_ball(Erase(0), PixelTokens(), windows, context=4)
    assert erased["val/ball@1"] == erased["val/ball@6"] == 0.0 and erased["val/ball_missing@6"] == 1.0
    rows[:, 4:] = 0  # the model's own ball is compared with a truth that has none
    assert validate_ball(Shift(1), PixelTokens(), Batch(rows, windows.actions), context=4)["val/ball_cases"] == 0.0


def write_tokens(path, episodes):
    """A token dataset from a list of (T, 4, 4) token arrays, all actions 0."""
    import numpy as np

    from ochre.actions import PROCGEN_ACTIONS
    from ochre.data.store import DatasetWriter

    writer = DatasetWriter(path, "tokens", {"world": "test", "action_schema": PROCGEN_ACTIONS.to_dict(), "token_grid": [4, 4]})
    for rows in episodes:
        writer.add_episode(np.asarray(rows, np.uint16), np.zeros(len(rows), np.int64))
    writer.close()


def test_hard_windows_are_the_ones_whose_changes_the_world_gets_wrong(tmp_path):
    """Still windows score 0; a world that has learned one moving pattern scores the other pattern's windows higher."""
    import numpy as np

    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler
    from ochre.training.hard_windows import window_difficulty

    still = np.zeros((6, 4, 4), np.int64)
    learned = np.stack([np.full((4, 4), t % 2) for t in range(6)])  # 0 1 0 1 ...: the world is trained on this
    other = np.stack([np.full((4, 4), 2 + t % 3) for t in range(6)])  # 2 3 4 2 ...: never seen
    write_tokens(tmp_path / "t", [still, learned, other])
    sampler = WindowSampler(EpisodeDataset(tmp_path / "t", expect_kind="tokens"), 6, split="all")
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    batch = Batch(torch.from_numpy(learned)[None].repeat(4, 1, 1, 1), torch.zeros(4, 6, dtype=torch.long))
    for _ in range(60):
        loss, _ = sequence_loss(model, batch, DynamicsLoopConfig(token_noise=0.0), p_ar=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    scores = window_difficulty(model, sampler, np.arange(len(sampler)), context=2, device=torch.device("cpu"))
    assert scores[0] == 0.0 and scores[2] > scores[1] > 0.0
    assert model.training  # scoring put the model back in training mode


def test_hard_share_needs_a_starting_world(tiny_world, tmp_path):
    import ochre.training.dynamics as dyn
    from ochre.config import load_config
    from ochre.errors import ConfigError

    cfg = load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml",
                      [f"data.path={tiny_world['tokens']}", f"run.dir={tmp_path}", "data.val_every=4", "train.hard_share=0.5"])  # fmt: skip
    with pytest.raises(ConfigError, match="train.hard_share needs train.init_from"):
        dyn.train_dynamics(cfg)


def test_a_run_focused_on_hard_windows_trains_from_its_starting_world(tiny_world, tmp_path, capsys):
    import ochre.training.dynamics as dyn
    from ochre.config import load_config

    cfg = load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml",
                      [f"data.path={tiny_world['tokens']}", f"run.dir={tmp_path}", "data.val_every=4", "train.max_steps=2",
                       "run.name=hard", f"train.init_from={tiny_world['world']}", "train.hard_share=0.5", "train.hard_scan=16"])  # fmt: skip
    world = torch.load(dyn.train_dynamics(cfg), weights_only=True)
    assert world["step"] == 2
    printed = capsys.readouterr()
    assert "hard windows: scored 16" in printed.out + printed.err
    table = (tmp_path / "hard" / "hard_windows.csv").read_text().splitlines()
    scores = [float(line.split(",")[2]) for line in table[1:]]
    assert table[0] == "shard,row,score,in_pool" and len(scores) == 16 and scores == sorted(scores, reverse=True)
    assert sum(int(line.split(",")[3]) for line in table[1:]) == 2  # hard_pool 0.1 of 16 windows


def test_states_saved_before_streams_were_kept_per_rank_still_resume():
    """Older training states: a single process's streams at the top level (with every visible GPU's CUDA stream,
    which a machine with fewer GPUs could not set back), or a torchrun run's ranks kept as an extra."""
    from ochre.training.state import saved_streams

    cpu_state, numpy_state = torch.get_rng_state(), {"bit_generator": "PCG64"}
    gpus = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    single = saved_streams({"torch_rng": cpu_state, "numpy_rng": numpy_state, "cuda_rng": gpus})
    assert len(single) == 1 and torch.equal(single[0]["torch"], cpu_state) and torch.equal(single[0]["cuda"], gpus[0])
    ranks = [{"torch": cpu_state, "numpy": numpy_state}] * 3
    assert saved_streams({"torch_rng": cpu_state, "numpy_rng": numpy_state, "extra": {"ranks": {"ranks": ranks}}}) == ranks
    assert saved_streams({"rngs": ranks[:2]}) == ranks[:2]


def test_compiled_step_computes_the_eager_loss_and_gradients():
    """train.compile=true: the compiled one-timestep forward gives the eager loss and gradients (same weights)."""
    from ochre.training.dynamics import compile_step

    cfg = DynamicsConfig(codebook_size=16, token_grid=[4, 4], num_actions=3, embed_dim=8, hidden_dim=8, layers=1, action_dim=8)
    eager, compiled = Dynamics(cfg), Dynamics(cfg)
    compiled.load_state_dict(eager.state_dict())
    compile_step(compiled)
    batch = Batch(torch.randint(0, 16, (2, 4, 4, 4)), torch.randint(0, 3, (2, 4)))
    loop = DynamicsLoopConfig(token_noise=0.0)
    losses = []
    for model in (eager, compiled):
        loss, _ = sequence_loss(model, batch, loop, p_ar=0.0)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_trainers_flush_denormal_floats_on_the_cpu():
    """setup_torch (every trainer's) flushes denormals to zero: CPU arithmetic on them is several times slower."""
    from ochre.training.common import LoopConfig, setup_torch

    try:
        setup_torch(LoopConfig(device="cpu", threads=0))
        assert torch.tensor([1e-40]).item() == 0.0 and torch.tensor([1e-30]).item() > 0
    finally:
        torch.set_flush_denormal(False)
