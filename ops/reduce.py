"""Reductions over dims."""
import warnings

import numpy as np

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


def _count(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


class SumDim(Operation):
    """y = Σ x over dims (all when None; integer and bool sums are int64, as torch);
    dx = dy broadcast back to x.shape"""
    saves = ()

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, check_flag(
            lambda: f"{self.name} ({self.name[:-3].lower()})", "keepdim", keepdim)

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        if x.dtype.kind in "biu" and x.dtype != np.int64:  # NumPy: uint8 sums are uint64
            x = self.backend.astype(x, np.int64)
        return self.backend.sum(x, self.axes, self.keepdim)

    def backward(self, grad):
        return (self._spread(grad),)

    def _spread(self, grad):
        kept = Reshape(_kept_shape(self.in_shape, self.axes))(grad)
        return BroadcastTo(self.in_shape)(kept)


class MeanDim(SumDim):
    """y = Σ x over dims / count (NaN for an empty reduction, as torch);
    dx = dy / count broadcast back to x.shape"""
    floating = True

    def forward(self, x):
        total = super().forward(x)
        self.count = _count(x.shape, self.axes)
        if self.count == 0:
            return self.backend.full(total.shape, float("nan"), total.dtype)
        return self.backend.binary("div", total, self.count)

    def backward(self, grad):
        return (self._spread(grad / max(self.count, 1)),)


class MaxDim(Operation):
    """y = max of x along dim;  dx = dy at the first maximum of each slice, 0 elsewhere"""
    saves = ()
    kind = "max"

    def __init__(self, dim, keepdim=False):
        self.dim, self.keepdim = dim, check_flag(lambda: f"{self.name} ({self.kind})",
                                                "keepdim", keepdim)

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        if x.shape and x.shape[self.dim] == 0:
            raise DimError(f"{self.name}: {self.kind} over dim {self.dim} of a tensor of shape "
                           f"{tuple(x.shape)}, which is empty along that dim")
        self.in_shape = x.shape
        bk = self.backend
        if not x.shape:  # a 0-d tensor is its own max (torch: max(x, 0) of a 0-d x), at 0
            self.arg = bk.zeros((), "int64")
            return bk.copy(x)
        if 0 in x.shape:  # empty elsewhere: an empty result (the kernels need elements)
            out = _kept_shape(x.shape, (self.dim,)) if self.keepdim else \
                x.shape[:self.dim] + x.shape[self.dim + 1:]
            self.arg = bk.zeros(_kept_shape(x.shape, (self.dim,)), "int64")
            return bk.zeros(out, x.dtype)
        pick = bk.argmax if self.kind == "max" else bk.argmin
        self.arg = pick(x, self.dim, keepdims=True)
        best = bk.max if self.kind == "max" else bk.min
        return best(x, self.dim, self.keepdim)

    @property
    def indices(self):
        """The index of the picked element of each slice (int64, shaped like the output)."""
        if self.keepdim or not self.in_shape:
            return self.arg
        return self.backend.reshape(self.arg, self.in_shape[:self.dim] + self.in_shape[self.dim + 1:])

    def backward(self, grad):
        from .indexing import ScatterAdd
        if not self.in_shape:
            return (grad,)
        if 0 in self.in_shape:
            return (self.constant(self.backend.zeros(self.in_shape, grad.dtype)),)
        kept = Reshape(_kept_shape(self.in_shape, (self.dim,)))(grad)
        return (ScatterAdd(self.in_shape, self.dim)(kept, self.constant(self.arg)),)


class MinDim(MaxDim):
    """y = min of x along dim;  dx = dy at the first minimum of each slice, 0 elsewhere"""
    kind = "min"


class AMax(Operation):
    """y = max of x over dims (all when None), NaN if a slice holds NaN;
    dx = dy / m at each of the m maxima of a slice (ties share evenly, as torch.amax; in a
    slice holding NaN, its m NaNs), 0 elsewhere"""
    saves = (0,)
    kind = "max"

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, check_flag(self.name, "keepdim", keepdim)

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        empty = [a for a in self.axes if x.shape[a] == 0]
        if empty:
            raise ValueError(f"{self.name}: {self.kind} over dim {empty[0]} of a tensor of shape "
                             f"{tuple(x.shape)}, which has no elements along it (no identity)")
        if not self.axes:
            return self.backend.copy(x)
        y = self._kept(x)
        return y if self.keepdim else self.backend.reshape(y, tuple(
            n for i, n in enumerate(x.shape) if i not in self.axes))

    def _kept(self, x):
        best = self.backend.max if self.kind == "max" else self.backend.min
        for a in sorted(self.axes, reverse=True):
            x = best(x, a, True)
        return x

    def backward(self, grad):
        # the extremes again from x: the output may have been written in place since
        bk = self.backend
        x = self.inputs[0]
        kept = self._kept(x.data) if self.axes else x.data
        hit = bk.binary("eq", x.data, kept)
        if x.dtype.kind == "f":  # a NaN slice: its NaNs share the gradient (as torch.max())
            hit = bk.where(bk.binary("ne", kept, kept), bk.binary("ne", x.data, x.data), hit)
        hit = bk.astype(hit, grad.dtype)
        share = bk.binary("div", hit, bk.sum(hit, self.axes, True))
        kept = Reshape(_kept_shape(self.in_shape, self.axes))(grad)
        return (BroadcastTo(self.in_shape)(kept) * self.constant(share),)


class AMin(AMax):
    """y = min of x over dims (all when None), NaN if a slice holds NaN;
    dx = dy / m at each of the m minima of a slice (ties share evenly, as torch.amin), 0 elsewhere"""
    kind = "min"


class Var(Operation):
    """y = Σ (x - mean)² / (N - correction) over dims (all when None), N the number of
    elements reduced (NaN or inf, with torch's warning, when N - correction <= 0);
    dx = dy · 2 (x - mean) / (N - correction)  (NaN or ±inf when N - correction <= 0,
    as torch)"""
    saves = (0,)

    def __init__(self, dims=None, correction=1, keepdim=False):
        self.dims, self.correction = dims, correction
        self.keepdim = check_flag(self.name, "keepdim", keepdim)

    def forward(self, x):
        bk = self.backend
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        n = _count(x.shape, self.axes)
        self.divisor = max(n - self.correction, 0)
        mean = bk.binary("div", bk.sum(x, self.axes, True), n) if n else bk.sum(x, self.axes, True)
        dev = bk.binary("sub", x, mean)
        total = bk.sum(bk.binary("mul", dev, dev), self.axes, self.keepdim)
        if self.divisor == 0:  # 0/0 is NaN, anything else / 0 is inf (NumPy would warn)
            warnings.warn(f"{self.name}: degrees of freedom is <= 0 (N = {n} elements reduced, "
                          f"correction {self.correction}): the result is NaN or inf (as "
                          "torch's var/std)", UserWarning, stacklevel=4)
            inf, nan = (bk.full((), v, total.dtype) for v in (float("inf"), float("nan")))
            return bk.where(bk.binary("gt", total, 0), inf, nan)
        return bk.binary("div", total, self.divisor)

    def backward(self, grad):
        x = self.inputs[0]
        kept = Reshape(_kept_shape(self.in_shape, self.axes))(grad)
        centred = x - MeanDim(self.axes, True)(x)
        if self.divisor:
            return (kept * centred * (2.0 / self.divisor),)
        # · 2/0: ±inf, and NaN where the product is 0, without NumPy's warnings
        g = kept * centred
        inf = float("inf")
        return (g.masked_fill(g > 0, inf).masked_fill(g < 0, -inf).masked_fill(g == 0,
                                                                                float("nan")),)


class Std(Var):
    """y = sqrt(v), v the variance as Var (same dims and correction);
    dx = Var's dx for dv = dy / (2 y), with dv = 0 where y = 0 (as torch.std: a constant
    slice has a zero gradient, not NaN)"""
    saves = (0, "output")

    def forward(self, x):
        return self.backend.unary("sqrt", super().forward(x))

    def backward(self, grad):
        y = self.output
        zero = y == 0
        return super().backward((grad / (y * 2).masked_fill(zero, 1.0)).masked_fill(zero, 0.0))


class LogSumExp(Operation):
    """y = log Σ exp(x) over dims (all when None), computed as m + log Σ exp(x - m) with
    m the maximum (stable; -inf for an empty or all -inf slice, +inf with a +inf entry,
    as torch.logsumexp);
    dx = dy · exp(x - y)  (the softmax of x over dims; NaN where x = y = ±inf, as torch)"""
    saves = (0, "output")

    def __init__(self, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, check_flag(self.name, "keepdim", keepdim)

    def forward(self, x):
        bk = self.backend
        self.in_shape = x.shape
        self.axes = _axes(self.name, self.dims, len(x.shape))
        if _count(x.shape, self.axes) == 0:
            shape = _kept_shape(x.shape, self.axes) if self.keepdim else tuple(
                n for i, n in enumerate(x.shape) if i not in self.axes)
            return bk.full(shape, float("-inf"), x.dtype)
        top = x
        for a in sorted(self.axes, reverse=True):
            top = bk.max(top, a, True)
        # an infinite maximum would make x - top NaN: shift by 0 there instead; an all -inf
        # slice sums to 0, whose log is -inf (set directly: NumPy would warn)
        empty = bk.binary("eq", top, float("-inf"))
        top = bk.where(bk.binary("eq", bk.unary("abs", top), float("inf")), 0, top)
        total = bk.sum(bk.unary("exp", bk.binary("sub", x, top)), self.axes, True)
        y = bk.binary("add", bk.unary("log", bk.where(empty, 1, total)), top)
        y = bk.where(empty, float("-inf"), y)
        return y if self.keepdim else bk.reshape(y, tuple(
            n for i, n in enumerate(x.shape) if i not in self.axes))

    def backward(self, grad):
        x = self.inputs[0]
        shape = _kept_shape(self.in_shape, self.axes)
        y = Reshape(shape)(self.output)
        # exp(x - y) without inf - inf: where y is ±inf, 0 for the other entries and NaN
        # for those equal to y (torch's values)
        infinite = y.abs() == float("inf")
        soft = (x.masked_fill(infinite, 0.0) - y.masked_fill(infinite, 0.0)).exp()
        soft = soft.masked_fill(infinite, 0.0).masked_fill(infinite * (x == y), float("nan"))
        return (Reshape(shape)(grad) * soft,)