"""Dataset, Subset, ConcatDataset, random_split, default_collate and the DataLoader's torch
options (collate_fn, sampler, batch_sampler, batch_size=None, generator)."""
import numpy as np
import pytest

import opgraph as og
from opgraph import data


class Squares(data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.array([i, i * i], np.float32), "y": i % 3, "name": f"n{i}"}


def test_a_dataset_of_dicts_is_collated_key_by_key(backend):
    loader = data.DataLoader(Squares(5), batch_size=2, backend=backend)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    first = batches[0]
    assert first["x"].shape == (2, 2) and first["x"].dtype == np.float32
    assert first["x"].backend is backend
    assert first["y"].dtype == np.int64 and first["y"].tolist() == [0, 1]
    assert first["name"] == ["n0", "n1"]


def test_the_default_batch_size_is_one_as_torch():
    batches = list(data.DataLoader(np.arange(3.0)))
    assert [b.shape for b in batches] == [(1,)] * 3


def test_collate_fn_receives_the_list_of_examples():
    seen = []

    def collate(items):
        seen.append(len(items))
        return sum(int(item[1]) for item in items)

    ds = data.TensorDataset(np.zeros((5, 2)), np.arange(5))
    out = list(data.DataLoader(ds, batch_size=2, collate_fn=collate))
    assert out == [1, 5, 4] and seen == [2, 2, 1]
    assert list(data.DataLoader(ds, batch_size=2, drop_last=True, collate_fn=collate)) == [1, 5]


def test_samplers_and_unbatched_loading():
    ds = data.TensorDataset(np.arange(6.0), np.arange(6))
    xs = [b[0].tolist() for b in data.DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 0])]
    assert xs == [[5.0, 4.0], [3.0, 0.0]]
    loader = data.DataLoader(ds, batch_sampler=[[0, 1, 2], [5]])
    assert len(loader) == 2 and [len(b[1]) for b in loader] == [3, 1]
    single = list(data.DataLoader(ds, batch_size=None))
    assert len(single) == 6 and float(single[2][0]) == 2.0  # examples, not batches
    a = [b[1].tolist() for b in data.DataLoader(ds, batch_size=3, shuffle=True,
                                                generator=np.random.default_rng(4))]
    b = [b[1].tolist() for b in data.DataLoader(ds, batch_size=3, shuffle=True, generator=4)]
    assert a == b and sorted(sum(a, [])) == list(range(6))


def test_subset_concat_and_random_split():
    ds = data.TensorDataset(np.arange(10.0) * 10, np.arange(10))
    sub = data.Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1] == 7 and sub[1][0] == 20.0
    both = data.ConcatDataset([sub, ds])
    assert len(both) == 12 and both[2][1] == 0 and both[-1][1] == 9
    assert len(sub + ds) == 12
    parts = data.random_split(ds, [3, 7], generator=0)
    assert [len(p) for p in parts] == [3, 7]
    picked = sorted(int(p[i][1]) for p in parts for i in range(len(p)))
    assert picked == list(range(10))  # a partition
    again = data.random_split(ds, [3, 7], generator=np.random.default_rng(0))
    assert parts[0].indices == again[0].indices
    fractions = data.random_split(ds, [0.25, 0.25, 0.5], generator=1)
    assert [len(p) for p in fractions] == [3, 2, 5]  # 2, 2, 5 plus the leftover one to the first
    batch = next(iter(data.DataLoader(parts[1], batch_size=4)))
    assert batch[0].shape == (4,) and batch[1].dtype == np.int64


@pytest.mark.parametrize("call, error, match", [
    (lambda: data.random_split(np.arange(5), [2, 2]), ValueError,
     r"random_split: the lengths \[2, 2\] sum to 4, but the dataset has 5 examples"),
    (lambda: data.random_split(np.arange(5), [0.5, 0.6]), ValueError, r"random_split: lengths"),
    (lambda: data.random_split(np.arange(5), [-1, 6]), ValueError, r"random_split: lengths"),
    (lambda: data.Subset(np.arange(5), [1, 9]), IndexError,
     r"Subset: index 9 is out of range for a dataset of 5 examples"),
    (lambda: data.DataLoader(np.arange(5), batch_size=0), ValueError,
     r"DataLoader: batch_size must be a positive int"),
    (lambda: data.DataLoader(np.arange(5), collate_fn=3), TypeError,
     r"DataLoader: collate_fn must be callable"),
    (lambda: data.DataLoader(np.arange(5), sampler=[0], shuffle=True), ValueError,
     r"DataLoader: sampler excludes shuffle"),
    (lambda: data.DataLoader(np.arange(5), batch_size=2, batch_sampler=[[0]]), ValueError,
     r"DataLoader: batch_sampler excludes"),
    (lambda: list(data.DataLoader(data.Dataset())), NotImplementedError,
     r"Dataset.__len__ is not written"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_list_of_pairs_is_a_list_of_examples_as_torch():
    # torch's idiom DataLoader(list(zip(X, Y))): a batch of pairs becomes a pair of batches
    first, last = list(data.DataLoader([(1.0, 2), (3.0, 4), (5.0, 6)], batch_size=2))
    assert first[0].tolist() == [1.0, 3.0] and first[0].dtype == np.float64  # as torch
    assert first[1].tolist() == [2, 4] and first[1].dtype == np.int64
    assert last[0].tolist() == [5.0] and last[1].tolist() == [6]
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6)
    for xb, yb in data.DataLoader(list(zip(x, y)), batch_size=4, shuffle=True, generator=0):
        assert xb.shape[1:] == (2,) and xb.dtype == np.float32
        np.testing.assert_array_equal(xb.numpy()[:, 0], 2 * yb.numpy())
    pairs = [(og.tensor([1.0, 1.0]), {"id": 0, "w": np.float32(0.5)}),
             (og.tensor([2.0, 2.0]), {"id": 1, "w": np.float32(1.5)})]
    xb, meta = next(iter(data.DataLoader(pairs, batch_size=2)))
    assert xb.shape == (2, 2) and meta["id"].tolist() == [0, 1]
    assert meta["w"].dtype == np.float32
    item = data.TensorDataset(np.arange(3.0), np.arange(3))[1]  # Tensors, 0-d, as torch
    assert all(isinstance(v, og.Tensor) and v.shape == () for v in item)


@pytest.mark.parametrize("examples, error, match", [
    ([np.zeros(2), np.zeros(3)], ValueError, r"default_collate: the examples have different "
                                             r"shapes \(\(2,\), \(3,\)\)"),
    ([(1, 2), (1,)], ValueError, r"different numbers of fields"),
    ([{"a": 1}, {"b": 2}], ValueError, r"dicts with different keys"),
    ([None, None], TypeError, r"default_collate: an example field is a NoneType"),
])
def test_examples_that_do_not_collate(examples, error, match):
    with pytest.raises(error, match=match):
        list(data.DataLoader(examples, batch_size=2))
