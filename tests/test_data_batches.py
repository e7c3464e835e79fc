"""BlockSampler: seeded epochs, resumption and the split of global batches across ranks."""

from __future__ import annotations

import numpy as np
import pytest

from sedd.data.batches import BlockSampler


def take(sampler: BlockSampler, count: int) -> list[list[int]]:
    return [sampler.next_batch().tolist() for _ in range(count)]


def test_epoch_is_permutation():
    sampler = BlockSampler(num_blocks=12, batch_size=4, seed=3)
    epoch = sum(take(sampler, 3), [])
    assert sorted(epoch) == list(range(12))
    assert epoch != list(range(12))
    assert sampler.state_dict()["epoch"] == 1
    assert sampler.state_dict()["position"] == 0


def test_same_seed_same_batches():
    assert take(BlockSampler(50, 8, seed=7), 10) == take(BlockSampler(50, 8, seed=7), 10)
    assert take(BlockSampler(50, 8, seed=7), 10) != take(BlockSampler(50, 8, seed=8), 10)


def test_epochs_differ():
    sampler = BlockSampler(20, 20, seed=0)
    first, second = take(sampler, 2)
    assert sorted(first) == sorted(second)
    assert first != second


def test_batch_spans_epoch_boundary():
    sampler = BlockSampler(num_blocks=10, batch_size=4, seed=1)
    stream = sum(take(sampler, 5), [])  # 20 items = two whole epochs
    assert sorted(stream[:10]) == list(range(10))
    assert sorted(stream[10:]) == list(range(10))
    assert stream[:10] == sampler.permutation(0).tolist()


def test_fewer_blocks_than_batch():
    batch = BlockSampler(num_blocks=3, batch_size=7, seed=2).next_batch()
    assert len(batch) == 7
    assert set(batch.tolist()) == {0, 1, 2}


def test_batch_dtype_and_shape():
    batch = BlockSampler(100, 16, seed=0).next_batch()
    assert batch.dtype == np.int64
    assert batch.shape == (16,)


def test_resume_continues_identically():
    uninterrupted = BlockSampler(37, 5, seed=11)
    expected = take(uninterrupted, 20)
    first = BlockSampler(37, 5, seed=11)
    head = take(first, 9)
    state = first.state_dict()
    resumed = BlockSampler(37, 5, seed=11)
    resumed.load_state_dict(state)
    assert head + take(resumed, 11) == expected


def test_iterator_matches_next_batch():
    iterator = iter(BlockSampler(30, 4, seed=5))
    manual = BlockSampler(30, 4, seed=5)
    assert [next(iterator).tolist() for _ in range(12)] == take(manual, 12)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_partition_global_batch(world_size):
    single = BlockSampler(num_blocks=41, batch_size=6 * world_size, seed=9)
    ranks = [BlockSampler(41, 6, seed=9, rank=r, world_size=world_size) for r in range(world_size)]
    for _ in range(15):
        expected = single.next_batch().tolist()
        parts = [sampler.next_batch().tolist() for sampler in ranks]
        assert sum(parts, []) == expected
        assert all(len(part) == 6 for part in parts)


def test_resume_with_other_world_size():
    single = BlockSampler(40, 8, seed=4)
    take(single, 3)
    state = single.state_dict()
    expected = take(single, 4)
    ranks = [BlockSampler(40, 4, seed=4, rank=r, world_size=2) for r in range(2)]
    for sampler in ranks:
        sampler.load_state_dict(state)
    for batch in expected:
        assert ranks[0].next_batch().tolist() + ranks[1].next_batch().tolist() == batch


def test_load_rejects_other_data():
    sampler = BlockSampler(40, 8, seed=4)
    with pytest.raises(ValueError, match="num_blocks=41 but this sampler has num_blocks=40"):
        sampler.load_state_dict({"epoch": 0, "position": 0, "num_blocks": 41, "seed": 4})
    with pytest.raises(ValueError, match="seed=5"):
        sampler.load_state_dict({"epoch": 0, "position": 0, "num_blocks": 40, "seed": 5})
    with pytest.raises(ValueError, match="position=40 is outside"):
        sampler.load_state_dict({"epoch": 0, "position": 40})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_blocks": 0, "batch_size": 1, "seed": 0}, "no blocks"),
        ({"num_blocks": 5, "batch_size": 0, "seed": 0}, "batch_size=0"),
        ({"num_blocks": 5, "batch_size": 1, "seed": -1}, "seed=-1"),
        ({"num_blocks": 5, "batch_size": 1, "seed": 0, "rank": 2, "world_size": 2}, "rank=2"),
    ],
)
def test_invalid_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        BlockSampler(**arguments)
