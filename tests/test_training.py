import pytest
import torch

from ochre.data.windows import Batch
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.training.dynamics import DynamicsLoopConfig, ar_probability, sequence_loss


class RecordingDynamics(Dynamics):
    """Records what each step is fed, to check teacher forcing."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.fed: list[torch.Tensor] = []

    def step(self, state, tokens, action):
        self.fed.append(tokens.clone())
        return super().step(state, tokens, action)


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
        "dynamics": (dyn, dyn.DynamicsTrainConfig, dyn.train_dynamics, "configs/tiny/dynamics.yaml", tiny_world["tokens"]),
    }[stage]
    # The VQ codebook's EMA buffers, the discriminator and its optimizer must all resume too.
    vq_gan = ["model.quantizer=vq", "model.vq_codes=32", "model.vq_dim=4", "train.adv_weight=0.1", "train.adv_start=1"]
    snapshots = {}
    real_save = module.save_train_state

    def save_and_keep(path, model, opt, step, rng, extra=None):  # keep every intermediate state, not only the latest
        real_save(path, model, opt, step, rng, extra)
        snapshots.setdefault(step, tmp_path / f"state_{step}.pt").write_bytes(path.read_bytes())

    monkeypatch.setattr(module, "save_train_state", save_and_keep)
    args = [f"data.path={data}", f"run.dir={tmp_path}", "data.val_every=4", "train.checkpoint_every=2",
            "train.max_steps=6", "train.warmup_steps=1"] + (vq_gan if stage == "tokenizer_vq_gan" else [])  # fmt: skip
    load = lambda *extra: load_config(cfg_cls, preset, args + list(extra))  # noqa: E731
    straight = torch.load(train(load("run.name=straight")), weights_only=True)
    resumed = torch.load(train(load("run.name=resumed", f"train.resume={snapshots[2]}")), weights_only=True)
    weights = (lambda p: p["state_dict"]) if stage.startswith("tokenizer") else (lambda p: p["dynamics"]["state_dict"])
    assert resumed["step"] == straight["step"] == 6
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(resumed)[key]), key
