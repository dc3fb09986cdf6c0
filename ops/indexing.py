"""Gather / scatter ops: Gather, ScatterAdd, Scatter, Embedding, EmbeddingBackward.

The backend's kernels check that indices are in range (IndexOutOfRange, which
Operation re-raises under the op's name); the ops check shapes and dtypes."""
from opgraph.backends.base import (check_axis_indexing, check_index, check_index_dtype,
                                   check_rows_indexing)
from opgraph.operation import Operation

from .shape import normalize_axis


class Gather(Operation):
    """y[i][j][k] = x[i][index[i][j][k]][k] (dim=1; as torch.gather);
    dx = ScatterAdd(dy) into zeros_like(x) at the same positions (repeats accumulate)"""
    saves = (1,)

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x, index):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        if len(index.shape) != len(x.shape) or any(
                i > n for d, (i, n) in enumerate(zip(index.shape, x.shape)) if d != self.dim):
            raise ValueError(f"{self.name}: index of shape {tuple(index.shape)} does not fit input "
                             f"of shape {tuple(x.shape)} along dim {self.dim} (same ndim, and "
                             "index.shape[d] <= input.shape[d] for d != dim)")
        check_index_dtype(self.name, index, "index")
        self.in_shape = x.shape
        return self.backend.gather(x, self.dim, index)

    def backward(self, grad):
        index = self.inputs[1]
        return ScatterAdd(self.in_shape, self.dim)(grad, index), None


class ScatterAdd(Operation):
    """y = zeros(shape); y[i][index[i][j][k]][k] += src[i][j][k] (dim=1);  dsrc = gather(dy, dim, index)"""
    saves = (1,)

    def __init__(self, shape, dim):
        self.shape, self.dim = tuple(shape), dim

    def forward(self, src, index):
        self.dim = normalize_axis(self.name, self.dim, len(self.shape))
        check_axis_indexing(self.name, self.shape, self.dim, index, src)
        check_index_dtype(self.name, index, "index")
        return self.backend.scatter_add(self.shape, self.dim, index, src)

    def backward(self, grad):
        src, index = self.inputs
        return _fit(Gather(self.dim)(grad, index), src.shape), None


def _fit(grad, shape):
    """The gradient of the leading index-shaped window of a larger source: zeros elsewhere
    (scatter reads only src[:index.shape[0], :index.shape[1], ...], as torch)."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    from .shape import IndexPutAdd
    return IndexPutAdd(shape, tuple(slice(0, n) for n in grad.shape))(grad)


def check_scatter(name, backend, shape, index, src, dim):
    """Raise unless index fits a scatter of src into a tensor of `shape` along dim (torch's
    rules) with every entry in range."""
    check_axis_indexing(name, shape, dim, index, src)
    check_index(backend, name, index, shape[dim] if len(shape) else 1, dim)


def _scatter_key(bk, index, dim):
    """The advanced key that sends entry [i, j, k] of an index-shaped array to
    [i, index[i, j, k], k] (dim=1): index along dim, broadcast aranges elsewhere."""
    nd = len(index.shape)
    return tuple(index if d == dim else bk.reshape(bk.arange(n, "int64"),
                                                   (1,) * d + (n,) + (1,) * (nd - d - 1))
                 for d, n in enumerate(index.shape))


class Scatter(Operation):
    """y = x, then y[i][index[i][j][k]][k] = src[i][j][k] (dim=1; torch.scatter out of
    place; with repeated positions one of the values lands, as torch);
    dx = dy with the written positions zeroed,  dsrc = gather(dy, dim, index)"""
    saves = (1,)

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x, index, src):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        check_scatter(self.name, self.backend, x.shape, index, src, self.dim)
        bk = self.backend
        out = bk.copy(x)
        if not x.shape:  # 0-d: the one element is replaced
            bk.setitem(out, Ellipsis, src)
            return out
        window = tuple(slice(0, n) for n in index.shape)
        bk.setitem(out, _scatter_key(bk, index, self.dim), bk.getitem(src, window))
        return out

    def backward(self, grad):
        x, index, src = self.inputs
        if not x.shape:
            return grad * 0, None, grad
        zeros = self.constant(self.backend.zeros(index.shape, grad.dtype))
        return (Scatter(self.dim)(grad, index, zeros), None,
                _fit(Gather(self.dim)(grad, index), src.shape))


class Embedding(Operation):
    """y[..., :] = weight[indices[...], :];
    dweight = zeros_like(weight) with dy[...] added to row indices[...] (repeats accumulate)"""
    saves = (1,)

    def forward(self, weight, indices):
        if len(weight.shape) != 2:
            raise ValueError(f"{self.name}: weight must be 2-D (num_embeddings, dim), got shape "
                             f"{tuple(weight.shape)}")
        check_index_dtype(self.name, indices, "indices")
        self.num_rows = weight.shape[0]
        return self.backend.take_rows(weight, indices)

    def backward(self, grad):
        indices = self.inputs[1]
        return EmbeddingBackward(self.num_rows)(grad, indices), None


class EmbeddingBackward(Operation):
    """y = zeros((num_rows, d)); y[indices[...]] += src[...];  dsrc = dy[indices] (Embedding)"""
    saves = (1,)

    def __init__(self, num_rows):
        self.num_rows = num_rows

    def forward(self, src, indices):
        check_rows_indexing(self.name, indices, src)
        check_index_dtype(self.name, indices, "indices")
        return self.backend.scatter_rows_add(self.num_rows, indices, src)

    def backward(self, grad):
        return Embedding()(grad, self.inputs[1]), None
