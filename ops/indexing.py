"""Gather / scatter ops: Gather, ScatterAdd, Embedding, EmbeddingBackward.

The backend's kernels check that indices are in range (IndexOutOfRange, which
Operation re-raises under the op's name); the ops check shapes and dtypes."""
from opgraph.backends.base import check_axis_indexing, check_index_dtype, check_rows_indexing
from opgraph.operation import Operation

from .shape import normalize_axis


class Gather(Operation):
    """y[i][j][k] = x[i][index[i][j][k]][k] (dim=1; as torch.gather);
    dx = ScatterAdd(dy) into zeros_like(x) at the same positions (repeats accumulate)"""

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

    def __init__(self, shape, dim):
        self.shape, self.dim = tuple(shape), dim

    def forward(self, src, index):
        self.dim = normalize_axis(self.name, self.dim, len(self.shape))
        check_axis_indexing(self.name, self.shape, self.dim, index, src)
        check_index_dtype(self.name, index, "index")
        return self.backend.scatter_add(self.shape, self.dim, index, src)

    def backward(self, grad):
        index = self.inputs[1]
        return Gather(self.dim)(grad, index), None


class Embedding(Operation):
    """y[..., :] = weight[indices[...], :];
    dweight = zeros_like(weight) with dy[...] added to row indices[...] (repeats accumulate)"""

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

    def __init__(self, num_rows):
        self.num_rows = num_rows

    def forward(self, src, indices):
        check_rows_indexing(self.name, indices, src)
        check_index_dtype(self.name, indices, "indices")
        return self.backend.scatter_rows_add(self.num_rows, indices, src)

    def backward(self, grad):
        return Embedding()(grad, self.inputs[1]), None
