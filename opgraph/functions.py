"""The public function API: each function validates its arguments and applies one op
(or a few); the ops turn Python scalars and NumPy arrays into tensors (as_tensors, the
one conversion rule). Tensor's methods and operators are these functions, bound from
opgraph.tensor.METHODS when this module is imported."""
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


from .tensor import Tensor, as_dtype, as_tensors, bind_methods, weak_scalar


def _tensor(name, x):
    """`x` as a Tensor (arrays and numbers convert, anything else is a TypeError naming `name`)."""
    return x if isinstance(x, Tensor) else as_tensors(name, (x,))[0]


# ---- arithmetic
def add(a, b): return _ew.Add()(a, b)
def sub(a, b): return _ew.Sub()(a, b)
def mul(a, b): return _ew.Mul()(a, b)
def div(a, b): return _ew.Div()(a, b)
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
    a, b = as_tensors(kind, (a, b), promote=True)
    if a.shape != b.shape:
        broadcast_shapes(kind, a.shape, b.shape)
    return Tensor._make(a.backend.binary(kind, a.data, b.data), a.backend)


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


def astype(x, dtype):
    dtype = as_dtype("astype", dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind == "f" and x.dtype.kind == "f":
        return _ew.AsType(dtype)(x)
    return Tensor._make(x.backend.astype(x.data, dtype), x.backend)


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
        host = np.asarray(cond) if isinstance(cond, (bool, int, float, np.generic, np.ndarray,
                                                      list, tuple)) else None
        if host is None or host.dtype.kind not in "biuf":
            what = type(cond).__name__ if host is None else f"dtype {host.dtype}"
            raise TypeError(f"Where: the condition of where(cond, x, y) must be a bool tensor "
                            f"or array, got {what}")
        cond = x.backend.asarray(host)
    if cond.dtype.kind != "b":
        cond = x.backend.binary("ne", cond, 0)
    return _ew.Where(cond)(x, y)


# ---- linear algebra
def matmul(a, b):
    """Matrix product with NumPy semantics: 2-D, batched with broadcast batch dims, and
    1-D operands promoted to a row / column and squeezed afterwards."""
    a, b = as_tensors("MatMul", (a, b), promote=True)
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


# ---- reductions
def sum(x, dim=None, keepdim=False): return _red.SumDim(dim, keepdim)(x)
def mean(x, dim=None, keepdim=False): return _red.MeanDim(dim, keepdim)(x)


def max(x, dim=None, keepdim=False):
    """Maximum over one dim (or all); the gradient goes to the first maximum."""
    x = _tensor("max", x)
    if dim is None:
        if x.size == 0:
            raise ValueError(f"max: of an empty tensor of shape {x.shape} (no identity); pass "
                             "a dim to reduce a non-empty one")
        out = _red.MaxDim(0)(x.reshape(-1))
        return out.reshape(*([1] * x.ndim)) if keepdim else out
    return _red.MaxDim(dim, keepdim)(x)


def argmax(x, dim=None, keepdim=False):
    """Index (int64) of the first maximum (not differentiable)."""
    x = _tensor("argmax", x)
    keepdim = check_flag("argmax", "keepdim", keepdim)
    b = x.backend
    if dim is None:
        if x.size == 0:
            raise DimError(f"argmax: of an empty tensor of shape {x.shape}; pass a dim to reduce "
                           "a non-empty one")
        flat = b.argmax(b.reshape(x.data, (-1,)), 0)
        return Tensor._make(b.reshape(flat, (1,) * x.ndim) if keepdim else flat, b)
    dim = normalize_axis("argmax", dim, x.ndim)
    if x.ndim == 0:  # its own maximum, at index 0 (as torch)
        return Tensor._make(b.zeros((), "int64"), b)
    if x.shape[dim] == 0:
        raise DimError(f"argmax: dim {dim} of a tensor of shape {x.shape} is empty")
    if x.size == 0:
        shape = x.shape[:dim] + ((1,) if keepdim else ()) + x.shape[dim + 1:]
        return Tensor._make(b.zeros(shape, "int64"), b)
    return Tensor._make(b.argmax(x.data, dim, keepdim), b)


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
    x = _tensor("Squeeze", x)
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dim = normalize_axis("Squeeze", dim, x.ndim)
    if x.ndim == 0 or x.shape[dim] != 1:
        return x
    return reshape(x, x.shape[:dim] + x.shape[dim + 1:])


def unsqueeze(x, dim):
    x = _tensor("Unsqueeze", x)
    if isinstance(dim, bool) or not hasattr(dim, "__index__"):
        raise TypeError(f"Unsqueeze: dim must be an int, got {type(dim).__name__} {dim!r}")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise DimError(f"Unsqueeze: dim {dim} is out of range for a tensor of shape {x.shape} "
                         f"(expected {-x.ndim - 1} <= dim <= {x.ndim})")
    dim = normalize_axis("Unsqueeze", dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def index(x, key):
    """x[key]: basic slicing and integer-array indexing, differentiable."""
    parts = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, (Tensor, list, np.ndarray)) for k in parts):
        converted = []
        for k in parts:
            if isinstance(k, Tensor):
                k = k.numpy() if k.backend.name == "numpy" else k.data
            if isinstance(k, (list, np.ndarray)):
                k = _index_array(k, key)
                if k.dtype.kind == "b":
                    raise TypeError(f"Index: boolean mask keys are not supported (key shape "
                                    f"{k.shape}); use where() instead")
                k = x.backend.asarray(k.astype(np.int64))
            elif hasattr(k, "dtype") and k.dtype.kind == "f":  # a device array of floats
                raise IndexError(f"Index: index arrays must be integers, got dtype {k.dtype}")
            converted.append(k)
        key = tuple(converted)
    return _sh.Index(key)(x)


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
    tensors = _sequence("stack", tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
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
    eq ne gt ge lt le""".split()

bind_methods(sys.modules[__name__])
