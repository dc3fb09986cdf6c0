"""Data: a batch iterator, the bundled handwritten digits, and an MNIST IDX reader.

    (x_train, y_train), (x_test, y_test) = opgraph.data.load_digits()
    for xb, yb in opgraph.data.DataLoader((x_train, y_train), batch_size=64,
                                          shuffle=True, seed=0):
        ...   # xb: float32 Tensor (64, 1, 8, 8), yb: int64 Tensor (64,)

Datasets are plain NumPy arrays on the host; the DataLoader turns each batch
into Tensors on the default backend (or the one you pass).
"""
import gzip
import math
import os
import pathlib
import struct

import numpy as np

from .tensor import Tensor, default_generator, get_default_backend

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "default_collate", "DataLoader", "load_digits", "read_idx", "load_mnist", "DIGITS_PATH"]

DIGITS_PATH = pathlib.Path(__file__).resolve().parent / "datasets" / "digits.npz"


# ---------------------------------------------------------------------------
# datasets and the batch iterator


class Dataset:
    """Base class of map-style datasets, as torch.utils.data.Dataset: subclass it and write
    `__getitem__(index)` (one example: an array, a number, a tuple or a dict of them) and
    `__len__`. `a + b` concatenates two datasets."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}.__getitem__ is not written")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__}.__len__ is not written")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Arrays (NumPy arrays or Tensors) of equal length, indexed together:
    `ds[i]` is a tuple with one item from each array, as Tensors (as torch's)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        self.arrays = tuple(a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        # where each item goes back to: a Tensor's backend, else the default one (None)
        self._backends = tuple(a.backend if isinstance(a, Tensor) else None for a in arrays)
        if any(a.ndim == 0 for a in self.arrays):
            raise ValueError("TensorDataset: every array needs a first (example) dim, got a "
                             "0-d array")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset: the arrays have different lengths (shapes {shapes})")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(_to_tensor(a[index], backend or get_default_backend())
                     for a, backend in zip(self.arrays, self._backends))


class Subset(Dataset):
    """The examples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in (indices.tolist() if hasattr(indices, "tolist")
                                         else indices)]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: index {bad[0]} is out of range for a dataset of {n} "
                             "examples")

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.dataset[self.indices[int(i)]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self):
        return int(self.cumulative_sizes[-1]) if self.cumulative_sizes else 0

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for {n} examples")
        index %= n
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = int(self.cumulative_sizes[k - 1]) if k else 0
        return self.datasets[k][index - start]


def _generator(generator, seed=None):
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is not None:
        if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)):
            raise TypeError(f"expected a numpy Generator or an int seed, got "
                            f"{type(generator).__name__}")
        return np.random.default_rng(int(generator))
    return np.random.default_rng(seed) if seed is not None else default_generator()


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping Subsets of the given lengths, or of the given
    fractions of its length (summing to 1; the examples left over by rounding down go one
    each to the first subsets, as torch). `generator`: a numpy Generator or an int seed."""
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    fractions = all(isinstance(x, (float, np.floating)) and 0 <= x <= 1 for x in lengths) \
        and any(isinstance(x, (float, np.floating)) for x in lengths)
    if fractions and math.isclose(sum(lengths), 1) and sum(lengths) <= 1 + 1e-9:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0
           for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                         f"summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, but the "
                         f"dataset has {n} examples")
    order = _generator(generator).permutation(n)
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, order[start:start + k]))
        start += k
    return out


def default_collate(batch):
    """A list of examples as one batch, as torch's default_collate: arrays, numbers and
    Tensors are stacked into one Tensor (float arrays keep float32/float64, Python floats
    become float64 as in torch, integers int64), tuples and lists are collated position by
    position (a batch of (x, y) pairs becomes a pair of batches) and dicts key by key;
    strings stay a list."""
    if not isinstance(batch, (list, tuple)) or not batch:
        raise TypeError(f"default_collate: expects a non-empty list of examples, got "
                        f"{type(batch).__name__}")
    first = batch[0]
    if isinstance(first, dict):
        for b in batch:
            if not isinstance(b, dict) or set(b) != set(first):
                raise ValueError(f"default_collate: the examples are dicts with different keys "
                                 f"({sorted(map(str, first))} and "
                                 f"{sorted(map(str, b)) if isinstance(b, dict) else b!r})")
        return {key: default_collate([b[key] for b in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(not isinstance(b, (tuple, list)) or len(b) != len(first) for b in batch):
            raise ValueError("default_collate: the examples have different numbers of fields "
                             f"({sorted({len(b) if isinstance(b, (tuple, list)) else 1 for b in batch})})")
        parts = [default_collate([b[i] for b in batch]) for i in range(len(first))]
        if hasattr(first, "_fields"):  # a namedtuple keeps its type
            return type(first)(*parts)
        return tuple(parts) if isinstance(first, tuple) else parts
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Tensor):
        return _to_tensor(_stacked([b.numpy() if isinstance(b, Tensor) else b for b in batch]),
                          first.backend)
    return _to_tensor(_stacked(batch), get_default_backend())


def _stacked(items):
    """The examples stacked along a new first dim; an error names what does not fit."""
    arrays = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.numpy()
        if item is None or not isinstance(item, (np.ndarray, np.generic, bool, int, float)):
            raise TypeError(f"default_collate: an example field is a {type(item).__name__}; "
                            "expected Tensors, NumPy arrays, numbers, strings, or dicts, "
                            "tuples and lists of them (or pass a collate_fn)")
        arrays.append(np.asarray(item))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: the examples have different shapes "
                         f"({', '.join(str(s) for s in sorted(shapes))}), so they cannot be "
                         "stacked into one batch (pad them, or pass a collate_fn)")
    return np.stack(arrays)


class DataLoader:
    """Iterate over a dataset in batches, as torch.utils.data.DataLoader.

    dataset: a Dataset (TensorDataset, Subset, your own), a list of examples (say
        `list(zip(X, Y))`: each batch is then collated as torch's default_collate, a pair
        of batches), a tuple `(x, y)` of equal-length arrays (batched together, as a
        TensorDataset), a single array, or any object with `__len__` and `__getitem__`.
    batch_size: examples per batch (None: one example at a time, uncollated).
    shuffle: a new order every epoch, drawn from a generator seeded once with `seed` (or
        the numpy Generator / int `generator`), so two loaders with the same seed give the
        same batches.
    sampler / batch_sampler: iterables of indices / of lists of indices, instead.
    collate_fn: turns a list of examples into a batch (default: default_collate).
    drop_last: drop the last batch when it is smaller than batch_size.
    backend: where the batch Tensors live (default: the default backend).
    num_workers, pin_memory and the other process options of torch are accepted and
    ignored: batches are made in the calling process.

    Each batch is a tuple of Tensors (a single Tensor for a single array).
    Float arrays keep their dtype if float32/float64; integer arrays become int64.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 seed=None, backend=None):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
                batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if batch_sampler is not None and (batch_size not in (1, None) or shuffle or sampler
                                          is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler excludes batch_size, shuffle, sampler "
                             "and drop_last")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler excludes shuffle")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got "
                            f"{type(collate_fn).__name__}")
        self._single = False
        if _is_columns(dataset):
            dataset = TensorDataset(*dataset)
        elif isinstance(dataset, (np.ndarray, Tensor)):
            dataset = TensorDataset(dataset)
            self._single = True
        elif not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__ (a Dataset, "
                            f"a list of examples, a tuple of arrays), got "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.collate_fn = collate_fn
        self.seed = seed
        self.drop_last = drop_last
        self.backend = backend
        self.num_workers = num_workers
        # unseeded: the generator og.manual_seed seeds (as torch's default generator)
        self._rng = _generator(generator, seed) if generator is not None or seed is not None \
            else None

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch(self, idx):
        backend = self.backend if self.backend is not None else get_default_backend()
        if self.collate_fn is not None:
            return self.collate_fn([self.dataset[int(i)] for i in idx])
        if isinstance(self.dataset, TensorDataset):
            take = np.asarray(idx, dtype=np.int64)
            tensors = tuple(_to_tensor(a[take], backend) for a in self.dataset.arrays)
            return tensors[0] if self._single or len(tensors) == 1 else tensors
        batch = default_collate([self.dataset[int(i)] for i in idx])
        return _moved(batch, backend)

    def _indices(self):
        if self.sampler is not None:
            return [int(i) for i in self.sampler]
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self._rng if self._rng is not None else default_generator()
        return rng.permutation(n)

    def __iter__(self):
        if self.batch_sampler is not None:
            for idx in self.batch_sampler:
                yield self._batch(list(idx))
            return
        order = self._indices()
        if self.batch_size is None:
            for i in order:
                item = self.dataset[int(i)]
                item = item[0] if self._single else item
                yield self.collate_fn(item) if self.collate_fn is not None else item
            return
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            yield self._batch(idx)


def _is_columns(dataset):
    """opgraph's `(x, y)` form: a tuple of arrays or Tensors, each with a first (example)
    dim, batched together. Anything else (a list of (x, y) pairs above all) is a sequence
    of examples, as torch's map-style datasets."""
    return isinstance(dataset, tuple) and len(dataset) > 0 and all(
        isinstance(a, (np.ndarray, Tensor)) and a.ndim >= 1 for a in dataset)


def _moved(batch, backend):
    """A collated batch with its Tensors on `backend`."""
    if isinstance(batch, Tensor):
        return batch if batch.backend is backend else Tensor(batch.numpy(), backend=backend)
    if isinstance(batch, dict):
        return {k: _moved(v, backend) for k, v in batch.items()}
    if isinstance(batch, tuple):
        moved = [_moved(v, backend) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)
    if isinstance(batch, list):
        return [_moved(v, backend) for v in batch]
    return batch


def _to_tensor(array, backend):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    # not ascontiguousarray: that one makes a 0-d item (ds[i] of a 1-d array) shape (1,)
    return Tensor(np.require(array, requirements='C'), backend=backend)


# ---------------------------------------------------------------------------
# the bundled digits


def load_digits(flatten=False, normalize=True, dtype=np.float32):
    """The UCI optical-recognition handwritten digits bundled with opgraph
    (1,797 grey 8x8 images of the digits 0-9; CC BY 4.0, see
    opgraph/datasets/DIGITS_LICENSE.txt), with a fixed train/test split.

    Returns ((x_train, y_train), (x_test, y_test)) as NumPy arrays: images of
    shape (N, 1, 8, 8) (or (N, 64) with flatten=True), scaled to [0, 1] when
    normalize=True (the raw grey levels are 0..16); labels int64 of shape (N,).
    1,438 training and 359 test images.
    """
    with np.load(DIGITS_PATH, allow_pickle=False) as f:
        parts = [(f[f"{s}_images"], f[f"{s}_labels"]) for s in ("train", "test")]
    out = []
    for images, labels in parts:
        x = images.astype(dtype)
        if normalize:
            x /= 16.0
        x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, 8, 8)
        out.append((x, labels.astype(np.int64)))
    return tuple(out)


# ---------------------------------------------------------------------------
# MNIST IDX files

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """Read one IDX file (the MNIST format; `.gz`-compressed or not) into a NumPy array.

    Raises ValueError naming the file when it is not a valid IDX file."""
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"read_idx: {path} is not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (the first 4 bytes are "
                         f"{raw[:4]!r}; expected 0x00 0x00, a type code in "
                         f"{[hex(c) for c in _IDX_DTYPES]}, and the number of dimensions)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated: its header announces {ndim} "
                         f"dimensions but the file has only {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"read_idx: {path} has {len(raw) - header} bytes of data, but its "
                         f"header (shape {shape}, dtype {dtype}) needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_MNIST_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(directory, names):
    for name in names:
        for suffix in ("", ".gz"):
            p = directory / (name + suffix)
            if p.exists():
                return p
    raise FileNotFoundError(
        f"load_mnist: none of {[n + s for n in names for s in ('', '.gz')]} in {directory}")


def load_mnist(path, flatten=False, normalize=True, dtype=np.float32):
    """MNIST (or Fashion-MNIST, or anything in the same layout) from IDX files
    already on disk: `path` is a directory holding train-images-idx3-ubyte,
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
    (each optionally `.gz`). Nothing is downloaded.

    Returns ((x_train, y_train), (x_test, y_test)) like load_digits: images
    (N, 1, H, W) (or (N, H*W) with flatten=True), scaled to [0, 1] when
    normalize=True; labels int64.
    """
    directory = pathlib.Path(os.fspath(path))
    if not directory.is_dir():
        raise FileNotFoundError(f"load_mnist: {directory} is not a directory (expected one "
                                "holding the four MNIST IDX files)")
    arrays = {key: read_idx(_find(directory, names)) for key, names in _MNIST_NAMES.items()}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"load_mnist: {split} images of shape {images.shape} and labels of "
                             f"shape {labels.shape} do not match (expected (N, H, W) and (N,))")
        x = images.astype(dtype)
        if normalize:
            x /= 255.0
        n, h, w = x.shape
        x = x.reshape(n, h * w) if flatten else x.reshape(n, 1, h, w)
        out.append((x, labels.astype(np.int64)))
    return tuple(out)
