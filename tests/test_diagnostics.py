import math

import numpy as np
import pytest
import torch

from ochre.actions import ActionSpec, DiscreteActionSpec, FirstPersonActionSpec
from ochre.diagnostics import (
    action_response_grid,
    action_sensitivity,
    prediction_stats,
    random_action_pairs,
    rollout_strips,
    teacher_forced_tokens,
)
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer, TokenizerConfig

SPEC = DiscreteActionSpec("tiny", ("noop", "left", "right", "up", "left+up"))  # groups: left, right, up
FIRST_PERSON = FirstPersonActionSpec()  # groups: yaw, pitch, camera, movement, jump, attack, sprint, sneak
TINY = dict(codebook_size=32, token_grid=[8, 8], embed_dim=8, hidden_dim=8, layers=2, action_dim=8)
FRAME, PAD = 32, 2  # tokenizer frames are 32x32; image_grid pads by 2


def tiny_tokenizer() -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer(TokenizerConfig(frame_size=[FRAME, FRAME], channels=[8, 16], res_blocks=0, fsq_levels=[2, 2, 2, 4]))


def tiny_model(first_person: bool = False) -> Dynamics:
    torch.manual_seed(0)
    if first_person:
        return Dynamics(DynamicsConfig(**TINY, action_factors=list(FIRST_PERSON.factors), camera_factors=2))
    return Dynamics(DynamicsConfig(**TINY, num_actions=SPEC.n))


def randomise_films(model: Dynamics) -> None:
    """Give the zero-initialised FiLM projections weights, so actions change the hidden state."""
    torch.manual_seed(1)
    films = [*model.films, *getattr(model, "camera_films", [])]
    for film in films:
        torch.nn.init.normal_(film.proj.weight)


def seeds(spec: ActionSpec, batch: int = 3, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 32, (batch, k, 8, 8), generator=g)
    actions = torch.as_tensor(spec.sample(np.random.default_rng(3), size=(batch, k - 1)))
    return tokens, actions


def grid_shape(rows: int, cols: int) -> tuple[int, int, int]:
    return rows * (FRAME + PAD) + PAD, cols * (FRAME + PAD) + PAD, 3


@pytest.mark.parametrize("spec", [DiscreteActionSpec("pair", ("a", "b")), FIRST_PERSON])
def test_random_action_pairs_differ_at_every_step(spec):
    first, second = random_action_pairs(spec, np.random.default_rng(0), (16, 10))
    assert first.shape == second.shape == (16, 10, *spec.shape)
    assert not (first == second).reshape(16, 10, -1).all(-1).any()
    spec.validate(first)  # both draws are valid encoded actions
    spec.validate(second)


def test_random_action_pairs_refuse_a_single_action():
    with pytest.raises(ValueError, match="single action"):
        random_action_pairs(DiscreteActionSpec("one", ("noop",)), np.random.default_rng(0), (2, 3))


@pytest.mark.parametrize("first_person", [False, True])
def test_action_sensitivity_is_zero_without_action_effect_and_positive_with(first_person):
    spec = FIRST_PERSON if first_person else SPEC
    model, tokenizer = tiny_model(first_person), tiny_tokenizer()
    tokens, actions = seeds(spec)
    fresh = action_sensitivity(model, tokenizer, tokens, actions, spec)
    assert list(fresh) == [f"{kind}_sensitivity@{h}" for kind in ("action", "token") for h in (1, 5, 10)]
    assert all(v == 0.0 for v in fresh.values())

    randomise_films(model)
    used = action_sensitivity(model, tokenizer, tokens, actions, spec, horizons=(1, 3))
    assert set(used) == {"action_sensitivity@1", "action_sensitivity@3", "token_sensitivity@1", "token_sensitivity@3"}
    assert used["action_sensitivity@1"] > 0 and used["token_sensitivity@1"] > 0
    assert all(0 <= v <= 1 for v in used.values())


def test_action_sensitivity_is_reproducible_and_restores_training_flags():
    model, tokenizer = tiny_model(), tiny_tokenizer()
    randomise_films(model)
    tokens, actions = seeds(SPEC)
    model.train()
    tokenizer.eval()
    model.cells[0].eval()  # a mixed state must come back as it was
    run = lambda g=None: action_sensitivity(model, tokenizer, tokens, actions, SPEC, horizons=(2,), generator=g)
    assert run() == run()
    assert run(torch.Generator().manual_seed(5)) == run(torch.Generator().manual_seed(5))
    assert model.training and not model.cells[0].training and model.cells[1].training and not tokenizer.training


GROUPS = {False: ["left", "right", "up"], True: ["yaw", "pitch", "camera", "movement", "jump", "attack", "sprint", "sneak"]}


def grid_rows(image: np.ndarray, rows: int) -> list[np.ndarray]:
    return [image[PAD + r * (FRAME + PAD) :][:FRAME] for r in range(rows)]


@pytest.mark.parametrize("first_person", [False, True])
def test_action_response_grid_has_one_labelled_row_per_group(first_person):
    spec = FIRST_PERSON if first_person else SPEC
    model, tokenizer = tiny_model(first_person), tiny_tokenizer()
    tokens, actions = seeds(spec)
    rows = 1 + len(GROUPS[first_person])
    image, labels = action_response_grid(model, tokenizer, tokens, actions, spec, steps=4)
    margin = image.shape[1] - grid_shape(rows, 4 + 1)[1]  # the row labels are drawn in a margin at the left
    assert image.dtype == np.uint8 and image.shape == (grid_shape(rows, 4 + 1)[0], grid_shape(rows, 4 + 1)[1] + margin, 3)
    assert labels == ["noop", *GROUPS[first_person]]
    assert margin > 0 and all((s[:, :margin] < 128).any() for s in grid_rows(image, rows))  # dark text in every row
    image = image[:, margin:]
    strips = grid_rows(image, rows)
    assert all(np.array_equal(s, strips[0]) for s in strips)  # actions have no effect yet: every row the same

    randomise_films(model)
    model.train()
    image, _ = action_response_grid(model, tokenizer, tokens, actions, spec, steps=4)
    strips = grid_rows(image[:, margin:], rows)
    assert all(np.array_equal(s[:, : FRAME + PAD], strips[0][:, : FRAME + PAD]) for s in strips)  # same start frame
    assert any(not np.array_equal(s, strips[0]) for s in strips[1:])
    assert model.training


def test_prediction_stats_uniform_and_peaked():
    k = 32
    uniform = prediction_stats(torch.zeros(2, k, 4, 4))
    assert uniform["entropy"] == pytest.approx(math.log(k), rel=1e-5)
    assert uniform["max_prob"] == pytest.approx(1 / k)
    assert uniform["codes_in_use"] == 1

    tokens = torch.arange(2 * 4 * 4).view(2, 4, 4) % 20
    peaked = prediction_stats(torch.nn.functional.one_hot(tokens, k).permute(0, 3, 1, 2).float() * 50)
    assert peaked["entropy"] == pytest.approx(0, abs=1e-10)
    assert peaked["max_prob"] == pytest.approx(1)
    assert peaked["codes_in_use"] == 20 and peaked["code_perplexity"] == pytest.approx(20, rel=0.05)


def test_teacher_forced_tokens_match_the_teacher_forced_pass():
    model = tiny_model(first_person=True)
    randomise_films(model)
    tokens, actions = seeds(FIRST_PERSON, batch=2, k=5)
    pred = teacher_forced_tokens(model, tokens, actions)
    assert pred.shape == (2, 4, 8, 8) and pred.dtype == torch.long
    with torch.no_grad():
        _, logits = model.eval()(tokens[:, :-1], actions)
    assert torch.equal(pred, logits.argmax(2))


def test_rollout_strips_three_rows_per_item():
    tokenizer = tiny_tokenizer().train()
    truth, tf, ar = (torch.randint(0, 32, (5, 6, 8, 8)) for _ in range(3))
    image = rollout_strips(tokenizer, truth, tf, ar, max_items=2)
    assert image.dtype == np.uint8 and image.shape == grid_shape(3 * 2, 6)
    assert rollout_strips(tokenizer, truth[:1], tf[:1], ar[:1]).shape == grid_shape(3, 6)
    assert tokenizer.training
