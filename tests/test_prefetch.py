"""The background batch prefetcher: the same batches as the sampler alone, rewindable for exact resume."""

import numpy as np
import pytest
import torch

from ochre.data.windows import Batch
from ochre.training.prefetch import Prefetcher


def counter_sampler(seed=0):
    """A sampler whose batches are fixed by its numpy generator, like WindowSampler.sample."""
    rng = np.random.default_rng(seed)

    def draw():
        rows = torch.from_numpy(rng.integers(0, 1000, size=(2, 3)))
        return Batch(rows, rows.clone())

    return draw, rng


def rows_of(batches, n):
    return [batches.next().rows.tolist() for _ in range(n)]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetched_batches_are_the_samplers_own_in_order(depth):
    draw, rng = counter_sampler()
    expected = [draw().rows.tolist() for _ in range(8)]
    draw, rng = counter_sampler()
    assert rows_of(Prefetcher(draw, rng, depth), 8) == expected


def test_rewind_puts_the_generator_where_the_loop_stands():
    """After rewind the generator's state is that of a sampler that drew only the batches taken, so a training
    state saved then (and resumed) sees the batches of the uninterrupted run."""
    draw, rng = counter_sampler()
    plain = [draw().rows.tolist() for _ in range(9)]
    after_five = counter_sampler()
    for _ in range(5):
        after_five[0]()

    draw, rng = counter_sampler()
    batches = Prefetcher(draw, rng, depth=3)
    taken = rows_of(batches, 5)
    batches.rewind()
    assert rng.bit_generator.state == after_five[1].bit_generator.state
    taken += rows_of(batches, 4)  # the thread starts again from there
    batches.close()
    assert taken == plain


def test_rewind_before_any_batch_leaves_the_generator_alone():
    draw, rng = counter_sampler()
    start = rng.bit_generator.state
    batches = Prefetcher(draw, rng, depth=2)
    batches.rewind()
    assert rng.bit_generator.state == start


def test_a_sampler_error_is_raised_by_next_on_the_loop_thread():
    calls = []

    def draw():
        calls.append(1)
        if len(calls) == 2:
            raise OSError("shard_00003.frames.npy: read failed")
        return Batch(torch.zeros(1), torch.zeros(1))

    batches = Prefetcher(draw, np.random.default_rng(0), depth=2)
    batches.next()
    with pytest.raises(OSError, match="shard_00003"):
        batches.next()
