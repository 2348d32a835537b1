import pytest
import torch

from ochre.errors import OchreError
from ochre.frames import to_model, to_uint8
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.fsq import FSQ
from ochre.models.tokenizer import Tokenizer, TokenizerConfig

torch.manual_seed(0)


def test_fsq_ids_round_trip_and_codebook():
    fsq = FSQ([8, 5, 5, 5])
    assert fsq.codebook_size == 1000
    ids = torch.arange(1000)
    assert torch.equal(fsq.codes_to_ids(fsq.ids_to_codes(ids)), ids)
    assert torch.equal(fsq.codebook(), fsq.ids_to_codes(ids))
    q = fsq(torch.randn(7, 4) * 3)
    assert torch.equal(fsq.ids_to_codes(q.ids), q.codes)
    assert q.codes.abs().max() <= 1 and q.loss == 0


def test_fsq_straight_through_gradient():
    z = torch.randn(5, 3, requires_grad=True)
    FSQ([5, 5, 5])(z).codes.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_tokenizer_shapes_and_decode_matches_forward():
    cfg = TokenizerConfig(channels=[8, 16], res_blocks=1, fsq_levels=[5, 5, 5])
    model = Tokenizer(cfg).eval()
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    x = to_model(frames)
    assert x.shape == (3, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    out = model(x)
    assert out.tokens.shape == (3, 16, 16) and out.tokens.max() < model.codebook_size
    assert torch.allclose(model.decode_tokens(out.tokens), out.recon, atol=1e-5)
    onehot = torch.nn.functional.one_hot(out.tokens, model.codebook_size).permute(0, 3, 1, 2).float()
    assert torch.allclose(model.decode_embeddings(onehot), out.recon, atol=1e-4)
    assert to_uint8(out.recon).shape == (3, 64, 64, 3)


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_tokenizer_round_trip_non_square_and_both_quantizers(quantizer):
    cfg = TokenizerConfig(frame_size=[72, 128], channels=[8, 16], res_blocks=1, quantizer=quantizer, vq_codes=64, vq_dim=8)
    model = Tokenizer(cfg)
    x = to_model(torch.randint(0, 256, (2, 72, 128, 3), dtype=torch.uint8))
    model.train()(x)  # one training call: VQ initialises its codebook from these latents
    model.eval()
    tokens, z_q = model.encode(x)
    assert tokens.shape == (2, 18, 32) and cfg.token_grid == (18, 32) and z_q.shape == (2, cfg.embed_dim, 18, 32)
    assert torch.allclose(model.decode_tokens(tokens), model.decode_codes(z_q), atol=1e-5)
    assert model.codebook_size == (64 if quantizer == "vq" else 1000)


@pytest.mark.parametrize("encoder_blocks, far_cells_move", [(0, False), (-1, True)])
def test_encoder_res_blocks_sets_how_far_a_token_looks(encoder_blocks, far_cells_move):
    """With no encoder blocks a token sees about its own 4x4 patch; the default blocks see far past it."""
    torch.manual_seed(0)
    cfg = TokenizerConfig(channels=[8, 16], res_blocks=2, encoder_res_blocks=encoder_blocks)
    model = Tokenizer(cfg).eval()
    x = torch.zeros(1, 3, 64, 64)
    poked = x.clone()
    poked[:, :, 30:32, 30:32] = 1.0  # a small object in token cell (7, 7)
    with torch.no_grad():
        moved = (model.encoder(poked) - model.encoder(x)).abs().amax(1)[0] > 1e-6
    assert moved[7, 7]
    assert bool(moved[:, :5].any()) == far_cells_move  # columns 0-4 see pixels 0-22 at most without blocks


@pytest.mark.parametrize("patch, cells_moved", [(False, 4), (True, 1)])
def test_encoder_patch_keeps_a_pixel_to_its_own_token(patch, cells_moved):
    """A pixel at a patch's corner: 4x4 kernels also change the three tokens diagonally before it, a patch encoder only its own."""
    torch.manual_seed(0)
    model = Tokenizer(TokenizerConfig(channels=[8, 16], res_blocks=1, encoder_res_blocks=0, encoder_patch=patch)).eval()
    x = torch.zeros(1, 3, 64, 64)
    poked = x.clone()
    poked[:, :, 28, 28] = 1.0  # the top-left pixel of token cell (7, 7)
    with torch.no_grad():
        moved = (model.encoder(poked) - model.encoder(x)).abs().amax(1)[0] > 1e-6
    assert moved[7, 7] and int(moved.sum()) == cells_moved
    assert model.encode(x)[0].shape == (1, 16, 16)


def test_encoder_res_blocks_is_checked():
    with pytest.raises(ValueError, match="encoder_res_blocks -2"):
        TokenizerConfig(encoder_res_blocks=-2)
    with pytest.raises(ValueError, match="encoder_patch needs encoder_res_blocks: 0"):
        TokenizerConfig(encoder_patch=True)


def test_tokenizer_names_wrong_frame_size():
    model = Tokenizer(TokenizerConfig(channels=[8, 16], res_blocks=1))
    with pytest.raises(OchreError, match=r"frames are \(32, 32\) but this tokenizer takes \(64, 64\)"):
        model.encode(torch.zeros(1, 3, 32, 32))


def test_frame_conversion_round_trip():
    frames = torch.randint(0, 256, (2, 5, 64, 64, 3), dtype=torch.uint8).numpy()
    assert (to_uint8(to_model(frames)) == frames).all()


def tiny_dynamics(**kw) -> Dynamics:
    cfg = dict(codebook_size=32, token_grid=[8, 8], num_actions=5, embed_dim=8, hidden_dim=8, layers=2, action_dim=8)
    return Dynamics(DynamicsConfig(**(cfg | kw)))


FIRST_PERSON = dict(action_factors=[7, 7, 2, 2, 2, 2, 2, 2, 2, 2], camera_factors=2)


def random_actions(model: Dynamics, *shape: int) -> torch.Tensor:
    factors = model.cfg.factors
    if not model.cfg.action_factors:
        return torch.randint(0, factors[0], shape)
    return torch.stack([torch.randint(0, f, shape) for f in factors], -1)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"memory": 3, "memory_heads": 2},
        FIRST_PERSON | {"memory": 4, "memory_heads": 2},
        FIRST_PERSON | {"head_frames": 2, "camera_shift": [0.5] * 14},
        FIRST_PERSON | {"head_frames": 2, "move_zoom": [0.1, 0.0, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0]},
    ],
)
def test_forward_sequence_matches_repeated_step(extra):
    model = tiny_dynamics(**extra).eval()
    for p in model.parameters():  # zero-initialised layers (FiLM, memory output) would hide a mismatch
        torch.nn.init.normal_(p, std=0.3)
    tokens = torch.randint(0, 32, (2, 6, 8, 8))
    actions = random_actions(model, 2, 6)
    _, seq_logits = model(tokens, actions)
    state = model.initial_state(2)
    for t in range(6):
        state, logits = model.step(state, tokens[:, t], actions[:, t])
        assert torch.allclose(logits, seq_logits[:, t], atol=1e-5)
    assert state.step == 6


def test_memory_reads_the_past_and_never_the_future():
    model = tiny_dynamics(memory=4, memory_heads=2).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    tokens, actions = torch.randint(0, 32, (1, 6, 8, 8)), torch.randint(0, 5, (1, 6))
    _, before = model(tokens, actions)
    changed = tokens.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 32
    _, after = model(changed, actions)
    assert torch.allclose(before[:, :3], after[:, :3]) and not torch.allclose(before[:, 3:], after[:, 3:])
    state = model.initial_state(1)
    for t in range(6):
        state, _ = model.step(state, tokens[:, t], actions[:, t])
    assert state.memory.shape == (1, 4, 4, 8)  # L steps x pool^2 positions x channels


def test_camera_and_movement_have_separate_pathways():
    model = tiny_dynamics(**FIRST_PERSON).eval()
    assert len(model.camera_films) == len(model.films) == 2
    for film in [*model.films, *model.camera_films]:
        torch.nn.init.normal_(film.proj.weight)
    tokens, state = torch.randint(0, 32, (1, 8, 8)), model.initial_state(1)
    base = torch.tensor([[3, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    turn, walk = base.clone(), base.clone()
    turn[0, 0], walk[0, 2] = 6, 1
    logits = {name: model.step(state, tokens, a)[1] for name, a in {"base": base, "turn": turn, "walk": walk}.items()}
    assert not torch.allclose(logits["base"], logits["turn"]) and not torch.allclose(logits["base"], logits["walk"])
    loss = logits["turn"].sum()
    loss.backward()
    assert model.camera_embed[0].weight.grad.abs().sum() > 0 and model.action_embed[0].weight.grad is not None


def test_translate_moves_content_by_whole_and_half_cells():
    from ochre.models.dynamics import translate

    x = torch.zeros(1, 1, 4, 6)
    x[0, 0, 1, 2] = 1.0
    moved = translate(x, torch.tensor([1.0]), torch.tensor([2.0]))[0, 0]
    assert moved[3, 3] == 1.0 and moved.sum() == 1.0  # right 1, down 2
    half = translate(x, torch.tensor([-0.5]), torch.tensor([0.0]))[0, 0]
    assert torch.allclose(half[1, 1:3], torch.tensor([0.5, 0.5])) and half.sum() == 1.0
    assert translate(x, torch.tensor([-3.0]), torch.tensor([0.0])).sum() == 0  # shifted out: zeros come in


def test_camera_warp_shifts_the_view_and_learns_its_size():
    shift = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0] + [0.0] * 7  # yaw bins move x by -3..3 cells, pitch does nothing
    warped = tiny_dynamics(**FIRST_PERSON, camera_shift=shift).eval()
    plain = tiny_dynamics(**FIRST_PERSON).eval()
    plain.load_state_dict({k: v for k, v in warped.state_dict().items() if k not in ("camera_shift", "warp_gate")})
    tokens, state = torch.randint(0, 32, (1, 8, 8)), warped.initial_state(1)
    still = torch.tensor([[3, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert torch.allclose(warped.step(state, tokens, still)[1], plain.step(state, tokens, still)[1], atol=1e-5)  # still: no warp
    turn = still.clone()
    turn[0, 0] = 5  # two cells right
    with torch.no_grad():
        warped.warp_gate.fill_(30.0)  # the gate fully open: everything turns with the view
    emb, hidden, previous = warped.warp(warped.embed(tokens), [torch.ones(1, 8, 4, 4)], turn, warped.embed(tokens))
    assert torch.allclose(emb[..., 2:], warped.embed(tokens)[..., :-2], atol=1e-6) and emb[..., :2].abs().sum() == 0
    assert torch.equal(previous, emb)  # the last frame (head_frames 2) turns with the view too
    assert hidden[0][..., 0].sum() == 0 and hidden[0][..., 1:].min() == 1  # half resolution: one cell
    with torch.no_grad():
        warped.warp_gate[6:].fill_(-30.0)  # the bottom rows stay on the screen (a weapon)
    emb, hidden, _ = warped.warp(warped.embed(tokens), [torch.ones(1, 8, 4, 4)], turn)
    assert torch.allclose(emb[..., 6:, :], warped.embed(tokens)[..., 6:, :]) and hidden[0][..., 3:, :].min() == 1
    assert torch.allclose(emb[..., :6, 2:], warped.embed(tokens)[..., :6, :-2], atol=1e-6)
    warped.step(state, tokens, turn)[1].square().sum().backward()
    assert warped.camera_shift.grad[5] != 0 and warped.camera_shift.grad[3] == 0 and warped.warp_gate.grad.abs().sum() > 0


def test_movement_zoom_grows_the_view_forward_and_learns_its_size():
    zoom = [0.7, 0.0, -0.7, 0.0, 0.0, 0.0, 0.0, 0.0]  # forward doubles the picture about its centre, back halves it
    model = tiny_dynamics(**FIRST_PERSON, move_zoom=zoom).eval()
    with torch.no_grad():
        model.warp_gate.fill_(30.0)
    ring = torch.zeros(1, 1, 8, 8)
    ring[..., 2:6, 2:6] = 1.0
    ring[..., 3:5, 3:5] = 0.0  # a square outline around the centre
    still = torch.tensor([[3, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    forward, back = still.clone(), still.clone()
    forward[0, 2], back[0, 4] = 1, 1

    def spread(x: torch.Tensor) -> float:  # mean distance of the mass from the centre
        yy, xx = torch.meshgrid(torch.arange(8.0) - 3.5, torch.arange(8.0) - 3.5, indexing="ij")
        return float((x[0, 0] * torch.hypot(yy, xx)).sum() / x[0, 0].sum())

    moved = {
        name: model.warp(ring, [torch.ones(1, 8, 4, 4)], a)[0]
        for name, a in {"still": still, "fwd": forward, "back": back}.items()
    }
    assert torch.equal(moved["still"], ring)
    assert spread(moved["fwd"]) > 1.5 * spread(ring) and spread(moved["back"]) < 0.8 * spread(ring)
    model.step(model.initial_state(1), torch.randint(0, 32, (1, 8, 8)), forward)[1].square().sum().backward()
    assert model.move_zoom.grad[0] != 0 and model.move_zoom.grad[2] == 0  # only the held control learns


def test_camera_warp_config_is_checked():
    with pytest.raises(ValueError, match="one value per yaw and pitch bin"):
        DynamicsConfig(codebook_size=32, **FIRST_PERSON, camera_shift=[0.0] * 13)
    with pytest.raises(ValueError, match="camera_factors 2"):
        DynamicsConfig(codebook_size=32, num_actions=5, camera_shift=[0.0] * 14)
    with pytest.raises(ValueError, match="move_zoom needs one value per non-camera control"):
        DynamicsConfig(codebook_size=32, num_actions=5, move_zoom=[0.1])  # one categorical, not on/off buttons


def test_single_factor_embedding_is_a_plain_embedding():
    from ochre.models.dynamics import FactoredEmbedding

    emb = FactoredEmbedding([5], 4)
    assert list(emb.state_dict()) == ["weight"]
    assert torch.equal(emb(torch.tensor([2, 4])), emb.weight[[2, 4]])
    two = FactoredEmbedding([3, 2], 4)
    assert torch.equal(two(torch.tensor([[1, 1]])), (two.weight[1] + two.weight[3 + 1])[None])


def test_inverse_dynamics_learns_the_action_from_frame_pairs():
    """On frames where the action visibly moves a block, the IDM head learns to read it back."""
    torch.manual_seed(0)
    model = tiny_dynamics(idm_span=2, num_actions=3)
    opt = torch.optim.Adam(model.idm.parameters(), lr=3e-3)
    for _ in range(150):
        actions = torch.randint(0, 3, (32, 1))
        start = torch.zeros(32, 8, 8, dtype=torch.long)
        start[:, 3, 0] = 1
        end = torch.zeros_like(start)
        end[torch.arange(32), 3, actions[:, 0] * 2] = 1  # the block moves 0, 2 or 4 columns
        logits = model.idm(model.embed(start), model.embed(end), torch.ones(32, dtype=torch.long))
        loss, acc = model.idm.loss(logits, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 and acc.item() > 0.95


def test_dynamics_is_causal():
    """Logits at step t may depend on frames <= t only: changing frame t+1 leaves them unchanged."""
    model = tiny_dynamics().eval()
    tokens = torch.randint(0, 32, (1, 4, 8, 8))
    actions = torch.randint(0, 5, (1, 4))
    _, before = model(tokens, actions)
    changed = tokens.clone()
    changed[:, 2] = (changed[:, 2] + 1) % 32
    _, after = model(changed, actions)
    assert torch.allclose(before[:, :2], after[:, :2])
    assert not torch.allclose(before[:, 2], after[:, 2])


def test_action_changes_prediction_once_film_is_trained():
    model = tiny_dynamics().eval()
    tokens = torch.randint(0, 32, (1, 8, 8))
    state = model.initial_state(1)
    _, a = model.step(state, tokens, torch.tensor([0]))
    _, b = model.step(state, tokens, torch.tensor([1]))
    assert torch.allclose(a, b)  # FiLM starts as the identity ...
    for film in model.films:
        torch.nn.init.normal_(film.proj.weight)
    _, a = model.step(state, tokens, torch.tensor([0]))
    _, b = model.step(state, tokens, torch.tensor([1]))
    assert not torch.allclose(a, b)  # ... and the action reaches the output through it


def test_state_clone_is_independent():
    model = tiny_dynamics(head_frames=2)
    state, _ = model.step(model.initial_state(1), torch.randint(0, 32, (1, 8, 8)), torch.tensor([0]))
    copy = state.clone()
    copy.hidden[0] += 1
    copy.previous += 1
    assert not torch.equal(state.hidden[0], copy.hidden[0]) and not torch.equal(state.previous, copy.previous)
    assert state.expand(3).previous.shape == (3, 8, 8, 8)


def test_head_frames_two_gives_the_head_the_previous_embedding():
    tokens, action = torch.randint(0, 32, (1, 8, 8)), torch.tensor([2])
    one = tiny_dynamics()
    assert one.step(one.initial_state(1), tokens, action)[0].previous is None
    model = tiny_dynamics(head_frames=2).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    state, _ = model.step(model.initial_state(1), tokens, action)
    assert torch.equal(state.previous, model.embed(tokens))
    moved = state.clone()
    moved.previous = model.embed(torch.roll(tokens, 1, dims=-1))  # same hidden state, a different last frame
    nxt = torch.randint(0, 32, (1, 8, 8))
    assert not torch.allclose(model.step(state, nxt, action)[1], model.step(moved, nxt, action)[1])


def test_head_frames_config_is_checked():
    with pytest.raises(ValueError, match="head_frames"):
        tiny_dynamics(head_frames=3)
