import pytest
import torch

from openjepa.data.stream import BatchStream, step_generator


def test_epoch_covers_every_index_once_and_is_seeded():
    x = torch.arange(100).view(100, 1, 1, 1).to(torch.uint8)
    s = BatchStream(x, batch_size=10, seed=3)
    seen = torch.cat([s.indices(step) for step in range(10)])
    assert sorted(seen.tolist()) == list(range(100))
    assert torch.equal(torch.cat([BatchStream(x, 10, seed=3).indices(k) for k in range(10)]), seen)
    assert not torch.equal(torch.cat([BatchStream(x, 10, seed=4).indices(k) for k in range(10)]), seen)
    # the next epoch is a different permutation of the same indices
    nxt = torch.cat([s.indices(step) for step in range(10, 20)])
    assert sorted(nxt.tolist()) == list(range(100)) and not torch.equal(nxt, seen)


def test_ranks_split_each_global_batch():
    x = torch.zeros(64, 1, 1, 1, dtype=torch.uint8)
    full = BatchStream(x, 16, seed=0).indices(2)
    parts = [BatchStream(x, 16, seed=0, rank=r, world=2).indices(2) for r in range(2)]
    assert torch.equal(torch.cat(parts), full)


def test_step_generator_is_a_function_of_seed_and_step():
    a = torch.rand(3, generator=step_generator(1, 5))
    assert torch.equal(a, torch.rand(3, generator=step_generator(1, 5)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(1, 6)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(2, 5)))


def test_too_small_dataset_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(torch.zeros(5, 1, 2, 2, dtype=torch.uint8), batch_size=8, seed=0)


def test_stream_of_dict_data_indexes_every_entry_alike():
    obs = torch.arange(20, dtype=torch.uint8).reshape(20, 1, 1, 1, 1).expand(20, 3, 1, 2, 2).contiguous()
    act = torch.arange(20, dtype=torch.float32).reshape(20, 1, 1).expand(20, 3, 2).contiguous()
    s = BatchStream({"obs": obs, "a": act}, batch_size=5, seed=1)
    b = s.batch(2)
    assert b["obs"].shape == (5, 3, 1, 2, 2) and b["a"].shape == (5, 3, 2)
    assert torch.equal(b["obs"][:, 0, 0, 0, 0].float(), b["a"][:, 0, 0])  # same rows in both entries
    with pytest.raises(ValueError, match="number of samples"):
        BatchStream({"obs": obs, "a": act[:19]}, batch_size=5, seed=1)
