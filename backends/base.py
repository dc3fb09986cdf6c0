"""The Backend interface: every kernel an op may call.

An op never touches tensor data itself; it asks its backend. A backend owns
an array type (NumPy ndarray, Numba device array, ...) and implements the
kernels below on it. Shapes are tuples of ints, axes are non-negative or
negative ints, dtypes are NumPy dtypes. Kernels may assume their inputs were
validated by the op (shapes agree), with one exception: every kernel that
takes indices checks them and never reads or writes outside an array. An
index out of range raises IndexOutOfRange naming the kernel
(`numba.scatter_add`), the range of the values found and the size of the dim;
an op that called the kernel re-raises it under the op's name.

The list is deliberately short (tinygrad shows how few primitives one
needs); fused kernels (softmax rows, im2col, max-pool) exist because they
are where a compiled backend wins.
"""
import math
from abc import ABC, abstractmethod

import numpy as np

from .semiring import BUILTIN as BUILTIN_SEMIRINGS, generic_matmul, get_semiring

UNARY_OPS = ("neg", "exp", "log", "sin", "cos", "sqrt", "rsqrt", "relu",
             "sigmoid", "tanh", "silu", "abs", "sign", "erf")
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum",
              "gt", "ge", "lt", "le", "eq", "ne", "floor_divide", "remainder", "fmod")
SEMIRINGS = tuple(BUILTIN_SEMIRINGS)   # names of the built-in semirings (semiring.py)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_KAPPA = 0.044715
ACTIVATIONS = ("sigmoid", "tanh", "silu", "gelu", "gelu_tanh")  # activation_grad's ops


def conv_out(size, k, stride, padding, dilation=1):
    """The output size of a convolution or pooling window along one dim."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def pair(value):
    """An int or an (h, w) pair of a conv / pool kernel argument, as a pair of ints."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


class IndexOutOfRange(IndexError, ValueError):
    """An index outside its dim: an IndexError, as NumPy and torch raise (and a
    ValueError, the type of opgraph's other bad-argument errors).

    `name` is the kernel or op, `what` names the indices ("index", "targets"...),
    [lo, hi] the range of their values, `size` the size of the dim they index;
    negative indices count from the end when `negative` is true."""

    def __init__(self, name, what, lo, hi, size, dim=None, negative=False):
        self.name, self.what, self.lo, self.hi = name, what, lo, hi
        self.size, self.dim, self.negative = size, dim, negative
        where = f"dim {dim} has size {size}" if dim is not None else f"the size is {size}"
        if size == 0:
            valid = "there is no valid index"
        else:
            valid = f"the valid range is [{-size if negative else 0}, {size - 1}]"
        super().__init__(f"{name}: {what} out of range: values span [{lo}, {hi}] but {valid} "
                         f"({where})")

    def renamed(self, name, what=None):
        """The same error reported by `name` (the op that called the kernel)."""
        return IndexOutOfRange(name, what or self.what, self.lo, self.hi, self.size,
                               self.dim, self.negative)


def check_index_dtype(name, index, what="index"):
    if np.dtype(index.dtype).kind not in "iu":
        raise TypeError(f"{name}: {what} must be an integer array, got dtype {index.dtype}")


def check_index(backend, name, index, size, dim=None, what="index"):
    """Raise unless `index` (an array of `backend`) is an integer array with every entry
    in [0, size); reads back its min and max. (A compiled backend checks inside its
    kernels and calls this only to report what it found.)"""
    check_index_dtype(name, index, what)
    if 0 in tuple(index.shape):
        return
    lo = int(backend.to_numpy(backend.min(index)))
    hi = int(backend.to_numpy(backend.max(index)))
    if lo < 0 or hi >= size:
        raise IndexOutOfRange(name, what, lo, hi, int(size), dim)


def check_targets(backend, name, logits, targets):
    """cross_entropy's inputs: logits (N, C), integer targets (N,) in [0, C)."""
    if len(logits.shape) != 2 or tuple(targets.shape) != (logits.shape[0],):
        raise ValueError(f"{name}: expected logits (N, C) and targets (N,), got shapes "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    check_index(backend, name, targets, logits.shape[1], 1, "targets")


def check_axis_indexing(name, shape, axis, index, src=None):
    """The shape rule of torch.gather / scatter_add, checked before any kernel reads:
    `index` has the ndim of `shape`, index.shape[d] <= shape[d] for d != axis, and
    index.shape[d] <= src.shape[d] for every d when there is a `src`. Returns the
    axis in [0, ndim) (0 for a 0-d `shape`, which reads as 1-d of length 1)."""
    shape, ishape = tuple(shape), tuple(index.shape)
    ndim = max(len(shape), 1)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for {len(shape)} dims")
    axis %= ndim
    fits = len(ishape) == len(shape) and all(
        i <= n for d, (i, n) in enumerate(zip(ishape, shape)) if d != axis)
    if src is not None:
        fits = fits and len(src.shape) == len(ishape) and all(
            i <= n for i, n in zip(ishape, src.shape))
    if not fits:
        also = "" if src is None else f" and src of shape {tuple(src.shape)}"
        raise ValueError(f"{name}: index of shape {ishape} does not fit shape {shape}{also} "
                         f"along axis {axis} (same ndim; index.shape[d] <= shape[d] for d != "
                         "axis" + ("" if src is None else ", <= src.shape[d] for every d") + ")")
    return axis


def check_rows_indexing(name, indices, src):
    """scatter_rows_add's shape rule: src.shape starts with indices.shape."""
    if tuple(src.shape[:len(indices.shape)]) != tuple(indices.shape):
        raise ValueError(f"{name}: src of shape {tuple(src.shape)} does not start with the "
                         f"indices' shape {tuple(indices.shape)}")


def check_key(name, shape, key):
    """Raise IndexOutOfRange unless every integer array of the NumPy-style `key`
    (a host key: NumPy arrays) lies within the dim of `shape` it indexes, counting
    negative indices from the end ([-n, n), as NumPy and torch allow)."""
    parts = key if isinstance(key, tuple) else (key,)

    def width(k):  # dims of `shape` that a key part consumes
        if k is None or k is Ellipsis:
            return 0
        if isinstance(k, np.ndarray) and k.dtype.kind == "b":
            return k.ndim
        return 1

    parts = tuple(np.asarray(k) if isinstance(k, list) else k for k in parts)
    # the index arrays broadcast together; when that is empty nothing is read, and NumPy
    # and torch accept any values in them
    arrays = [(int(k.sum()),) if k.dtype.kind == "b" else k.shape for k in parts
              if isinstance(k, np.ndarray) and k.dtype.kind in "iub"]
    try:
        if arrays and 0 in np.broadcast_shapes(*arrays):
            return
    except ValueError:  # shapes that do not broadcast: the indexing itself reports them
        pass
    used = sum(width(k) for k in parts)
    dim = 0
    for k in parts:
        if k is Ellipsis:
            dim += len(shape) - used
            continue
        if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and k.size and dim < len(shape):
            n = int(shape[dim])
            lo, hi = int(k.min()), int(k.max())
            if lo < -n or hi >= n:
                raise IndexOutOfRange(name, "index", lo, hi, n, dim=dim, negative=True)
        dim += width(k)


class Backend(ABC):
    name = "abstract"

    def __repr__(self):
        return f"<backend {self.name}>"

    # ---- creation and host transfer -------------------------------------
    @abstractmethod
    def asarray(self, data, dtype=None):
        """Host data (NumPy array, list, scalar) or a backend array -> backend array."""

    @abstractmethod
    def to_numpy(self, a):
        """Backend array -> a NumPy array on the host (a copy for device backends)."""

    @abstractmethod
    def is_array(self, a):
        """True when `a` is this backend's array type (no conversion needed)."""

    @abstractmethod
    def full(self, shape, value, dtype):
        """A new array of `shape` filled with `value`."""

    def zeros(self, shape, dtype):
        return self.full(shape, 0, dtype)

    def ones(self, shape, dtype):
        return self.full(shape, 1, dtype)

    @abstractmethod
    def astype(self, a, dtype):
        """`a` converted to `dtype` (may return `a` itself when it already has it)."""

    @abstractmethod
    def arange(self, n, dtype):
        """0, 1, ..., n-1."""

    # ---- elementwise ------------------------------------------------------
    @abstractmethod
    def unary(self, op, a):
        """Elementwise op(a) for op in UNARY_OPS."""

    @abstractmethod
    def binary(self, op, a, b):
        """Elementwise op(a, b) for op in BINARY_OPS with NumPy broadcasting.

        Either side may be a Python scalar; comparisons return bool arrays.
        floor_divide is floor(a / b), remainder a - b·floor(a / b) (the sign of b, as
        Python's %) and fmod C's fmod (the sign of a), as NumPy; integer operands are never
        divided by zero (the ops check first)."""

    @abstractmethod
    def where(self, cond, a, b):
        """cond ? a : b, broadcasting all three."""

    # ---- reductions -------------------------------------------------------
    @abstractmethod
    def sum(self, a, axes=None, keepdims=False):
        """Sum over `axes` (tuple of ints, or None for all)."""

    @abstractmethod
    def max(self, a, axis=None, keepdims=False):
        """Maximum over one axis (or all)."""

    @abstractmethod
    def argmax(self, a, axis, keepdims=False):
        """Index (int64) of the first maximum along `axis`."""

    @abstractmethod
    def min(self, a, axis=None, keepdims=False):
        """Minimum over one axis (or all)."""

    @abstractmethod
    def argmin(self, a, axis, keepdims=False):
        """Index (int64) of the first minimum along `axis`."""

    # ---- layout -----------------------------------------------------------
    @abstractmethod
    def reshape(self, a, shape):
        """A view or copy of `a` with a new shape of the same size."""

    @abstractmethod
    def transpose(self, a, axes):
        """Axes permuted (a view where the backend allows it)."""

    @abstractmethod
    def broadcast_to(self, a, shape):
        """`a` broadcast to `shape` (read-only view allowed)."""

    @abstractmethod
    def copy(self, a):
        """A fresh C-contiguous copy."""

    @abstractmethod
    def cat(self, arrays, axis):
        """Concatenate along `axis`."""

    @abstractmethod
    def split(self, a, sizes, axis):
        """Split along `axis` into consecutive pieces of the given sizes."""

    @abstractmethod
    def diagonal(self, a, axis1, axis2):
        """The diagonal over two equal-sized axes; it becomes the last axis (as numpy.diagonal)."""

    @abstractmethod
    def diag_embed(self, a, axis1, axis2):
        """Inverse of diagonal: the last axis of `a` is placed on the diagonal of two new
        axes at positions axis1 < axis2 of the result, zeros elsewhere."""

    # ---- indexing ---------------------------------------------------------
    # Every kernel here checks its indices (see the module docstring): gather,
    # scatter_add, take_rows and scatter_rows_add take indices in [0, n), as torch's
    # gather, scatter_add and embedding do; getitem and index_put_add take [-n, n).
    @abstractmethod
    def getitem(self, a, key):
        """a[key] for a NumPy-style key (ints, slices, None, Ellipsis, int arrays)."""

    @abstractmethod
    def setitem(self, a, key, values):
        """a[key] = values, in place (the one kernel that writes into an existing array):
        NumPy's key grammar as in getitem, `values` (an array or a scalar) broadcast to
        a[key] and cast to a.dtype; where an advanced key repeats a position, one of the
        values lands there. Returns nothing."""

    def nonzero(self, a):
        """The indices of the non-zero (True) entries of `a`, one int64 array per dim
        (numpy.nonzero), in row-major order. The result's size depends on the data, so
        the default goes through the host."""
        return tuple(self.asarray(i.astype(np.int64)) for i in np.nonzero(self.to_numpy(a)))

    def storage(self, a):
        """The object that owns `a`'s memory: two arrays that share memory (a view and
        its base) give the same object. In-place writes are tracked per storage (the
        version counter); the default treats every array as its own storage."""
        return a

    @abstractmethod
    def index_put_add(self, shape, key, values):
        """zeros(shape) with `values` added at [key]; repeated indices accumulate."""

    @abstractmethod
    def gather(self, a, axis, index):
        """out[i][j][k] = a[i][index[i][j][k]][k] for axis=1 (torch.gather)."""

    @abstractmethod
    def scatter_add(self, shape, axis, index, src):
        """zeros(shape), then out[i][index[i][j][k]][k] += src[i][j][k] (axis=1)."""

    @abstractmethod
    def take_rows(self, table, indices):
        """table[indices] for an int array `indices` of any shape (embedding lookup)."""

    @abstractmethod
    def scatter_rows_add(self, num_rows, indices, src):
        """zeros((num_rows,) + row_shape), then out[indices[...]] += src[...]."""

    # ---- linear algebra ---------------------------------------------------
    @abstractmethod
    def matmul(self, a, b):
        """Batched matrix product with broadcast batch dims (numpy.matmul on ndim >= 2)."""

    @abstractmethod
    def tropical_matmul(self, a, b, semiring):
        """Batched tropical product over a selective semiring (a Semiring or the name of
        a registered one).

        a: (..., n, k), b: (..., k, m), batch dims broadcast. Returns (c, arg) where
        c[..., i, j] = ⊕_l a[..., i, l] ⊗ b[..., l, j] and arg (int64) is the winning l,
        the lowest one on ties; a NaN candidate wins (the first one), as numpy.max.
        `return self.semiring_matmul(a, b, semiring)` gives the registry: the kernel
        `semiring_kernel` returns, else the generic kernel."""

    def semiring_matmul(self, a, b, semiring):
        """tropical_matmul by the registry: the kernel `semiring_kernel` gives for the
        semiring, else the generic kernel built from this backend's primitives."""
        sr = get_semiring(semiring, f"{self.name} backend tropical_matmul")
        if not sr.selective:
            raise ValueError(f"{self.name} backend tropical_matmul: semiring {sr.name!r} is "
                             "compound (several arrays per element); use sr.matmul")
        kernel = self.semiring_kernel(sr)
        if kernel is not None:
            return kernel(a, b, sr)
        return self.generic_tropical(a, b, sr)

    def generic_tropical(self, a, b, semiring):
        """tropical_matmul by the generic kernel (batch dims broadcast)."""
        sr = semiring
        batch = tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
        n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
        count = 1
        for d in batch:
            count *= d
        a3 = self.reshape(self.broadcast_to(a, batch + (n, k)), (count, n, k))
        b3 = self.reshape(self.broadcast_to(b, batch + (k, m)), (count, k, m))
        c, arg = generic_matmul(self, a3, b3, sr)
        return self.reshape(c, batch + (n, m)), self.reshape(arg, batch + (n, m))

    def semiring_kernel(self, semiring):
        """The fast tropical_matmul kernel this backend has for `semiring`:
        kernel(a, b, semiring) -> (c, arg), or None for the generic kernel."""
        return None

    def tropical_contract(self, a, b, perm_a, shape_a3, perm_b, shape_b3, out_shape, semiring):
        """One pairwise step of a tropical contraction, values only (no winners):
        a permuted by perm_a and reshaped to shape_a3 = (B, L, K), b by perm_b to
        (B, K, R) (a perm of None: as it is); c = their tropical product reshaped to
        out_shape, the (batch, left, right) order. The default runs tropical_matmul; a
        compiled backend fuses the permutations into one pass without argmax."""
        a3 = self.reshape(a if perm_a is None else self.transpose(a, perm_a), shape_a3)
        b3 = self.reshape(b if perm_b is None else self.transpose(b, perm_b), shape_b3)
        c3, _ = self.tropical_matmul(a3, b3, semiring)
        return self.reshape(c3, out_shape)

    # ---- convolution and pooling -----------------------------------------
    # stride, padding, dilation and the pooling kernel are an int or an (h, w) pair
    @abstractmethod
    def im2col(self, x, kh, kw, stride, padding, dilation=1):
        """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW), zero padding:
        cols[n, (c, i, j), (oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]."""

    @abstractmethod
    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation=1):
        """Adjoint of im2col: overlapping patches are summed back into (N, C, H, W)."""

    # The batch folded into the columns: a convolution of the whole batch is then one
    # matrix product (one large GEMM instead of N small ones). Defaults from im2col /
    # col2im; a backend overrides them to write the layout directly.
    def conv_patches(self, x, kh, kw, stride, padding, dilation=1):
        """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW), zero padding:
        cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]."""
        cols = self.im2col(x, kh, kw, stride, padding, dilation)
        n, k, l = cols.shape
        return self.reshape(self.copy(self.transpose(cols, (1, 0, 2))), (k, n * l))

    def conv_patches_adjoint(self, cols, x_shape, kh, kw, stride, padding, dilation=1):
        """Adjoint of conv_patches: cols (C*kh*kw, N*OH*OW) summed back into x_shape."""
        n = x_shape[0]
        k, m = cols.shape
        if n == 0:
            return self.zeros(tuple(x_shape), cols.dtype)
        batched = self.copy(self.transpose(self.reshape(cols, (k, n, m // n)), (1, 0, 2)))
        return self.col2im(batched, x_shape, kh, kw, stride, padding, dilation)

    def _patches(self, x, kh, kw, stride, padding, dilation):
        # a backend written before dilation existed takes no dilation argument
        if dilation == (1, 1):
            return self.conv_patches(x, kh, kw, stride, padding)
        return self.conv_patches(x, kh, kw, stride, padding, dilation)

    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        """(y, saved): y (N, F, OH, OW) the convolution of x (N, C, H, W) with w
        (F, C/groups, kh, kw), plus b (F,) unless b is None; saved is what
        conv2d_backward needs (the backend's own). stride, padding, dilation: pairs.
        The default: one matrix product per group for the whole batch, on the
        conv_patches columns (C·kh·kw, N·OH·OW)."""
        n = x.shape[0]
        f, cw, kh, kw = w.shape
        cols = self._patches(x, kh, kw, stride, padding, dilation)
        oh, ow = (conv_out(x.shape[2 + d], w.shape[2 + d], stride[d], padding[d], dilation[d])
                  for d in (0, 1))
        k, g = cw * kh * kw, groups
        if g == 1:
            y = self.matmul(self.reshape(w, (f, k)), cols)
        else:
            y = self.matmul(self.reshape(w, (g, f // g, k)), self.reshape(cols, (g, k, -1)))
        y = self.transpose(self.reshape(y, (f, n, oh, ow)), (1, 0, 2, 3))
        # the bias add (or a copy) turns the (F, N, ...) product into NCHW in one pass
        y = self.copy(y) if b is None else self.binary("add", y, self.reshape(b, (1, f, 1, 1)))
        return y, cols

    def conv2d_backward(self, dy, x, w, saved, stride, padding, dilation, groups, need_dx,
                        need_db):
        """(dx, dw, db) of conv2d for the output gradient dy, with what conv2d saved
        (None: recompute it); dx is None unless need_dx, db None unless need_db."""
        n, f, oh, ow = dy.shape
        kh, kw = w.shape[2], w.shape[3]
        g, k = groups, w.shape[1] * kh * kw
        cols = self._patches(x, kh, kw, stride, padding, dilation) if saved is None else saved
        dy = self.reshape(self.copy(self.transpose(dy, (1, 0, 2, 3))), (g, f // g, -1))
        cols = self.reshape(cols, (g, k, -1))
        # dWᵀ = cols · dYᵀ: BLAS streams the long N·OH·OW axis of both operands in order
        # (2.1-2.7 ms against 3.0-3.6 ms for dY · colsᵀ, 16->32 channels, batch 64, 16x16)
        dw = self.reshape(self.copy(self.transpose(
            self.matmul(cols, self.transpose(dy, (0, 2, 1))), (0, 2, 1))), w.shape)
        dx = db = None
        if need_dx:
            w3 = self.reshape(w, (g, f // g, k))
            dcols = self.reshape(self.matmul(self.transpose(w3, (0, 2, 1)), dy), (g * k, -1))
            args = (dcols, x.shape, kh, kw, stride, padding)
            dx = (self.conv_patches_adjoint(*args) if dilation == (1, 1) else
                  self.conv_patches_adjoint(*args, dilation))
        if need_db:
            db = self.reshape(self.sum(dy, (2,)), (f,))
        return dx, dw, db

    @abstractmethod
    def max_pool2d(self, x, kernel, stride):
        """x (N, C, H, W) -> (out (N, C, OH, OW), idx) where idx (int64) is the flat
        position in the H*W plane of the first maximum in row-major window order."""

    # ---- fused rows -------------------------------------------------------
    @abstractmethod
    def softmax(self, a, axis):
        """exp(a - max) / sum, along `axis`."""

    @abstractmethod
    def log_softmax(self, a, axis):
        """a - max - log(sum(exp(a - max))), along `axis`."""

    # ---- fused loss and activation gradients ---------------------------------
    # Defaults built from the kernels above, so a new backend gets them for free;
    # a compiled backend overrides them with one pass over the data.
    def cross_entropy(self, logits, targets):
        """For logits (N, C) and int targets (N,) in range: (loss, top, logsum), each (N,):
        top[n] = max_c logits[n, c], logsum[n] = log Σ_c exp(logits[n, c] - top[n]) and
        loss[n] = top[n] + logsum[n] - logits[n, targets[n]]. (top and logsum stay apart:
        their float32 sum would lose the digits that softmax needs at logits of 1e4.)"""
        n = logits.shape[0]
        check_targets(self, f"{self.name}.cross_entropy", logits, targets)
        top = self.max(logits, axis=1, keepdims=True)
        logsum = self.unary("log", self.sum(self.unary("exp", self.binary("sub", logits, top)), (1,)))
        top = self.reshape(top, (n,))
        picked = self.reshape(self.gather(logits, 1, self.reshape(targets, (n, 1))), (n,))
        return self.binary("add", self.binary("sub", top, picked), logsum), top, logsum

    def cross_entropy_grad(self, logits, targets, top, logsum, scale):
        """scale · (softmax(logits) - onehot(targets)) from cross_entropy's top and logsum:
        the gradient of scale · Σ_n loss[n]; `scale` is a number or a 0-d array."""
        n, c = logits.shape
        check_targets(self, f"{self.name}.cross_entropy_grad", logits, targets)
        shifted = self.binary("sub", self.binary("sub", logits, self.reshape(top, (n, 1))),
                              self.reshape(logsum, (n, 1)))
        p = self.unary("exp", shifted)
        hit = self.binary("eq", self.arange(c, targets.dtype), self.reshape(targets, (n, 1)))
        return self.binary("mul", self.binary("sub", p, self.astype(hit, p.dtype)), scale)

    def activation_grad(self, op, saved, grad):
        """grad · f'(x) for op in ACTIVATIONS, from what the forward keeps: saved = y = f(x)
        for sigmoid (f' = y(1 - y)) and tanh (f' = 1 - y²), saved = x for silu
        (f' = σ(x)(1 + x(1 - σ(x)))) and the GELUs (see gelu)."""
        if op == "sigmoid":
            slope = self.binary("mul", saved, self.binary("sub", 1.0, saved))
        elif op == "tanh":
            slope = self.binary("sub", 1.0, self.binary("mul", saved, saved))
        elif op == "silu":
            s = self.unary("sigmoid", saved)
            slope = self.binary("mul", s, self.binary(
                "add", 1.0, self.binary("mul", saved, self.binary("sub", 1.0, s))))
        elif op == "gelu":  # f' = Φ(x) + x φ(x)
            phi = self.binary("mul", self.unary("exp", self.binary(
                "mul", self.binary("mul", saved, saved), -0.5)), _INV_SQRT_2PI)
            slope = self.binary("add", self._normal_cdf(saved), self.binary("mul", saved, phi))
        elif op == "gelu_tanh":  # f' = (1 + t)/2 + x/2 (1 - t²) u'
            x2 = self.binary("mul", saved, saved)
            t = self.unary("tanh", self.binary("mul", self.binary(
                "add", saved, self.binary("mul", self.binary("mul", x2, saved), _GELU_KAPPA)),
                _SQRT_2_OVER_PI))
            du = self.binary("mul", self.binary("add", self.binary("mul", x2, 3 * _GELU_KAPPA), 1.0),
                             _SQRT_2_OVER_PI)
            slope = self.binary("add", self.binary("mul", self.binary("add", t, 1.0), 0.5),
                                self.binary("mul", self.binary("mul", saved, 0.5), self.binary(
                                    "mul", self.binary("sub", 1.0, self.binary("mul", t, t)), du)))
        else:
            raise ValueError(f"activation_grad: unknown op {op!r}; expected one of {ACTIVATIONS}")
        return self.binary("mul", grad, slope)

    # ---- fused activations and normalization ------------------------------
    # Defaults from the kernels above; compiled backends override them.
    def _normal_cdf(self, x):
        return self.binary("mul", self.binary("add", self.unary(
            "erf", self.binary("mul", x, 1 / math.sqrt(2.0))), 1.0), 0.5)

    def gelu(self, x, approximate="none"):
        """x · Φ(x) = x/2 (1 + erf(x/√2)) for approximate='none'; for 'tanh',
        x/2 (1 + tanh(√(2/π)(x + 0.044715 x³))) (torch.nn.functional.gelu)."""
        if approximate == "tanh":
            inner = self.binary("add", x, self.binary(
                "mul", self.binary("mul", self.binary("mul", x, x), x), _GELU_KAPPA))
            t = self.unary("tanh", self.binary("mul", inner, _SQRT_2_OVER_PI))
            return self.binary("mul", self.binary("mul", x, 0.5), self.binary("add", t, 1.0))
        return self.binary("mul", x, self._normal_cdf(x))

    def normalize(self, x, eps):
        """For x (A, C, B): (y, mean, var) with the statistics of each c over a and b:
        mean (C,), biased var (C,), y = (x - mean) / sqrt(var + eps) (A, C, B). The core of
        BatchNorm (C the channels) and of LayerNorm (A = 1, C the rows)."""
        a, c, b = x.shape
        count = max(a * b, 1)
        mean = self.binary("div", self.sum(x, (0, 2), keepdims=True), count)
        centered = self.binary("sub", x, mean)
        var = self.binary("div", self.sum(self.binary("mul", centered, centered), (0, 2),
                                          keepdims=True), count)
        y = self.binary("mul", centered, self.unary("rsqrt", self.binary("add", var, eps)))
        return y, self.reshape(mean, (c,)), self.reshape(var, (c,))

    def normalize_grad(self, y, rstd, grad):
        """The gradient of normalize through y: for y, grad (A, C, B) and rstd (C,),
        dx = rstd · (grad - mean(grad) - y · mean(grad · y)), the means over a and b."""
        a, c, b = y.shape
        count = max(a * b, 1)
        mean_g = self.binary("div", self.sum(grad, (0, 2), keepdims=True), count)
        mean_gy = self.binary("div", self.sum(self.binary("mul", grad, y), (0, 2),
                                              keepdims=True), count)
        inner = self.binary("sub", self.binary("sub", grad, mean_g), self.binary("mul", y, mean_gy))
        return self.binary("mul", inner, self.reshape(rstd, (1, c, 1)))

    def lstm_cell(self, gates, c):
        """The LSTM cell for gates (N, 4H) in torch's order (i, f, g, o) and c (N, H):
        (h', c') with c' = σ(a_f)·c + σ(a_i)·tanh(a_g), h' = σ(a_o)·tanh(c')."""
        h4 = gates.shape[1] // 4
        a_i, a_f, a_g, a_o = self.split(gates, [h4] * 4, 1)
        c_new = self.binary("add", self.binary("mul", self.unary("sigmoid", a_f), c),
                            self.binary("mul", self.unary("sigmoid", a_i),
                                        self.unary("tanh", a_g)))
        return self.binary("mul", self.unary("sigmoid", a_o), self.unary("tanh", c_new)), c_new

    def lstm_cell_grad(self, gates, c, c_new, dh, dc_new):
        """(dgates, dc) of lstm_cell from its inputs, its c' and the gradients of h' and c'."""
        h4 = gates.shape[1] // 4
        i, f, o = (self.unary("sigmoid", a) for a in self.split(gates, [h4] * 4, 1)[:2]
                   + self.split(gates, [h4] * 4, 1)[3:])
        g = self.unary("tanh", self.split(gates, [h4] * 4, 1)[2])
        t = self.unary("tanh", c_new)
        one_minus = lambda y: self.binary("sub", 1.0, y)  # noqa: E731
        d = self.binary("add", dc_new, self.binary("mul", self.binary("mul", dh, o),
                                                   one_minus(self.binary("mul", t, t))))
        da_i = self.binary("mul", self.binary("mul", d, g),
                           self.binary("mul", i, one_minus(i)))
        da_f = self.binary("mul", self.binary("mul", d, c),
                           self.binary("mul", f, one_minus(f)))
        da_g = self.binary("mul", self.binary("mul", d, i), one_minus(self.binary("mul", g, g)))
        da_o = self.binary("mul", self.binary("mul", dh, t),
                           self.binary("mul", o, one_minus(o)))
        return self.cat([da_i, da_f, da_g, da_o], 1), self.binary("mul", d, f)

    def gru_cell(self, gx, gh, h):
        """The GRU cell for gx, gh (N, 3H) in torch's order (r, z, n) and h (N, H):
        h' = n + z·(h - n), r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n)."""
        k = h.shape[1]
        x_r, x_z, x_n = self.split(gx, [k] * 3, 1)
        h_r, h_z, h_n = self.split(gh, [k] * 3, 1)
        r = self.unary("sigmoid", self.binary("add", x_r, h_r))
        z = self.unary("sigmoid", self.binary("add", x_z, h_z))
        n = self.unary("tanh", self.binary("add", x_n, self.binary("mul", r, h_n)))
        return self.binary("add", n, self.binary("mul", z, self.binary("sub", h, n)))

    def gru_cell_grad(self, gx, gh, h, dh_new):
        """(dgx, dgh, dh) of gru_cell from its inputs and the gradient of h'."""
        k = h.shape[1]
        x_r, x_z, x_n = self.split(gx, [k] * 3, 1)
        h_r, h_z, h_n = self.split(gh, [k] * 3, 1)
        r = self.unary("sigmoid", self.binary("add", x_r, h_r))
        z = self.unary("sigmoid", self.binary("add", x_z, h_z))
        n = self.unary("tanh", self.binary("add", x_n, self.binary("mul", r, h_n)))
        one_minus = lambda y: self.binary("sub", 1.0, y)  # noqa: E731
        a = self.binary("mul", self.binary("mul", dh_new, one_minus(z)),
                        one_minus(self.binary("mul", n, n)))
        a_r = self.binary("mul", self.binary("mul", a, h_n), self.binary("mul", r, one_minus(r)))
        a_z = self.binary("mul", self.binary("mul", dh_new, self.binary("sub", h, n)),
                          self.binary("mul", z, one_minus(z)))
        return (self.cat([a_r, a_z, a], 1), self.cat([a_r, a_z, self.binary("mul", a, r)], 1),
                self.binary("mul", dh_new, z))
