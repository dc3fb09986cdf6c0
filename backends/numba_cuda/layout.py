"""Host-side shape and stride arithmetic: every array of the backend is
C-contiguous, so a layout change (transpose, broadcast, diagonal, basic slicing,
cat, split) is a strided copy of an (offset, shape, strides) view computed here."""
import math

import numpy as np


def size(shape):
    return math.prod(int(s) for s in shape)


def c_strides(shape):
    strides = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= int(shape[d])
    return tuple(strides)


def collapse(shape, *strides):
    """Drop size-1 dims and merge adjacent dims that are contiguous in every stride
    list; always returns at least one dim (kernels need non-empty tuples)."""
    dims = [(int(s), [int(st[d]) for st in strides]) for d, s in enumerate(shape) if s != 1]
    out = []
    for s, st in dims:
        if out and all(prev_st == cur * s for prev_st, cur in zip(out[-1][1], st)):
            out[-1] = (out[-1][0] * s, st)
        else:
            out.append((s, st))
    if not out:
        return (1,), tuple((0,) for _ in strides)
    return tuple(s for s, _ in out), tuple(tuple(st[i] for _, st in out)
                                             for i in range(len(strides)))


def bcast_strides(shape, out_shape):
    """Element strides of a contiguous array of `shape` read as `out_shape` (0 where broadcast)."""
    shape = tuple(shape)
    while len(shape) > len(out_shape) and shape[0] == 1:  # leading 1s broadcast away
        shape = shape[1:]
    shape = (1,) * (len(out_shape) - len(shape)) + shape
    cs = c_strides(shape)
    return tuple(0 if s == 1 and o != 1 else c for s, o, c in zip(shape, out_shape, cs))


def normalize_axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for ax in axes:
        ax = int(ax)
        if not -ndim <= ax < max(ndim, 1):
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
        out.append(ax % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def basic_view(shape, key):
    """(offset, shape, strides) in elements of a[key] for a basic key on a
    C-contiguous array, computed by NumPy on a strided dummy that owns no data
    (basic indexing only does pointer arithmetic: nothing is read)."""
    base = np.zeros(1, dtype=np.int64)
    dummy = np.lib.stride_tricks.as_strided(
        base, shape=shape, strides=tuple(8 * s for s in c_strides(shape)), writeable=False)
    key = key if isinstance(key, tuple) else (key,)
    if not any(k is Ellipsis for k in key):
        key = key + (Ellipsis,)
    view = dummy[key + (None,)]  # a trailing new axis keeps a view even for all-int keys
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 8
    return offset, view.shape[:-1], tuple(s // 8 for s in view.strides[:-1])


def is_basic(part):
    if isinstance(part, (bool, np.bool_)):
        return False  # a boolean scalar is an advanced index in NumPy
    return part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer))

