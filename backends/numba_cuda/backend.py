"""NumbaCUDABackend: the Backend interface on Numba device arrays.

The host computes shapes, strides and index metadata (layout.py) and launches a
kernel (kernels.py, launch.py) for every operation on tensor data; the host calls
into numba.cuda go through one Device adapter (device.py).
"""
import numpy as np

from ..base import (Backend, UNARY_OPS, BINARY_OPS, SEMIRINGS, check_axis_indexing, check_index,
                    check_index_dtype, check_key, check_rows_indexing, pair)
from ..semiring import BUILTIN as BUILTIN_SEMIRINGS, may_give_nan
from . import device_functions as fn
from . import launch as launch_config
from .device import DEVICE, is_device_array
from .launch import block_per_output, grid1, launch, tiles, use_block_reduce
from .layout import (basic_view, bcast_strides, c_strides, collapse, is_basic,
                     normalize_axes, size)

# NumPy ufuncs, used on the host only on one-element dummies to get result dtypes
_UNARY_NP = {"neg": np.negative, "exp": np.exp, "log": np.log, "sin": np.sin,
             "cos": np.cos, "sqrt": np.sqrt, "rsqrt": np.sqrt, "relu": np.abs,
             "sigmoid": np.exp, "tanh": np.tanh, "silu": np.exp, "abs": np.abs,
             "sign": np.sign, "erf": np.exp}
_BINARY_NP = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
              "gt": np.greater, "ge": np.greater_equal, "lt": np.less,
              "le": np.less_equal, "eq": np.equal, "ne": np.not_equal,
              "floor_divide": np.floor_divide, "remainder": np.remainder, "fmod": np.fmod}


def _scalar_like(x):
    return isinstance(x, (bool, int, float, np.generic))


class NumbaCUDABackend(Backend):
    """Tensor data on the GPU as Numba device arrays; every kernel a CUDA kernel."""
    name = "cuda"

    def __init__(self, device=None):
        self.device = DEVICE if device is None else device
        why = self.device.unavailable_reason()
        if why is not None:
            raise RuntimeError(f"backend 'cuda' is unavailable: {why}")
        self.simulator = self.device.simulator

    def __repr__(self):
        return "<backend cuda (simulator)>" if self.simulator else "<backend cuda>"

    # ---- allocation helpers
    def _empty(self, shape, dtype):
        return self.device.empty(tuple(int(s) for s in shape), np.dtype(dtype))

    def _flat(self, a):
        """The 1-D view of a contiguous device array."""
        return a.reshape(a.size) if a.ndim != 1 else a

    def _dev(self, x):
        """A kernel operand as a contiguous device array (NumPy arrays are uploaded)."""
        return self.asarray(x)

    def _copy_into(self, src, soff, shape, sstr, dst, doff, dstr):
        """dst[doff + view(shape, dstr)] = src[soff + view(shape, sstr)], on the device."""
        n = size(shape)
        if n == 0:
            return
        shape, (sstr, dstr) = collapse(shape, sstr, dstr)
        launch(("strided_copy",), *grid1(n), self._flat(src), soff, self._flat(dst),
                doff, n, shape, sstr, dstr)

    def _view_copy(self, a, offset, shape, strides, dtype=None):
        """A new contiguous array holding the strided view (offset, shape, strides) of `a`."""
        out = self._empty(shape, dtype or a.dtype)
        self._copy_into(a, offset, shape, strides, out, 0, c_strides(shape))
        return out

    # ---- creation and host transfer
    def asarray(self, data, dtype=None):
        if not is_device_array(data):
            view = self.device.foreign(data)  # CuPy / PyTorch-CUDA arrays: a zero-copy view
            data = data if view is None else view
        if is_device_array(data):
            a = data if data.is_c_contiguous() else self.device.contiguous(data)
            if dtype is not None and a.dtype != np.dtype(dtype):
                a = self.astype(a, dtype)
            return a
        host = np.asarray(data, dtype=dtype)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"cuda backend: unsupported dtype {host.dtype}")
        if not host.flags.c_contiguous:
            host = host.copy(order="C")
        return self.device.to_device(host)

    def to_numpy(self, a):
        if not self.is_array(a):
            return np.array(a)
        return a.copy_to_host()

    def is_array(self, a):
        return is_device_array(a) and a.is_c_contiguous()

    def full(self, shape, value, dtype):
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        dtype = np.dtype(dtype)
        out = self._empty(shape, dtype)
        n = out.size
        if n:
            launch(("fill",), *grid1(n), self._flat(out), n, dtype.type(value))
        return out

    def astype(self, a, dtype):
        dtype = np.dtype(dtype)
        a = self._dev(a)
        if a.dtype == dtype:
            return a
        out = self._empty(a.shape, dtype)
        if a.size:
            launch(("cast",), *grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def arange(self, n, dtype):
        n = int(n)
        out = self._empty((n,), dtype)
        if n:
            launch(("arange",), *grid1(n), out, n)
        return out

    # ---- elementwise
    def unary(self, op, a):
        if op not in fn.UNARY:
            raise ValueError(f"cuda backend: unknown unary op {op!r}; expected one of {UNARY_OPS}")
        a = self._dev(a)
        dtype = _UNARY_NP[op](np.ones(1, a.dtype)).dtype
        out = self._empty(a.shape, dtype)
        if a.size:
            launch(("unary", op), *grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def binary(self, op, a, b):
        if op not in BINARY_OPS:
            raise ValueError(f"cuda backend: unknown binary op {op!r}; expected one of {BINARY_OPS}")
        a_scalar, b_scalar = _scalar_like(a), _scalar_like(b)
        if a_scalar and b_scalar:  # both scalars: a 0-d result on the device
            return self.asarray(_BINARY_NP[op](a, b))
        if not a_scalar:
            a = self._dev(a)
        if not b_scalar:
            b = self._dev(b)
        # result dtype by NumPy's rules (Python scalars are weak: float32 * 2.0 stays float32)
        da = np.ones(1, a.dtype) if not a_scalar else (a if isinstance(a, np.generic) else type(a)(1))
        db = np.ones(1, b.dtype) if not b_scalar else (b if isinstance(b, np.generic) else type(b)(1))
        dtype = _BINARY_NP[op](da, db).dtype
        if op == "fmod" and dtype.kind in "iu":
            op = "fmod_int"  # exact on integers (math.fmod would go through float64)
        if a_scalar or b_scalar:
            arr, scalar = (b, a) if a_scalar else (a, b)
            # compute in the common type of the array and the scalar
            common = np.result_type(arr.dtype, scalar if isinstance(scalar, np.generic) else type(scalar)(1))
            scalar = common.type(scalar)
            out = self._empty(arr.shape, dtype)
            if arr.size:
                mode = "sa" if a_scalar else "as"
                args = (scalar, self._flat(arr)) if a_scalar else (self._flat(arr), scalar)
                launch(("binary", op, mode), *grid1(arr.size), *args, self._flat(out), arr.size)
            return out
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        out = self._empty(shape, dtype)
        n = out.size
        if n == 0:
            return out
        if a.shape == b.shape:
            launch(("binary", op, "flat"), *grid1(n), self._flat(a), self._flat(b),
                    self._flat(out), n)
        else:
            cshape, (sa, sb) = collapse(shape, bcast_strides(a.shape, shape),
                                         bcast_strides(b.shape, shape))
            launch(("binary", op, "bcast"), *grid1(n), self._flat(a), self._flat(b),
                    self._flat(out), n, cshape, sa, sb)
        return out

    def where(self, cond, a, b):
        def weak(x):
            return x if isinstance(x, np.generic) or not _scalar_like(x) else type(x)(1)
        dtype = np.result_type(weak(a) if _scalar_like(a) else a.dtype,
                               weak(b) if _scalar_like(b) else b.dtype)
        cond = self._dev(cond) if not _scalar_like(cond) else self.full((), cond, np.bool_)
        a = self._dev(a) if not _scalar_like(a) else self.full((), a, dtype)
        b = self._dev(b) if not _scalar_like(b) else self.full((), b, dtype)
        shape = tuple(np.broadcast_shapes(cond.shape, a.shape, b.shape))
        out = self._empty(shape, dtype)
        n = out.size
        if n:
            cshape, (sc, sa, sb) = collapse(shape, bcast_strides(cond.shape, shape),
                                             bcast_strides(a.shape, shape),
                                             bcast_strides(b.shape, shape))
            launch(("where",), *grid1(n), self._flat(cond), self._flat(a), self._flat(b),
                    self._flat(out), n, cshape, sc, sa, sb)
        return out

    # ---- reductions
    def _splitnormalize_axes(self, shape, axes):
        """(kept shape, kept strides, reduced shape, reduced strides), collapsed."""
        cs = c_strides(shape)
        kshape = tuple(shape[d] for d in range(len(shape)) if d not in axes)
        kstr = tuple(cs[d] for d in range(len(shape)) if d not in axes)
        rshape = tuple(shape[d] for d in axes)
        rstr = tuple(cs[d] for d in axes)
        kshape_c, (kstr_c,) = collapse(kshape, kstr)
        rshape_c, (rstr_c,) = collapse(rshape, rstr)
        return kshape, kshape_c, kstr_c, rshape_c, rstr_c

    def _out_shape(self, shape, axes, kept, keepdims):
        if keepdims:
            return tuple(1 if d in axes else s for d, s in enumerate(shape))
        return kept

    def sum(self, a, axes=None, keepdims=False):
        a = self._dev(a)
        axes = normalize_axes(axes, a.ndim)
        dtype = np.sum(np.zeros(1, a.dtype)).dtype
        kept, kshape, kstr, rshape, rstr = self._splitnormalize_axes(a.shape, axes)
        out = self._empty(self._out_shape(a.shape, axes, kept, keepdims), dtype)
        n_out, n_red = out.size, size(a.shape[d] for d in axes)
        if n_out == 0:
            return out
        args = (self._flat(a), self._flat(out), n_out, n_red, kshape, kstr, rshape, rstr,
                dtype.type(0))
        if use_block_reduce(n_out, n_red):
            launch(("sum_block", dtype.str, launch_config.REDUCE_THREADS), *block_per_output(n_out), *args)
        else:
            launch(("sum_serial",), *grid1(n_out), *args)
        return out

    def _best(self, kind, a, axis, keepdims, name):
        a = self._dev(a)
        axes = normalize_axes(axis, a.ndim)
        kept, kshape, kstr, rshape, rstr = self._splitnormalize_axes(a.shape, axes)
        out_shape = self._out_shape(a.shape, axes, kept, keepdims)
        n_out, n_red = size(out_shape), size(a.shape[d] for d in axes)
        if n_red == 0 and n_out:
            raise ValueError(f"cuda backend: {name} of an empty axis (shape {tuple(a.shape)}, "
                             f"axis {axis}) has no identity")
        out = self._empty(out_shape, a.dtype)
        arg = self._empty(out_shape, np.int64)
        if n_out == 0:
            return out, arg
        args = (self._flat(a), self._flat(out), self._flat(arg), n_out, n_red,
                kshape, kstr, rshape, rstr)
        if use_block_reduce(n_out, n_red):
            launch(("best_block", kind, a.dtype.str, launch_config.REDUCE_THREADS),
                    *block_per_output(n_out), *args)
        else:
            launch(("best_serial", kind), *grid1(n_out), *args)
        return out, arg

    def max(self, a, axis=None, keepdims=False):
        return self._best("max", a, axis, keepdims, "max")[0]

    def min(self, a, axis=None, keepdims=False):
        return self._best("min", a, axis, keepdims, "min")[0]

    def argmax(self, a, axis, keepdims=False):
        return self._best("max", a, axis, keepdims, "argmax")[1]

    def argmin(self, a, axis, keepdims=False):
        return self._best("min", a, axis, keepdims, "argmin")[1]

    # ---- layout
    def reshape(self, a, shape):
        a = self._dev(a)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if shape.count(-1) > 1:
            raise ValueError("cuda backend: reshape accepts at most one -1")
        if -1 in shape:
            known = size(s for s in shape if s != -1)
            if known == 0 or a.size % known:
                raise ValueError(f"cuda backend: cannot reshape {tuple(a.shape)} into {shape}")
            shape = tuple(a.size // known if s == -1 else s for s in shape)
        if size(shape) != a.size:
            raise ValueError(f"cuda backend: cannot reshape {tuple(a.shape)} into {shape}")
        if a.size == 0:
            return self._empty(shape, a.dtype)
        return a.reshape(shape)  # a view: the array is C-contiguous

    def transpose(self, a, axes):
        a = self._dev(a)
        axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(int(x) % max(a.ndim, 1) for x in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"cuda backend: axes {axes} are not a permutation of {a.ndim} dims")
        if axes == tuple(range(a.ndim)):
            return a
        cs = c_strides(a.shape)
        return self._view_copy(a, 0, tuple(a.shape[d] for d in axes), tuple(cs[d] for d in axes))

    def broadcast_to(self, a, shape):
        a = self._dev(a)
        shape = tuple(int(s) for s in shape)
        if tuple(np.broadcast_shapes(a.shape, shape)) != shape:
            raise ValueError(f"cuda backend: cannot broadcast {tuple(a.shape)} to {shape}")
        if tuple(a.shape) == shape:
            return a
        return self._view_copy(a, 0, shape, bcast_strides(a.shape, shape))

    def copy(self, a):
        a = self._dev(a)
        out = self._empty(a.shape, a.dtype)
        if a.size:
            launch(("cast",), *grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def cat(self, arrays, axis):
        arrays = [self._dev(x) for x in arrays]
        ndim = arrays[0].ndim
        axis = normalize_axes(axis, ndim)[0]
        dtype = np.result_type(*[x.dtype for x in arrays])
        shape = list(arrays[0].shape)
        shape[axis] = sum(x.shape[axis] for x in arrays)
        out = self._empty(tuple(shape), dtype)
        ostr = c_strides(out.shape)
        pos = 0
        for x in arrays:
            self._copy_into(x, 0, x.shape, c_strides(x.shape), out, pos * ostr[axis], ostr)
            pos += x.shape[axis]
        return out

    def split(self, a, sizes, axis):
        a = self._dev(a)
        axis = normalize_axes(axis, a.ndim)[0]
        cs = c_strides(a.shape)
        pieces, pos = [], 0
        for s in sizes:
            shape = tuple(int(s) if d == axis else n for d, n in enumerate(a.shape))
            pieces.append(self._view_copy(a, pos * cs[axis], shape, cs))
            pos += int(s)
        return tuple(pieces)

    def diagonal(self, a, axis1, axis2):
        a = self._dev(a)
        axis1, axis2 = int(axis1) % a.ndim, int(axis2) % a.ndim
        cs = c_strides(a.shape)
        rest = [d for d in range(a.ndim) if d not in (axis1, axis2)]
        d = min(a.shape[axis1], a.shape[axis2])
        shape = tuple(a.shape[r] for r in rest) + (d,)
        strides = tuple(cs[r] for r in rest) + (cs[axis1] + cs[axis2],)
        return self._view_copy(a, 0, shape, strides)

    def diag_embed(self, a, axis1, axis2):
        a = self._dev(a)
        nd = a.ndim + 1
        axis1, axis2 = int(axis1) % nd, int(axis2) % nd
        axis1, axis2 = min(axis1, axis2), max(axis1, axis2)
        d = a.shape[-1]
        rest = [r for r in range(nd) if r not in (axis1, axis2)]
        shape = [0] * nd
        for r, s in zip(rest, a.shape[:-1]):
            shape[r] = s
        shape[axis1] = shape[axis2] = d
        out = self.full(tuple(shape), 0, a.dtype)
        os_ = c_strides(shape)
        dstr = tuple(os_[r] for r in rest) + (os_[axis1] + os_[axis2],)
        self._copy_into(a, 0, a.shape, c_strides(a.shape), out, 0, dstr)
        return out

    # ---- indexing
    def _host_key(self, key):
        """The key with device index arrays copied to the host (index data only)."""
        parts = key if isinstance(key, tuple) else (key,)
        host = []
        for k in parts:
            if is_device_array(k):
                k = k.copy_to_host()
            elif isinstance(k, list):
                k = np.asarray(k)
            host.append(k)
        return tuple(host)

    def _flat_positions(self, shape, key):
        """Flat source positions of a[key] (advanced keys), by NumPy on the host.
        Position = sum over dims of index * stride, and indexing distributes over that
        sum, so each term indexes a zero-stride broadcast of one arange: the host work
        and memory scale with the result, not with the indexed array."""
        shape = tuple(shape)
        if not shape:
            return np.zeros((), np.int64)[key]
        total = 0
        for d, (n, stride) in enumerate(zip(shape, c_strides(shape))):
            axis = np.arange(n, dtype=np.int64) * stride
            grid = np.broadcast_to(axis.reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1)), shape)
            total = total + grid[key]
        return np.asarray(total, dtype=np.int64)

    def getitem(self, a, key):
        a = self._dev(a)
        key = self._host_key(key)
        check_key(f"{self.name}.getitem", a.shape, key)
        if all(is_basic(k) for k in key):
            offset, shape, strides = basic_view(tuple(a.shape), key)
            return self._view_copy(a, offset, shape, strides)
        pos = self._flat_positions(a.shape, key)
        out = self._empty(pos.shape, a.dtype)
        if pos.size:
            launch(("gather_flat",), *grid1(pos.size), self._flat(a),
                    self.device.to_device(pos.reshape(-1)), self._flat(out), pos.size)
        return out

    def setitem(self, a, key, values):
        key = self._host_key(key)
        shape = tuple(a.shape)
        if _scalar_like(values):
            values = self.full((), values, a.dtype)
        values = self._dev(values)
        if all(is_basic(k) for k in key):
            offset, vshape, vstrides = basic_view(shape, key)
            self._copy_into(values, 0, vshape, bcast_strides(values.shape, vshape),
                            a, offset, vstrides)
            return
        pos = self._flat_positions(shape, key)
        if pos.size:
            vals = self.broadcast_to(values, pos.shape)
            launch(("scatter_set_flat",), *grid1(pos.size), self._flat(a),
                   self.device.to_device(pos.reshape(-1)), self._flat(vals), pos.size)

    def storage(self, a):
        return self.device.storage(a)

    def index_put_add(self, shape, key, values):
        shape = tuple(int(s) for s in shape)
        key = self._host_key(key)
        check_key(f"{self.name}.index_put_add", shape, key)
        values = self._dev(values)
        out = self.full(shape, 0, values.dtype)
        if all(is_basic(k) for k in key):
            offset, vshape, vstrides = basic_view(shape, key)
            self._copy_into(values, 0, vshape, bcast_strides(values.shape, vshape),
                            out, offset, vstrides)
            return out
        pos = self._flat_positions(shape, key)
        if pos.size:
            vals = self.broadcast_to(values, pos.shape)
            launch(("scatter_add_flat",), *grid1(pos.size), self._flat(out),
                    self.device.to_device(pos.reshape(-1)), self._flat(vals), pos.size)
        return out

    def _index_launch(self, key, n, *args):
        """Launch index kernel `key` with a device flag as its last argument; True when
        the kernel met an index out of range (one int32 read back)."""
        bad = self.full((), 0, np.int32)
        launch(key, *grid1(n), *args, self._flat(bad))
        return bool(bad.copy_to_host())

    def gather(self, a, axis, index):
        a, index = self._dev(a), self._dev(index)
        name = f"{self.name}.gather"
        axis = check_axis_indexing(name, a.shape, axis, index)
        check_index_dtype(name, index)
        if a.ndim == 0:  # 0-d: the same as 1-d of length 1
            return self.reshape(self.gather(self.reshape(a, (1,)), 0, self.reshape(index, (1,))), ())
        out = self._empty(index.shape, a.dtype)
        n = index.size
        if n:
            cs = c_strides(a.shape)
            sstr = tuple(0 if d == axis else cs[d] for d in range(a.ndim))
            if self._index_launch(("gather_axis",), n, self._flat(a), self._flat(index),
                                  self._flat(out), n, tuple(index.shape), sstr, cs[axis],
                                  a.shape[axis]):
                check_index(self, name, index, a.shape[axis], axis)  # raises, with the range
        return out

    def scatter_add(self, shape, axis, index, src):
        index, src = self._dev(index), self._dev(src)
        shape = tuple(int(s) for s in shape)
        name = f"{self.name}.scatter_add"
        axis = check_axis_indexing(name, shape, axis, index, src)
        check_index_dtype(name, index)
        if not shape:
            return self.reshape(self.scatter_add((1,), 0, self.reshape(index, (1,)),
                                                 self.reshape(src, (1,))), ())
        out = self.full(shape, 0, src.dtype)
        n = index.size
        if n:
            cs = c_strides(shape)
            ostr = tuple(0 if d == axis else cs[d] for d in range(len(shape)))
            sstr = c_strides(src.shape)
            if self._index_launch(("scatter_axis",), n, self._flat(out), self._flat(index),
                                  self._flat(src), n, tuple(index.shape), ostr, cs[axis],
                                  shape[axis], sstr):
                check_index(self, name, index, shape[axis], axis)
        return out

    def take_rows(self, table, indices):
        table, indices = self._dev(table), self._dev(indices)
        name = f"{self.name}.take_rows"
        check_index_dtype(name, indices, "indices")
        num_rows = table.shape[0] if table.ndim else 0
        row = size(table.shape[1:])
        out = self._empty(tuple(indices.shape) + tuple(table.shape[1:]), table.dtype)
        n = out.size
        if n and self._index_launch(("take_rows",), n, self._flat(table), self._flat(indices),
                                    self._flat(out), n, row, num_rows):
            check_index(self, name, indices, num_rows, 0, "indices")
        if indices.size and not n:  # rows of width 0: no thread read an index
            check_index(self, name, indices, num_rows, 0, "indices")
        return out

    def scatter_rows_add(self, num_rows, indices, src):
        indices, src = self._dev(indices), self._dev(src)
        name = f"{self.name}.scatter_rows_add"
        check_rows_indexing(name, indices, src)
        check_index_dtype(name, indices, "indices")
        num_rows = int(num_rows)
        row_shape = tuple(src.shape[indices.ndim:])
        out = self.full((num_rows,) + row_shape, 0, src.dtype)
        n = size(indices.shape) * size(row_shape)
        if n and self._index_launch(("scatter_rows",), n, self._flat(out), self._flat(indices),
                                    self._flat(src), n, size(row_shape), num_rows):
            check_index(self, name, indices, num_rows, 0, "indices")
        if indices.size and not n:
            check_index(self, name, indices, num_rows, 0, "indices")
        return out

    # ---- linear algebra
    def _batched(self, a, b, name):
        """Shapes for a batched product: promote 1-D operands as numpy.matmul does."""
        a, b = self._dev(a), self._dev(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"cuda backend: {name}: operands must have at least 1 dim, got shapes "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        squeeze = []
        if a.ndim == 1:
            a = self.reshape(a, (1, a.shape[0]))
            squeeze.append(-2)
        if b.ndim == 1:
            b = self.reshape(b, (b.shape[0], 1))
            squeeze.append(-1)
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"cuda backend: {name}: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                             "do not match (..., n, k) @ (..., k, m)")
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
        nb = size(batch)
        sa = tuple(s * n * k for s in bcast_strides(a.shape[:-2], batch))
        sb = tuple(s * k * m for s in bcast_strides(b.shape[:-2], batch))
        bshape, (sa, sb) = collapse(batch, sa, sb) if batch else ((1,), ((0,), (0,)))
        return a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze

    def matmul(self, a, b):
        a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze = self._batched(a, b, "matmul")
        dtype = np.result_type(a.dtype, b.dtype)
        out = self._empty(batch + (n, m), dtype)
        if out.size:
            # matmul tracks no winner: `out` stands in for the unused arg array
            launch(("tiled", "matmul", dtype.str, launch_config.TILE), *tiles(n, m, nb),
                   self._flat(a), self._flat(b), self._flat(out), self._flat(out),
                   n, k, m, nb, bshape, sa, sb, dtype.type(0))
        if squeeze:
            out = self.reshape(out, tuple(s for d, s in enumerate(out.shape)
                                          if d - out.ndim not in squeeze))
        return out

    def tropical_matmul(self, a, b, semiring):
        return self.semiring_matmul(a, b, semiring)

    def semiring_kernel(self, semiring):
        # the tiled kernel for the built-in semirings; the generic kernel for the rest
        if BUILTIN_SEMIRINGS.get(semiring.name) is semiring and semiring.name in fn.SEMIRING:
            return self._tropical_tiled
        return None

    def _tropical_tiled(self, a, b, semiring):
        if may_give_nan(self, a, b, semiring):   # the tiled kernel skips the NaN rule
            return self.generic_tropical(a, b, semiring)
        semiring = semiring.name
        a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze = self._batched(a, b, "tropical_matmul")
        dtype = np.result_type(a.dtype, b.dtype)
        out = self._empty(batch + (n, m), dtype)
        arg = self._empty(batch + (n, m), np.int64)
        if out.size:
            identity = dtype.type(fn.SEMIRING[semiring][2])
            launch(("tiled", semiring, dtype.str, launch_config.TILE), *tiles(n, m, nb),
                   self._flat(a), self._flat(b), self._flat(out), self._flat(arg),
                   n, k, m, nb, bshape, sa, sb, identity)
        if squeeze:
            keep = tuple(s for d, s in enumerate(out.shape) if d - out.ndim not in squeeze)
            out, arg = self.reshape(out, keep), self.reshape(arg, keep)
        return out, arg

    # ---- convolution and pooling
    def im2col(self, x, kh, kw, stride, padding, dilation=1):
        x = self._dev(x)
        n, c, h, w = x.shape
        (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = self._empty((n, c * kh * kw, oh * ow), x.dtype)
        if cols.size:
            launch(("im2col",), *grid1(cols.size), self._flat(x), self._flat(cols), cols.size,
                   c, h, w, int(kh), int(kw), sh, sw, ph, pw, dh, dw, oh, ow)
        return cols

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation=1):
        cols = self._dev(cols)
        n, c, h, w = (int(s) for s in x_shape)
        (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        x = self._empty((n, c, h, w), cols.dtype)
        if x.size:
            launch(("col2im",), *grid1(x.size), self._flat(cols), self._flat(x), x.size,
                   c, h, w, int(kh), int(kw), sh, sw, ph, pw, dh, dw, oh, ow,
                   cols.dtype.type(0))
        return x

    def max_pool2d(self, x, kernel, stride):
        x = self._dev(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = pair(kernel), pair(stride)
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        out = self._empty((n, c, oh, ow), x.dtype)
        idx = self._empty((n, c, oh, ow), np.int64)
        if out.size:
            launch(("max_pool",), *grid1(out.size), self._flat(x), self._flat(out),
                   self._flat(idx), out.size, h, w, kh, kw, sh, sw, oh, ow)
        return out, idx

    # ---- fused rows
    def _rows(self, a, axis, log):
        a = self._dev(a)
        if a.ndim == 0:
            a2 = self._rows(self.reshape(a, (1,)), 0, log)
            return self.reshape(a2, ())
        axis = normalize_axes(axis, a.ndim)[0]
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
        a = self.astype(a, dtype)
        out = self._empty(a.shape, dtype)
        n = a.shape[axis]
        kept, kshape, kstr, _, _ = self._splitnormalize_axes(a.shape, (axis,))
        n_rows = size(kept)
        if n_rows == 0 or n == 0:
            return out
        rstride = c_strides(a.shape)[axis]
        args = (self._flat(a), self._flat(out), n_rows, n, kshape, kstr, rstride, dtype.type(0))
        if use_block_reduce(n_rows, n):
            launch(("softmax_block", int(log), dtype.str, launch_config.REDUCE_THREADS),
                    *block_per_output(n_rows), *args)
        else:
            launch(("softmax_serial", int(log)), *grid1(n_rows), *args)
        return out

    def softmax(self, a, axis):
        return self._rows(a, axis, False)

    def log_softmax(self, a, axis):
        return self._rows(a, axis, True)
