"""Data: a batch iterator, the bundled handwritten digits, and an MNIST IDX reader.

    (x_train, y_train), (x_test, y_test) = opgraph.data.load_digits()
    for xb, yb in opgraph.data.DataLoader((x_train, y_train), batch_size=64,
                                          shuffle=True, seed=0):
        ...   # xb: float32 Tensor (64, 1, 8, 8), yb: int64 Tensor (64,)

Datasets are plain NumPy arrays on the host; the DataLoader turns each batch
into Tensors on the default backend (or the one you pass).
"""
import gzip
import os
import pathlib
import struct

import numpy as np

from .tensor import Tensor, default_generator, get_default_backend

__all__ = ["TensorDataset", "DataLoader", "load_digits", "read_idx", "load_mnist",
           "DIGITS_PATH"]

DIGITS_PATH = pathlib.Path(__file__).resolve().parent / "datasets" / "digits.npz"


# ---------------------------------------------------------------------------
# datasets and the batch iterator


class TensorDataset:
    """Arrays (NumPy arrays or Tensors) of equal length, indexed together:
    `ds[i]` is a tuple with one item from each array."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        self.arrays = tuple(a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset: the arrays have different lengths (shapes {shapes})")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


class DataLoader:
    """Iterate over a dataset in batches, as torch.utils.data.DataLoader.

    dataset: a TensorDataset, a tuple/list of equal-length arrays, a single
        array, or any object with `__len__` and `__getitem__` returning a tuple
        of arrays (or one array) per example.
    shuffle: a new order every epoch, drawn from a generator seeded once with
        `seed` (so two loaders with the same seed give the same batches).
    drop_last: drop the last batch when it is smaller than batch_size.
    backend: where the batch Tensors live (default: the default backend).

    Each batch is a tuple of Tensors (a single Tensor for a single array).
    Float arrays keep their dtype if float32/float64; integer arrays become int64.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, seed=None, drop_last=False,
                 backend=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self._single = False
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        elif isinstance(dataset, (np.ndarray, Tensor)):
            dataset = TensorDataset(dataset)
            self._single = True
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.backend = backend
        # unseeded: the generator og.manual_seed seeds (as torch's default generator)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch(self, idx):
        if isinstance(self.dataset, TensorDataset):
            parts = self.dataset[idx]
        else:
            items = [self.dataset[int(i)] for i in idx]
            if not isinstance(items[0], tuple):
                items = [(item,) for item in items]
            parts = tuple(np.stack([np.asarray(item[k]) for item in items])
                          for k in range(len(items[0])))
        backend = self.backend if self.backend is not None else get_default_backend()
        tensors = tuple(_to_tensor(p, backend) for p in parts)
        return tensors[0] if self._single or len(tensors) == 1 else tensors

    def __iter__(self):
        n = len(self.dataset)
        rng = self._rng if self._rng is not None else default_generator()
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            yield self._batch(idx)


def _to_tensor(array, backend):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    return Tensor(np.ascontiguousarray(array), backend=backend)


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
