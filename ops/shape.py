"""Shape ops: Reshape, Transpose, BroadcastTo, Index, IndexPutAdd, SetItem, Cat, Chunk, Split;
and the shape helpers every op family uses (broadcasting, dim normalisation, permutations)."""
import math
import numbers
import operator

from opgraph import tape as _tape
from opgraph.backends.base import IndexOutOfRange
from opgraph.operation import MultiOutputOperation, Operation
from opgraph.tensor import Tensor


def broadcast_shapes(name, *shapes):
    """NumPy's broadcast result of `shapes`, or a ValueError naming the op and the shapes."""
    ndim = max(len(s) for s in shapes)
    result = [1] * ndim
    for s in shapes:
        at = ndim - len(s)
        for d in s:
            r = result[at]
            if d != r:
                if r == 1:
                    result[at] = d
                elif d != 1:
                    listed = " and ".join(str(tuple(s)) for s in shapes)
                    raise ValueError(f"{name}: shapes {listed} cannot be broadcast together")
            at += 1
    return tuple(result)


class DimError(IndexError, ValueError):
    """A dim out of range, or an empty dim an op cannot reduce: an IndexError as in torch
    and a ValueError as NumPy's AxisError, so code written for either catches it."""


def normalize_axis(name, axis, ndim):
    """`axis` in [0, ndim); a 0-d tensor accepts 0 and -1, as in torch."""
    try:
        if isinstance(axis, bool):
            raise TypeError
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: dim must be an int, got {type(axis).__name__} {axis!r}") \
            from None
    low, high = (-1, 1) if ndim == 0 else (-ndim, ndim)
    if not low <= axis < high:
        raise DimError(f"{name}: dim {axis} is out of range for a tensor with {ndim} dims "
                       f"(expected {low} <= dim < {high})")
    return axis % ndim if ndim else 0


def check_flag(name, what, value):
    """`value` as a bool: True/False (or 0/1, as NumPy's keepdims), else a TypeError.
    `name` may be a function giving the name (built only for the error message)."""
    if value is True or value is False:
        return value
    if callable(name):
        name = name()
    if isinstance(value, bool) or type(value).__name__ == "bool_" or value in (0, 1) \
            and hasattr(value, "__index__"):
        return bool(value)
    raise TypeError(f"{name}: {what} must be a bool, got {type(value).__name__} {value!r}")


def inverse_permutation(perm):
    """The permutation that undoes `perm`: transpose(transpose(x, perm), inverse) is x."""
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


def sum_to_shape(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, back to `shape`."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if not _tape.is_recording():  # first-order backward: the sum on the backend, no ops
        bk = grad.backend
        summed = bk.sum(grad.data, axes) if axes else grad.data
        return Tensor._make(summed if tuple(summed.shape) == shape else
                            bk.reshape(summed, shape), bk)
    from opgraph.ops.reduce import SumDim
    if not axes:
        return Reshape(shape)(grad)
    summed = SumDim(axes, keepdim=False)(grad)
    return summed if summed.shape == shape else Reshape(shape)(summed)


class _View(Operation):
    """An op whose result is a view of its input in torch (transpose, basic indexing, expand).
    The result remembers its base (`_view_of`), so that an in-place write into it reaches
    the base on every backend, also where the backend's op copies (see opgraph.inplace)."""

    def _wrap(self, array, inputs):
        out = super()._wrap(array, inputs)
        if self.is_view:
            out._view_of = (inputs[0], self)
        return out

    is_view = True


class Reshape(Operation):
    """y = x viewed with a new shape (one -1 allowed);  dx = reshape(dy, x.shape)"""
    saves = ()

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.shape = _resolve_shape(self.name, x.shape, self.shape)
        self.in_shape = x.shape
        return self.backend.reshape(x, self.shape)

    def backward(self, grad):
        return (Reshape(self.in_shape)(grad),)


def _resolve_shape(name, old, new):
    for n in new:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{name}: cannot reshape to {new}: sizes must be ints, got {n!r} "
                            f"({type(n).__name__})")
    new = tuple(operator.index(n) for n in new)  # a float Tensor is refused, not cut
    size = math.prod(old)
    if new.count(-1) > 1:
        raise ValueError(f"{name}: only one dimension can be -1, got shape {new}")
    known = 1
    for n in new:
        if n != -1:
            if n < 0:
                raise ValueError(f"{name}: negative dimension in shape {new}")
            known *= n
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"{name}: cannot reshape {tuple(old)} (size {size}) into {new}")
        new = tuple(size // known if n == -1 else n for n in new)
    elif known != size:
        raise ValueError(f"{name}: cannot reshape {tuple(old)} (size {size}) into {new} (size {known})")
    return new


class Transpose(_View):
    """y = x with axes permuted: y.shape[i] = x.shape[axes[i]];  dx = transpose(dy, argsort(axes))"""
    saves = ()

    def __init__(self, axes):
        self.axes = tuple(axes)

    def forward(self, x):
        ndim = len(x.shape)
        axes = tuple(normalize_axis(self.name, a, ndim) for a in self.axes)  # no wrap-around
        if len(axes) != ndim or sorted(axes) != list(range(ndim)):
            raise ValueError(f"{self.name}: axes {self.axes} are not a permutation of the "
                             f"{ndim} dims of a tensor of shape {tuple(x.shape)}")
        self.axes = axes
        return self.backend.transpose(x, self.axes)

    def backward(self, grad):
        return (Transpose(inverse_permutation(self.axes))(grad),)


class BroadcastTo(_View):
    """y = x broadcast to `shape` (NumPy rules);  dx = dy summed over the broadcast axes"""
    saves = ()

    def __init__(self, shape):
        self.shape = tuple(shape)
        for n in self.shape:
            if isinstance(n, bool) or not hasattr(n, "__index__"):
                raise TypeError(f"{self.name}: shape entries must be ints, got {n!r} "
                                f"({type(n).__name__}) in {self.shape}")
            if n < 0:
                raise ValueError(f"{self.name}: negative size in shape {self.shape}")
        self.shape = tuple(operator.index(n) for n in self.shape)  # a float Tensor: TypeError

    def forward(self, x):
        if broadcast_shapes(self.name, x.shape, self.shape) != self.shape:
            raise ValueError(f"{self.name}: cannot broadcast shape {tuple(x.shape)} to {self.shape}")
        self.in_shape = x.shape
        return self.backend.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (sum_to_shape(grad, self.in_shape),)


class Index(_View):
    """y = x[key] (ints, slices, None, Ellipsis, integer arrays);
    dx = zeros_like(x) with dy added at [key] (IndexPutAdd; repeated indices accumulate)"""
    saves = ()

    def __init__(self, key):
        self.key = key

    @property
    def is_view(self):  # advanced (array) keys copy, in torch and NumPy alike
        parts = self.key if isinstance(self.key, tuple) else (self.key,)
        return all(k is None or k is Ellipsis or isinstance(k, slice)
                   or isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in parts)

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return self.backend.getitem(x, self.key)
        except IndexOutOfRange:
            raise  # already names the dim, its size and the values found
        except (IndexError, TypeError, ValueError) as e:
            raise IndexError(f"{self.name}: key {_describe(self.key)} is invalid for a tensor of "
                             f"shape {tuple(x.shape)}: {e}") from None

    def backward(self, grad):
        return (IndexPutAdd(self.in_shape, self.key)(grad),)


class IndexPutAdd(Operation):
    """y = zeros(shape) with x added at [key];  dx = dy[key] (Index)"""
    saves = ()

    def __init__(self, shape, key):
        self.shape, self.key = tuple(shape), key

    def forward(self, x):
        return self.backend.index_put_add(self.shape, self.key, x)

    def backward(self, grad):
        return (Index(self.key)(grad),)


class SetItem(Operation):
    """y = x with y[key] = v (v broadcast to x[key] and cast to x's dtype; the out-of-place
    form of x[key] = v);  dx = dy with dy[key] = 0,  dv = dy[key] summed to v's shape"""
    saves = ()

    def __init__(self, key):
        self.key = key

    def forward(self, x, v):
        bk = self.backend
        try:
            target = bk.getitem(x, self.key) if self.key is not Ellipsis else x
        except (IndexError, TypeError, ValueError) as e:
            raise IndexError(f"{self.name}: key {_describe(self.key)} is invalid for a tensor of "
                             f"shape {tuple(x.shape)}: {e}") from None
        self.target_shape = tuple(target.shape)
        if broadcast_shapes(self.name, v.shape, self.target_shape) != self.target_shape:
            raise ValueError(f"{self.name}: a value of shape {tuple(v.shape)} cannot be written "
                             f"into x{_describe(self.key)}, which has shape {self.target_shape}")
        out = bk.copy(x)
        bk.setitem(out, self.key, v)
        return out

    def backward(self, grad):
        x, v = self.inputs
        zero = self.constant(self.backend.zeros((), grad.dtype))
        return SetItem(self.key)(grad, zero), sum_to_shape(Index(self.key)(grad), v.shape)


def _describe(key):
    parts = key if isinstance(key, tuple) else (key,)
    return "[" + ", ".join(f"array{tuple(k.shape)}" if hasattr(k, "shape") else repr(k)
                           for k in parts) + "]"


class Cat(Operation):
    """y = concatenate(xs, dim);  dx_i = dy[..., offset_i : offset_i + n_i, ...] along dim"""
    saves = ()

    promote = True

    def __init__(self, dim=0):
        self.dim = dim

    def forward(self, *xs):
        if not xs:
            raise ValueError(f"{self.name}: needs at least one tensor")
        ref = xs[0].shape
        for i, x in enumerate(xs):
            if not x.shape:
                raise ValueError(f"{self.name}: the tensor at position {i} is 0-d and cannot be "
                                 "concatenated (as torch); use stack, or reshape it to (1,)")
        self.dim = normalize_axis(self.name, self.dim, len(ref))
        for x in xs:
            if len(x.shape) != len(ref) or any(
                    a != b for d, (a, b) in enumerate(zip(x.shape, ref)) if d != self.dim):
                shapes = ", ".join(str(tuple(x.shape)) for x in xs)
                raise ValueError(f"{self.name}: shapes {shapes} differ outside dim {self.dim}")
        self.sizes = [x.shape[self.dim] for x in xs]
        return self.backend.cat(xs, self.dim)

    def backward(self, grad):
        grads, start = [], 0
        for n in self.sizes:
            key = (slice(None),) * self.dim + (slice(start, start + n),)
            grads.append(Index(key)(grad))
            start += n
        return tuple(grads)


class Chunk(MultiOutputOperation):
    """ys = x split into n chunks of size ceil(len/n) along dim (the last one smaller, as torch;
    n empty chunks of an empty dim);
    dx = cat(dy_i, dim) with zeros for the chunks whose gradient is unused"""
    saves = ()

    def __init__(self, n, dim=0):
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"Chunk: the number of chunks must be an int, got "
                            f"{type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"Chunk: the number of chunks must be >= 1, got {n}")
        self.n, self.dim = operator.index(n), dim

    def forward(self, x):
        if not x.shape:
            raise ValueError(f"{self.name}: expects a tensor with at least 1 dim, got a 0-d "
                             "tensor (as torch.chunk)")
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        length = x.shape[self.dim]
        if length == 0:  # torch: n empty chunks
            self.sizes = [0] * self.n
        else:
            size = -(-length // self.n)
            self.sizes = [min(size, length - s) for s in range(0, length, size)]
        self.in_shape = x.shape
        return self.backend.split(x, self.sizes, self.dim)

    def backward_multi(self, grads):
        return _join_pieces(self, grads)


def _join_pieces(op, grads):
    """The gradient of a split: the pieces' gradients concatenated, zeros for unused ones."""
    pieces = []
    for g, n in zip(grads, op.sizes):
        if g is None:
            shape = op.in_shape[:op.dim] + (n,) + op.in_shape[op.dim + 1:]
            dtype = next(x for x in grads if x is not None).dtype
            g = op.constant(op.backend.zeros(shape, dtype))
        pieces.append(g)
    return (Cat(op.dim)(*pieces),)


class Split(MultiOutputOperation):
    """ys = x cut along dim into consecutive pieces of the given sizes (torch.split);
    dx = cat(dy_i, dim) with zeros for the pieces whose gradient is unused"""
    saves = ()

    def __init__(self, sizes, dim=0):
        self.sizes, self.dim = [int(n) for n in sizes], dim

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        if not x.shape:
            raise ValueError(f"{self.name}: cannot split a 0-d tensor")
        if sum(self.sizes) != x.shape[self.dim] or any(n < 0 for n in self.sizes):
            raise ValueError(f"{self.name}: sizes {self.sizes} must be non-negative and add up to "
                             f"{x.shape[self.dim]}, the length of dim {self.dim} of shape "
                             f"{tuple(x.shape)}")
        self.in_shape = x.shape
        return self.backend.split(x, self.sizes, self.dim)

    def backward_multi(self, grads):
        return _join_pieces(self, grads)
