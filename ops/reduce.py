"""Reductions over dims."""
from opgraph.operation import Operation

from .shape import DimError, check_flag, normalize_axis

from .shape import BroadcastTo, Reshape


def _axes(name, dims, ndim):
    if dims is None:
        return tuple(range(ndim))
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    axes = tuple(sorted({normalize_axis(name, d, ndim) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{name}: repeated dim in {dims}")
    return axes if ndim else ()  # a 0-d tensor's dim 0 / -1 is itself


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class SumDim(Operation):
    """y = Σ x over dims (all when None);  dx = dy broadcast back to x.shape"""

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, check_flag(f"{self.name} ({self.name[:-3].lower()})",
                                                   "keepdim", keepdim)

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        return self.backend.sum(x, self.axes, self.keepdim)

    def backward(self, grad):
        kept = Reshape(_kept_shape(self.in_shape, self.axes))(grad)
        return (BroadcastTo(self.in_shape)(kept),)


class MeanDim(Operation):
    """y = Σ x over dims / count (NaN for an empty reduction, as torch);
    dx = dy / count broadcast back to x.shape"""

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, check_flag(f"{self.name} ({self.name[:-3].lower()})",
                                                   "keepdim", keepdim)

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        total = self.backend.sum(x, self.axes, self.keepdim)
        if self.count == 0:
            return self.backend.full(total.shape, float("nan"), total.dtype)
        return self.backend.binary("div", total, self.count)

    def backward(self, grad):
        kept = Reshape(_kept_shape(self.in_shape, self.axes))(grad / max(self.count, 1))
        return (BroadcastTo(self.in_shape)(kept),)


class MaxDim(Operation):
    """y = max of x along dim;  dx = dy at the first maximum of each slice, 0 elsewhere"""

    def __init__(self, dim, keepdim=False):
        self.dim, self.keepdim = dim, check_flag(f"{self.name} (max)", "keepdim", keepdim)

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        if x.shape and x.shape[self.dim] == 0:
            raise DimError(f"{self.name}: max over dim {self.dim} of a tensor of shape "
                           f"{tuple(x.shape)}, which is empty along that dim")
        self.in_shape = x.shape
        if not x.shape:  # a 0-d tensor is its own maximum (torch: max(x, 0) of a 0-d x)
            return self.backend.copy(x)
        if 0 in x.shape:  # empty elsewhere: an empty result (the kernels need elements)
            out = _kept_shape(x.shape, (self.dim,)) if self.keepdim else \
                x.shape[:self.dim] + x.shape[self.dim + 1:]
            return self.backend.zeros(out, x.dtype)
        self.arg = self.backend.argmax(x, self.dim, keepdims=True)
        return self.backend.max(x, self.dim, self.keepdim)

    def backward(self, grad):
        from .indexing import ScatterAdd
        if not self.in_shape:
            return (grad,)
        if 0 in self.in_shape:
            return (self.constant(self.backend.zeros(self.in_shape, grad.dtype)),)
        kept = Reshape(_kept_shape(self.in_shape, (self.dim,)))(grad)
        return (ScatterAdd(self.in_shape, self.dim)(kept, self.constant(self.arg)),)
