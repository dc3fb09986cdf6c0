"""The public function API: each function validates its arguments and applies one op
(or a few); the ops turn Python scalars and NumPy arrays into tensors (as_tensors, the
one conversion rule). Tensor's methods and operators are these functions, bound from
opgraph.tensor.METHODS when this module is imported."""
import builtins  # this module's sum, min, max, abs and pow are the tensor functions
import collections
import math
import sys

import numpy as np

from opgraph import backends

from opgraph.ops import conv as _conv
from opgraph.ops import elementwise as _ew
from opgraph.ops import indexing as _ix
from opgraph.ops import linalg as _la
from opgraph.ops import nn_ops as _nn
from opgraph.ops import reduce as _red
from opgraph.ops import shape as _sh
from opgraph.ops.shape import DimError, broadcast_shapes, check_flag, normalize_axis
from opgraph.ops.einsum import einsum, einsum_path  # noqa: F401  (string and sublist forms)
from opgraph.ops.tropical import Semiring, register_semiring, tropical_einsum  # noqa: F401


from .tensor import (Tensor, as_dtype, as_tensors, bind_methods, check_fits, fits,
                     numeric_array, result_dtype, weak_scalar)


def _tensor(name, x):
    """`x` as a Tensor (arrays and numbers convert, anything else is a TypeError naming `name`)."""
    return x if isinstance(x, Tensor) else as_tensors(name, (x,))[0]


# ---- arithmetic
def add(a, b): return _ew.Add()(a, b)
def sub(a, b): return _ew.Sub()(a, b)
def mul(a, b): return _ew.Mul()(a, b)
def div(a, b): return _ew.Div()(a, b)
def floor_divide(a, b): return _ew.FloorDivide()(a, b)
def remainder(a, b): return _ew.Remainder()(a, b)
def fmod(a, b): return _ew.Fmod()(a, b)
def neg(x): return _ew.Neg()(x)


def pow(x, exponent):
    """x ** exponent, elementwise; the exponent is a number or a tensor (broadcasting)."""
    if isinstance(exponent, Tensor) or not isinstance(x, Tensor):
        return _ew.PowTensor()(x, exponent)
    if not isinstance(exponent, (int, float, np.integer, np.floating)):
        raise TypeError(f"Pow: exponent must be a number or a tensor, got {type(exponent).__name__}")
    return _ew.Pow(exponent)(x)


def _compare(kind, a, b):
    """Elementwise comparison as a bool tensor (not differentiable)."""
    a, b = (_exact_int(a, b), _exact_int(b, a))
    a, b = as_tensors(kind, (a, b), promote=True)
    if a.shape != b.shape:
        broadcast_shapes(kind, a.shape, b.shape)
    return Tensor._make(a.backend.binary(kind, a.data, b.data), a.backend)


def _exact_int(x, other):
    # as torch: an int tensor compared with a Python int past its dtype's range compares the
    # values (uint8 < 300 is True), not the int wrapped into the dtype
    if isinstance(x, Tensor) and x.dtype.kind in "iu" and isinstance(other, (int, np.integer)) \
            and not isinstance(other, bool) and not fits(int(other), x.dtype):
        return astype(x, np.int64)
    return x


def eq(a, b): return _compare("eq", a, b)
def ne(a, b): return _compare("ne", a, b)
def gt(a, b): return _compare("gt", a, b)
def ge(a, b): return _compare("ge", a, b)
def lt(a, b): return _compare("lt", a, b)
def le(a, b): return _compare("le", a, b)


# ---- unary
def exp(x): return _ew.Exp()(x)
def log(x): return _ew.Log()(x)
def log_eps(x, eps):
    """log(x + eps), for a number eps."""
    eps = weak_scalar(eps)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"log_eps: eps must be a number, got {type(eps).__name__}"
                        + (f" {eps!r}" if isinstance(eps, (str, bytes, complex)) else ""))
    return _ew.LogWithEpsilon(eps)(x)
def sin(x): return _ew.Sin()(x)
def cos(x): return _ew.Cos()(x)
def sqrt(x): return _ew.Sqrt()(x)
def rsqrt(x): return _ew.Rsqrt()(x)
def abs(x): return _ew.Abs()(x)
def relu(x): return _ew.ReLU()(x)
def sigmoid(x): return _ew.Sigmoid()(x)
def tanh(x): return _ew.Tanh()(x)
def silu(x): return _ew.SiLU()(x)


# ---- elementwise extremes
def maximum(a, b):
    """Elementwise maximum (NaN propagates); ties share the gradient, as torch.maximum."""
    return _ew.Maximum()(a, b)


def minimum(a, b):
    """Elementwise minimum (as maximum)."""
    return _ew.Minimum()(a, b)


def _no_bound(dtype, end):
    """The widest bound of `dtype` on one side (-inf / inf, the integer range, False / True)."""
    if dtype.kind == "f":
        return -math.inf if end < 0 else math.inf
    if dtype.kind == "b":
        return end > 0
    info = np.iinfo(dtype)
    return int(info.min if end < 0 else info.max)


def clamp(x, min=None, max=None):
    """Each element limited to [min, max] (numbers or tensors, broadcasting; either may be
    None); all of it is max where min > max, as torch.clamp. The gradient flows where
    min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if not isinstance(x, Tensor):
        x = as_tensors("Clamp", (x,))[0]
    for what, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, (Tensor, bool, int, float, np.generic)) or \
                isinstance(v, np.generic) and v.dtype.kind not in "biuf":
            raise TypeError(f"clamp: {what} must be a number, a tensor or None, got "
                            f"{type(v).__name__} {v!r}")
    min, max = weak_scalar(min), weak_scalar(max)
    bounds = [v for v in (min, max) if v is not None]
    dtype = result_dtype(x, *bounds)  # as torch: an int tensor clamped to 2.5 is float32
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # a missing bound is the widest of the result's dtype (not of x's: an int8 -128
        # would wrap as a uint8)
        min, max = (_no_bound(dtype, end) if v is None else v for v, end in ((min, -1), (max, 1)))
        return _ew.ClampTensor()(x, min, max)
    if dtype != x.dtype:
        x = astype(x, dtype)
    for v in bounds:
        check_fits("clamp", v, dtype)
    return _ew.Clamp(min, max)(x)


clip = clamp


def masked_fill(x, mask, value):
    """x with `value` (a number or a 0-d tensor) where the bool `mask` (broadcast to x's
    shape) is True; differentiable in x (and in a tensor value)."""
    x = _tensor("masked_fill", x)
    mask = _bool_mask("masked_fill", x, mask)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: only supports a 0-d tensor as the value, got shape "
                             f"{value.shape}")
        if value.dtype != x.dtype:
            value = astype(value, x.dtype) if value.dtype.kind == x.dtype.kind == "f" else \
                Tensor._make(x.backend.astype(value.data, x.dtype), x.backend)
    else:
        check_fits("masked_fill", weak_scalar(value), x.dtype)
        value = Tensor._make(x.backend.asarray(np.asarray(weak_scalar(value)).astype(x.dtype)),
                             x.backend)
    return _ew.Where(mask)(value, x)


def _bool_mask(name, x, mask):
    """The backend array of a bool mask that broadcasts to x's shape."""
    if isinstance(mask, Tensor):
        data = mask.data if mask.backend is x.backend else x.backend.asarray(mask.numpy())
    else:
        data = x.backend.asarray(np.asarray(mask))
    if data.dtype.kind != "b":
        raise TypeError(f"{name}: the mask must be a bool tensor, got dtype {data.dtype}")
    if broadcast_shapes(name, tuple(data.shape), x.shape) != x.shape:
        raise ValueError(f"{name}: a mask of shape {tuple(data.shape)} does not broadcast to the "
                         f"tensor's shape {x.shape}")
    return data


def astype(x, dtype):
    dtype = as_dtype("astype", dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind == "f" and x.dtype.kind == "f":
        return _ew.AsType(dtype)(x)
    return Tensor._make(x.backend.astype(x.data, dtype), x.backend)


def clone(x):
    """A copy of x with storage of its own, differentiable (x.clone())."""
    return _ew.Clone()(_tensor("clone", x))


def to(x, *args, dtype=None, backend=None):
    """x.to(backend), x.to(dtype), x.to(backend, dtype) (as torch's device and dtype)."""
    for a in args:
        if isinstance(a, (str, backends.Backend)) and backend is None:
            backend = a
        elif dtype is None and not isinstance(a, (str, backends.Backend)):
            dtype = a
        else:
            raise TypeError(f"to: unexpected argument {a!r} (expected a backend and/or a dtype)")
    if backend is not None:
        x = to_backend(x, backend)
    return x if dtype is None else astype(x, dtype)


def to_backend(x, backend):
    """x on another backend (a Backend or its name), differentiable."""
    backend = backends.get(backend)
    if backend is x.backend:
        return x
    return _ew.ToBackend(backend)(x)


def where(cond, x, y):
    """cond ? x : y elementwise, broadcasting; differentiable in x and y."""
    x, y = as_tensors("Where", (x, y), promote=True)
    if isinstance(cond, Tensor):
        cond = cond.data
    else:
        cond = x.backend.asarray(numeric_array(
            cond, "Where: the condition of where(cond, x, y) must be a bool tensor or array"))
    if cond.dtype.kind != "b":
        cond = x.backend.binary("ne", cond, 0)
    return _ew.Where(cond)(x, y)


# ---- linear algebra
def matmul(a, b):
    """Matrix product with NumPy semantics: 2-D, batched with broadcast batch dims, and
    1-D operands promoted to a row / column and squeezed afterwards."""
    a, b = as_tensors("MatMul", (a, b), promote=True)
    if len(a.data.shape) == 2 and len(b.data.shape) == 2:  # the common case first
        return _la.MatMul()(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"MatMul: scalar operands are not allowed (shapes {a.shape} and {b.shape});"
                         " use mul")
    if a.ndim == 1 or b.ndim == 1:
        k_a, k_b = a.shape[-1], b.shape[0 if b.ndim == 1 else -2]
        if k_a != k_b:
            raise ValueError(f"MatMul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{k_a} (last dim of the first) != {k_b} (the second's "
                             f"{'only' if b.ndim == 1 else 'second-to-last'} dim)")
    if a.ndim == 2 and b.ndim == 2:
        return _la.MatMul()(a, b)
    squeeze = []
    if a.ndim == 1:
        a = a.reshape(1, -1)
        squeeze.append(-2)
    if b.ndim == 1:
        b = b.reshape(-1, 1)
        squeeze.append(-1)
    out = _la.MatMul()(a, b) if a.ndim == 2 and b.ndim == 2 else _la.BatchMatMul()(a, b)
    if squeeze:
        shape = list(out.shape)
        for axis in sorted(squeeze):
            shape[axis] = None
        out = out.reshape(*[n for n in shape if n is not None])
    return out


def mm(a, b):
    """The product of two 2-D matrices (torch.mm; matmul broadcasts, mm does not)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.ndim != 2 or b.ndim != 2:
        shapes = [t.shape if isinstance(t, Tensor) else type(t).__name__ for t in (a, b)]
        raise ValueError(f"mm: expects two 2-D tensors, got {shapes[0]} and {shapes[1]}")
    return _la.MatMul()(a, b)


# ---- reductions
def sum(x, dim=None, keepdim=False): return _red.SumDim(dim, keepdim)(x)
def mean(x, dim=None, keepdim=False): return _red.MeanDim(dim, keepdim)(x)


MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])


def _extreme(name, x, dim, keepdim, whole, along, pair, result):
    if isinstance(dim, (Tensor, np.ndarray)):  # torch.max(a, b): the elementwise maximum
        return pair(x, dim)
    x = _tensor(name, x)
    if dim is None:
        if x.numel() == 0:
            raise DimError(f"{name}: of an empty tensor of shape {x.shape} (no identity); pass "
                           "a dim to reduce a non-empty one")
        return whole(None, keepdim)(x)
    op = along(dim, keepdim)
    values = op(x)
    return result(values, Tensor._make(op.indices, x.backend))


def max(x, dim=None, keepdim=False):
    """max(x): the largest element (the gradient shared evenly by ties, as torch);
    max(x, dim): the named tuple (values, indices) of each slice's first maximum (the
    gradient goes to that index); max(x, other): the elementwise maximum."""
    return _extreme("max", x, dim, keepdim, _red.AMax, _red.MaxDim, maximum, MaxResult)


def min(x, dim=None, keepdim=False):
    """min(x): the smallest element; min(x, dim): the named tuple (values, indices) of each
    slice's first minimum; min(x, other): the elementwise minimum (as max)."""
    return _extreme("min", x, dim, keepdim, _red.AMin, _red.MinDim, minimum, MinResult)


def amax(x, dim=None, keepdim=False):
    """Maximum over dims (an int, a tuple, or all when None or ()); ties share the gradient."""
    return _red.AMax(None if dim == () else dim, keepdim)(_tensor("amax", x))


def amin(x, dim=None, keepdim=False):
    """Minimum over dims (as amax)."""
    return _red.AMin(None if dim == () else dim, keepdim)(_tensor("amin", x))


def _arg(name, kernel, x, dim, keepdim):
    x = _tensor(name, x)
    keepdim = check_flag(name, "keepdim", keepdim)
    b = x.backend
    if dim is None:
        if x.numel() == 0:
            raise DimError(f"{name}: of an empty tensor of shape {x.shape}; pass a dim to reduce "
                           "a non-empty one")
        flat = getattr(b, kernel)(b.reshape(x.data, (-1,)), 0)
        return Tensor._make(b.reshape(flat, (1,) * x.ndim) if keepdim else flat, b)
    dim = normalize_axis(name, dim, x.ndim)
    if x.ndim == 0:  # its own extreme, at index 0 (as torch)
        return Tensor._make(b.zeros((), "int64"), b)
    if x.shape[dim] == 0:
        raise DimError(f"{name}: dim {dim} of a tensor of shape {x.shape} is empty")
    if x.numel() == 0:
        shape = x.shape[:dim] + ((1,) if keepdim else ()) + x.shape[dim + 1:]
        return Tensor._make(b.zeros(shape, "int64"), b)
    return Tensor._make(getattr(b, kernel)(x.data, dim, keepdim), b)


def argmax(x, dim=None, keepdim=False):
    """Index (int64) of the first maximum, of the flattened tensor when dim is None (not
    differentiable)."""
    return _arg("argmax", "argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    """Index (int64) of the first minimum (as argmax)."""
    return _arg("argmin", "argmin", x, dim, keepdim)


def _float_input(name, x):
    if not isinstance(x, Tensor):
        x = as_tensors(name, (x,))[0]
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: needs a floating-point tensor, got dtype {x.dtype}")
    return x


def _correction(name, unbiased, correction):
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}: give unbiased or correction, not both")
    if correction is None:
        return 1 if unbiased is None or unbiased else 0
    if isinstance(correction, bool) or not isinstance(correction, (int, float, np.integer,
                                                                   np.floating)):
        raise TypeError(f"{name}: correction must be a number, got {correction!r}")
    return correction


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over dims (all when None): Σ (x - mean)² / (N - correction); correction 1
    (Bessel's, the default, unbiased=True) or 0 (unbiased=False), as torch.var."""
    if isinstance(dim, bool):  # var(x, False): torch's var(input, unbiased)
        dim, unbiased = None, dim
    x = _float_input("var", x)
    return _red.Var(dim, _correction("var", unbiased, correction), keepdim)(x)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: sqrt(var) with the same arguments (a zero gradient where it
    is 0, as torch)."""
    if isinstance(dim, bool):  # std(x, False): torch's std(input, unbiased)
        dim, unbiased = None, dim
    x = _float_input("std", x)
    return _red.Std(dim, _correction("std", unbiased, correction), keepdim)(x)


def logsumexp(x, dim=None, keepdim=False):
    """log Σ exp(x) over dims (all when None), stable for large and -inf inputs."""
    return _red.LogSumExp(dim, keepdim)(_float_input("logsumexp", x))


# ---- shapes
def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape): return _sh.Reshape(_shape_args(shape))(x)


def transpose(x, *axes):
    """Permute axes: no axes reverses them, one tuple (or several ints) is a permutation
    (NumPy), and exactly two ints swap those two dims (torch.transpose)."""
    x = _tensor("Transpose", x)
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    elif len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    elif len(axes) == 2:
        i, j = (normalize_axis("Transpose", a, x.ndim) for a in axes)
        perm = list(range(x.ndim))
        perm[i], perm[j] = perm[j], perm[i]
        axes = tuple(perm)
    return _sh.Transpose(axes)(x)


def permute(x, *axes):
    """Permute axes (torch.permute): `axes` is a permutation, as ints or one tuple."""
    return _sh.Transpose(_shape_args(axes))(x)


def broadcast_to(x, *shape): return _sh.BroadcastTo(_shape_args(shape))(x)


def flatten(x, start_dim=0, end_dim=-1):
    x = _tensor("Flatten", x)
    start = normalize_axis("Flatten", start_dim, x.ndim)
    end = normalize_axis("Flatten", end_dim, x.ndim)
    if x.ndim == 0:
        return reshape(x, (1,))
    if start > end:
        raise ValueError(f"Flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                         f"tensor of shape {x.shape}")
    size = math.prod(x.shape[start:end + 1])
    return reshape(x, x.shape[:start] + (size,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    """x without its size-1 dims (all, one, or a tuple of them, as torch): a named dim of
    another size stays."""
    x = _tensor("Squeeze", x)
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    dims = {normalize_axis("Squeeze", d, x.ndim) for d in dims}
    if len(dims) != len(dim if isinstance(dim, (tuple, list)) else (dim,)):
        raise ValueError(f"Squeeze: dim {dim} appears more than once")
    if x.ndim == 0:
        return x
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in dims or n != 1))


def unsqueeze(x, dim):
    x = _tensor("Unsqueeze", x)
    if isinstance(dim, bool) or not hasattr(dim, "__index__"):
        raise TypeError(f"Unsqueeze: dim must be an int, got {type(dim).__name__} {dim!r}")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise DimError(f"Unsqueeze: dim {dim} is out of range for a tensor of shape {x.shape} "
                         f"(expected {-x.ndim - 1} <= dim <= {x.ndim})")
    dim = normalize_axis("Unsqueeze", dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def index_key(x, key):
    """A user's key for x[key] as one the backend takes: tensors and lists become backend
    integer arrays, a boolean mask becomes the integer arrays of its True positions."""
    parts = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, (Tensor, list, np.ndarray)) for k in parts):
        return key
    bk = x.backend
    used = [_dims_used(k) for k in parts]
    converted, dim = [], 0
    for k, n in zip(parts, used):
        if k is Ellipsis:
            dim += x.ndim - builtins.sum(u for u in used if u is not None)
            converted.append(k)
            continue
        if isinstance(k, Tensor):
            if k.dtype.kind not in "biu":
                raise IndexError(f"Index: index arrays must be integers (or bool masks), got a "
                                 f"tensor of dtype {k.dtype}")
            # a copy: the op keeps the key, and the index tensor may be written in place later
            k = bk.copy(k.data) if k.backend is bk else bk.asarray(k.numpy())
        elif isinstance(k, (list, np.ndarray)):
            k = _index_array(k, key)
            k = bk.asarray(k.astype(np.bool_ if k.dtype.kind == "b" else np.int64))
        elif hasattr(k, "dtype") and k.dtype.kind == "f":  # a device array of floats
            raise IndexError(f"Index: index arrays must be integers, got dtype {k.dtype}")
        if getattr(k, "dtype", None) is not None and np.dtype(k.dtype).kind == "b" \
                and len(k.shape):
            mask_shape = tuple(k.shape)
            if tuple(x.shape[dim:dim + len(mask_shape)]) != mask_shape:
                raise IndexError(f"Index: the shape of the mask {list(mask_shape)} at index "
                                 f"{dim} does not match the shape of the indexed tensor "
                                 f"{list(x.shape)} at index {dim}")
            converted.extend(bk.nonzero(k))
        else:
            converted.append(k)
        dim += n or 0
    return tuple(converted)


def _dims_used(k):
    """How many dims of the indexed tensor a key part consumes (None for Ellipsis)."""
    if k is Ellipsis:
        return None
    if k is None or isinstance(k, (bool, np.bool_)):
        return 0
    if isinstance(k, (Tensor, np.ndarray)) and k.dtype.kind == "b":
        return k.ndim
    if isinstance(k, list):
        try:
            a = np.asarray(k)
        except ValueError:  # ragged: _index_array names it
            return 1
        return a.ndim if a.dtype.kind == "b" else 1
    return 1


def index(x, key):
    """x[key]: ints, slices, None, Ellipsis, integer arrays and boolean masks (x[mask] is
    the 1-D tensor of the elements where mask is True), differentiable."""
    return _sh.Index(index_key(x, key))(x)


def setitem(x, key, value):
    """x[key] = value, in place (see opgraph.inplace)."""
    from .inplace import setitem as _setitem
    _setitem(x, key, value)


def expand(x, *shape):
    """x broadcast to `shape` (torch.expand): -1 keeps that dim's size; new dims go in front."""
    x = _tensor("expand", x)
    shape = _shape_args(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: the number of sizes ({len(shape)}) must be at least the "
                         f"tensor's number of dims ({x.ndim}), shape {x.shape}")
    full = []
    for i, n in enumerate(shape):
        if n == -1:
            if i < lead:
                raise ValueError(f"expand: -1 is not allowed for a new leading dim (size {i} of "
                                 f"{shape})")
            n = x.shape[i - lead]
        full.append(n)
    return _sh.BroadcastTo(tuple(full))(x)


def t(x):
    """The transpose of a tensor with at most 2 dims (0-d and 1-d come back as they are)."""
    x = _tensor("t", x)
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dims, but it has {x.ndim} (shape "
                         f"{x.shape}); use transpose(dim0, dim1)")
    return _sh.Transpose(tuple(reversed(range(x.ndim))))(x)


def split(x, split_size_or_sections, dim=0):
    """A tuple of pieces along dim: of split_size each (the last smaller), or of the sizes
    listed (which must add up to the dim's length), as torch.split."""
    x = _tensor("split", x)
    n = x.shape[normalize_axis("Split", dim, x.ndim)] if x.ndim else 0
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = list(split_size_or_sections)
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
                raise ValueError(f"split: the sizes must be non-negative ints, got {sizes!r}")
    else:
        size = split_size_or_sections
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0 or (
                size == 0 and n):
            raise ValueError(f"split: split_size must be a positive int, got {size!r}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] if n else [0]
    return _sh.Split(sizes, dim)(x)


def _index_array(k, key):
    """A list or array key as a NumPy integer (or bool) array: floats are an IndexError
    (as NumPy and torch; x[[0.5]] must not truncate to x[[0]])."""
    empty_list = isinstance(k, list) and not k
    try:
        k = np.asarray(k)
    except ValueError:  # ragged lists
        raise IndexError(f"Index: the index list {key!r} is ragged") from None
    if k.dtype.kind in "iub" or empty_list:  # x[[]] selects nothing (NumPy, torch)
        return k
    raise IndexError(f"Index: index arrays must be integers (or bool), got dtype {k.dtype} "
                     f"in key {key!r}")


def _sequence(name, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) and \
            not hasattr(tensors, "__iter__"):
        raise TypeError(f"{name}: expected a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    return list(tensors)


def cat(tensors, dim=0):
    return _sh.Cat(dim)(*_sequence("Cat", tensors))


def stack(tensors, dim=0):
    """The tensors (all of one shape) joined along a new dim."""
    tensors = [_tensor("stack", t) for t in _sequence("stack", tensors)]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: expects tensors of one shape, got {tensors[0].shape} at "
                             f"position 0 and {t.shape} at position {i}")
    n = tensors[0].ndim
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and \
            not -n - 1 <= dim <= n:
        raise DimError(f"stack: dim {dim} is out of range for stacking tensors of {n} dims "
                       f"(expected {-n - 1} <= dim <= {n})")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def chunk(x, n, dim=0):
    """A tuple of chunks of size ceil(len/n) along dim, the last one smaller (as torch.chunk)."""
    return _sh.Chunk(n, dim)(x)


# ---- indexing
def _indices(idx, like, name):
    _, idx = as_tensors(name, (like, idx))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be integers, got dtype {idx.dtype}")
    return idx


def gather(x, dim, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1, as torch.gather."""
    x = _tensor("Gather", x)
    index = _indices(index, x, "Gather")
    if x.ndim == 0:  # as torch: a 0-d tensor gathers like one of shape (1,)
        normalize_axis("Gather", dim, 0)
        flat = _ix.Gather(0)(x.reshape(1), index.reshape(-1) if index.ndim == 0 else index)
        return flat.reshape(()) if index.ndim == 0 else flat
    return _ix.Gather(dim)(x, index)


def index_select(x, dim, index):
    """The entries of x at the integer positions `index` (1-D, or 0-d) along dim, as
    torch.index_select; differentiable (repeats accumulate)."""
    x = _tensor("index_select", x)
    axis = normalize_axis("IndexSelect", dim, x.ndim)
    index = _indices(index, x, "IndexSelect")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {index.shape}")
    bound = x.shape[axis] if x.ndim else 1
    _ix.check_index(x.backend, "IndexSelect", index.data, bound, axis)
    data = x.backend.reshape(x.backend.copy(index.data), (-1,))
    if x.ndim == 0:
        return _sh.Index(data)(x.reshape(1)).reshape(())
    return _sh.Index((slice(None),) * axis + (data,))(x)


def scatter(x, dim, index, src=None, *, value=None):
    """torch.scatter, out of place: x with x[i][index[i][j][k]][k] = src[i][j][k] (dim=1);
    `src` may be a number (or pass value=)."""
    if (src is None) == (value is None):
        raise TypeError("scatter: give exactly one of src and value")
    x = _tensor("scatter", x)
    index = _indices(index, x, "Scatter")
    src = value if src is None else src
    if not isinstance(src, Tensor):
        src = weak_scalar(src)
        if not isinstance(src, (bool, int, float)):
            raise TypeError(f"scatter: src must be a tensor or a number, got "
                            f"{type(src).__name__} {src!r}")
        src = Tensor._make(x.backend.full(index.shape, src, x.dtype), x.backend)
    _same_dtype("scatter", x, src)
    return _ix.Scatter(dim)(x, index, src)


def scatter_add(x, dim, index, src):
    """torch.scatter_add, out of place: x + the src entries added at the index positions
    (repeated positions accumulate)."""
    x = _tensor("scatter_add", x)
    index = _indices(index, x, "ScatterAdd")
    _same_dtype("scatter_add", x, src)
    axis = normalize_axis("ScatterAdd", dim, x.ndim)
    _ix.check_scatter("ScatterAdd", x.backend, x.shape, index.data, src.data, axis)
    if x.ndim == 0:
        return x + src.reshape(())
    return x + _ix.ScatterAdd(x.shape, axis)(src, index)


def _same_dtype(name, x, src):
    if not isinstance(src, Tensor) or src.dtype != x.dtype:
        got = src.dtype if isinstance(src, Tensor) else type(src).__name__
        raise TypeError(f"{name}: src must be a tensor of the input's dtype {x.dtype}, got {got}")


def embedding(weight, indices):
    """Rows of `weight` picked by integer `indices` (any shape)."""
    return _ix.Embedding()(weight, _indices(indices, weight, "Embedding"))


# ---- neural-network functions
def softmax(x, dim=-1): return _nn.Softmax(dim)(x)
def log_softmax(x, dim=-1): return _nn.LogSoftmax(dim)(x)


def cross_entropy(logits, targets):
    """Mean over the batch of -log softmax(logits)[n, targets[n]]; logits (N, C), targets (N,)."""
    return _nn.CrossEntropy()(logits, _indices(targets, logits, "CrossEntropy"))


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as torch), NCHW."""
    op = _conv.Conv2D(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)


def max_pool2d(x, kernel_size, stride=None):
    """Max pooling, NCHW; stride defaults to kernel_size; ties go to the first maximum."""
    return _conv.MaxPool2D(kernel_size, stride)(x)


__all__ = """
    add sub mul div pow neg exp log log_eps sin cos sqrt rsqrt abs relu sigmoid tanh silu
    astype where matmul sum mean max argmax reshape transpose permute broadcast_to flatten
    squeeze unsqueeze cat stack chunk gather embedding softmax log_softmax cross_entropy
    conv2d max_pool2d einsum einsum_path tropical_einsum Semiring register_semiring
    eq ne gt ge lt le maximum minimum clamp clip min argmin amax amin var std logsumexp
    masked_fill expand split index_select scatter scatter_add clone mm t floor_divide remainder
    fmod""".split()

# the in-place methods (Tensor.add_, x += y, x[key] = v, ...) live in opgraph.inplace
from .inplace import (add_, sub_, mul_, div_, floor_divide_, remainder_, fmod_, pow_, neg_, exp_, sqrt_, rsqrt_, relu_,  # noqa: E402
                      sigmoid_, tanh_, abs_, log_, sin_, cos_, clamp_, fill_, zero_, copy_,
                      masked_fill_, addcmul_, addcdiv_, lerp_, uniform_, normal_)

clip_ = clamp_

bind_methods(sys.modules[__name__])
