"""opgraph.data: the bundled digits, the DataLoader and the MNIST IDX reader."""
import gzip
import struct

import numpy as np
import pytest

import opgraph
from opgraph import data


# ---------------------------------------------------------------------------
# bundled digits


def test_load_digits_split_shapes_and_ranges():
    (x, y), (xt, yt) = data.load_digits()
    assert x.shape == (1438, 1, 8, 8) and xt.shape == (359, 1, 8, 8)
    assert len(x) + len(xt) == 1797
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 1
    assert set(np.unique(y)) == set(range(10)) == set(np.unique(yt))
    # stratified: 35-37 test images of each class
    assert np.bincount(yt).min() >= 35 and np.bincount(yt).max() <= 37
    # raw grey levels are the integers 0..16
    (xr, _), _ = data.load_digits(normalize=False)
    assert np.array_equal(xr, np.round(xr)) and xr.max() == 16
    (xf, _), _ = data.load_digits(flatten=True)
    assert xf.shape == (1438, 64)


def test_load_digits_is_fixed():
    (x1, y1), (t1, u1) = data.load_digits()
    (x2, y2), (t2, u2) = data.load_digits()
    assert np.array_equal(x1, x2) and np.array_equal(u1, u2)
    # a fingerprint of the split: a change to digits.npz has to be deliberate
    assert y1[:10].tolist() == [9, 8, 1, 3, 0, 7, 7, 4, 3, 8]
    assert u1[:10].tolist() == [1, 5, 6, 1, 0, 8, 4, 4, 2, 2]
    (raw, _), (raw_test, _) = data.load_digits(normalize=False)
    assert (int(raw.sum()), int(raw_test.sum())) == (449992, 111726)
    assert y1.sum() + u1.sum() == 8070  # the sum of the 1,797 labels of the UCI set


def test_digits_ship_with_their_attribution():
    license_file = data.DIGITS_PATH.parent / "DIGITS_LICENSE.txt"
    text = license_file.read_text()
    assert "CC BY 4.0" in text and "Alpaydin" in text and "10.24432/C50P49" in text
    with np.load(data.DIGITS_PATH, allow_pickle=False) as f:
        assert sorted(f.files) == ["test_images", "test_labels", "train_images", "train_labels"]
        assert f["train_images"].dtype == np.uint8


def test_make_digits_script_reproduces_the_bundled_file(tmp_path):
    pytest.importorskip("sklearn")
    import importlib.util
    import pathlib
    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "make_digits.py"
    spec = importlib.util.spec_from_file_location("make_digits", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out-dir", str(tmp_path)])
    with np.load(tmp_path / "digits.npz") as new, np.load(data.DIGITS_PATH) as old:
        for key in old.files:
            assert np.array_equal(new[key], old[key]), key
    assert (tmp_path / "DIGITS_LICENSE.txt").read_text() == \
        (data.DIGITS_PATH.parent / "DIGITS_LICENSE.txt").read_text()


# ---------------------------------------------------------------------------
# DataLoader


def test_batches_in_order_without_shuffle():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    loader = data.DataLoader((x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert isinstance(xb, opgraph.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)


def test_drop_last():
    loader = data.DataLoader((np.zeros((10, 2)), np.zeros(10, dtype=np.int32)), batch_size=4,
                             drop_last=True)
    assert len(loader) == 2 and [len(b) for b, _ in loader] == [4, 4]
    assert list(loader)[0][1].dtype == np.int64


def test_shuffle_is_a_seeded_permutation_that_changes_every_epoch():
    y = np.arange(100)
    loader = data.DataLoader((y,), batch_size=32, shuffle=True, seed=0)
    epoch1 = np.concatenate([b.numpy() for b in loader])
    epoch2 = np.concatenate([b.numpy() for b in loader])
    assert sorted(epoch1) == list(y) and sorted(epoch2) == list(y)
    assert not np.array_equal(epoch1, y) and not np.array_equal(epoch1, epoch2)
    again = data.DataLoader((y,), batch_size=32, shuffle=True, seed=0)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in again]), epoch1)
    other = data.DataLoader((y,), batch_size=32, shuffle=True, seed=1)
    assert not np.array_equal(np.concatenate([b.numpy() for b in other]), epoch1)


def test_pairs_stay_together_when_shuffled():
    x = np.arange(50, dtype=np.float64) * 2
    y = np.arange(50)
    for xb, yb in data.DataLoader((x, y), batch_size=7, shuffle=True, seed=3):
        np.testing.assert_array_equal(xb.numpy(), 2 * yb.numpy())
        assert xb.dtype == np.float64


def test_a_single_array_and_a_custom_dataset():
    single = list(data.DataLoader(np.ones((5, 3), dtype=np.float32), batch_size=2))
    assert [b.shape for b in single] == [(2, 3), (2, 3), (1, 3)]

    class Squares:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return np.array([i], dtype=np.float32), i * i

    batches = list(data.DataLoader(Squares(), batch_size=4))
    assert batches[0][0].shape == (4, 1)
    np.testing.assert_array_equal(batches[1][1].numpy(), [16, 25])


def test_tensors_go_to_the_requested_backend(backend):
    loader = data.DataLoader((np.ones((3, 2), dtype=np.float32), np.arange(3)), batch_size=2,
                             backend=backend)
    xb, yb = next(iter(loader))
    assert xb.backend is backend and yb.backend is backend


def test_dataloader_errors():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        data.DataLoader((np.zeros(3),), batch_size=0)
    with pytest.raises(ValueError, match=r"different lengths \(shapes \(3,\), \(4,\)\)"):
        data.DataLoader((np.zeros(3), np.zeros(4)))
    # a Tensor dataset works too
    (b,) = list(data.DataLoader(opgraph.ones(2, 2), batch_size=5))
    assert b.shape == (2, 2)


# ---------------------------------------------------------------------------
# MNIST IDX


def _write_idx(path, array, code=0x08, compress=False):
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + np.asarray(array, dtype=dtype).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(raw)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3)).astype(np.uint8)
    got = data.read_idx(_write_idx(tmp_path / "a", images, compress=compress))
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    for code, arr in [(0x09, np.array([-3, 5], dtype=np.int8)),
                      (0x0B, np.array([[-300, 7]], dtype=np.int16)),
                      (0x0C, np.array([70000, -1], dtype=np.int32)),
                      (0x0D, np.array([1.5, -2.25], dtype=np.float32)),
                      (0x0E, np.array([np.pi], dtype=np.float64))]:
        out = data.read_idx(_write_idx(tmp_path / f"t{code}", arr, code, compress))
        assert out.dtype.isnative and np.array_equal(out, arr)


def test_read_idx_rejects_files_that_are_not_idx(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not an IDX file")
    with pytest.raises(ValueError, match=r"notes.txt is not an IDX file"):
        data.read_idx(text)
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(b"\x89PNG\r\n")
    with pytest.raises(ValueError, match="is not an IDX file"):
        data.read_idx(tmp_path / "x.gz")
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 3, 3) + b"\x00" * 5)
    with pytest.raises(ValueError, match=r"5 bytes of data.*shape \(3, 3\).*needs 9"):
        data.read_idx(short)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(bytes([0, 0, 8, 3]) + b"\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(truncated)
    bad_gzip = tmp_path / "bad.gz"
    bad_gzip.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        data.read_idx(bad_gzip)


def _fake_mnist(directory, n_train=20, n_test=10, size=12, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, size, size)).astype(np.uint8)
        _write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_a_directory(tmp_path, compress):
    _fake_mnist(tmp_path, compress=compress)
    (x, y), (xt, yt) = data.load_mnist(tmp_path)
    assert x.shape == (20, 1, 12, 12) and xt.shape == (10, 1, 12, 12)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and y.dtype == np.int64
    raw = data.read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if compress else "")))
    np.testing.assert_allclose(x[:, 0], raw / 255.0, rtol=1e-6)
    (xf, _), _ = data.load_mnist(tmp_path, flatten=True)
    assert xf.shape == (20, 144)


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist(tmp_path)
    _fake_mnist(tmp_path, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train images of shape \(20, 12, 12\) and labels of "
                                         r"shape \(3,\)"):
        data.load_mnist(tmp_path)
