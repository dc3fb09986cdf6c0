"""Gather / scatter ops: Gather, ScatterAdd, Embedding, EmbeddingBackward."""
from opgraph.operation import Operation

from .shape import normalize_axis


def check_indices(name, backend, index, bound, what):
    """Raise unless `index` is an integer array with every entry in [0, bound)."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name}: {what} must be an integer tensor, got dtype {index.dtype}")
    if 0 in index.shape:
        return
    lo = int(backend.to_numpy(backend.min(index)))
    hi = int(backend.to_numpy(backend.max(index)))
    if lo < 0 or hi >= bound:
        raise ValueError(f"{name}: {what} out of range: values span [{lo}, {hi}] but the "
                         f"valid range is [0, {bound - 1}]")


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
        check_indices(self.name, self.backend, index, x.shape[self.dim], "index")
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
        check_indices(self.name, self.backend, indices, weight.shape[0], "indices")
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
        return self.backend.scatter_rows_add(self.num_rows, indices, src)

    def backward(self, grad):
        return Embedding()(grad, self.inputs[1]), None
