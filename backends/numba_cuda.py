"""The Numba-CUDA backend: tensor data lives on the GPU as Numba device arrays.

Every kernel of `Backend` is a `numba.cuda.jit` kernel. Data goes to the device
in `asarray` and comes back only in `to_numpy`; no kernel copies tensor data
through the host. What the host does compute is index and shape metadata:
broadcast strides, views (offset + strides) of basic indexing keys, and the
flat source positions of advanced (integer / boolean array) keys in `getitem`
and `index_put_add` -- those keys are copied to the host when they live on the
device, because NumPy's indexing rules are applied to them there.

Layout. Every array this backend returns is C-contiguous, so a kernel sees it
as a flat 1-D buffer plus a shape. Layout changes (transpose, broadcast_to,
diagonal, basic slicing, cat, split) are all one strided-copy kernel with
different (offset, shape, strides) triples computed on the host; adjacent
dimensions that stay contiguous are merged first, so the kernels' index
arithmetic runs on as few dimensions as possible. Shapes and strides are
passed to kernels as tuples, so each kernel is compiled once per rank.

Launches. All element-parallel kernels are grid-stride loops. On a GPU they use
256 threads per block and 16x16 matmul tiles. Under Numba's CUDA simulator
(`NUMBA_ENABLE_CUDASIM=1`, where every CUDA thread is a Python thread and every
barrier a thread hand-off) the same kernels run as one-thread launches (one
1x1 tile for matmul, whose barriers are skipped when a tile is one thread) so
the test suite stays fast; tests/test_cuda_backend.py reruns them with
multi-thread blocks, several blocks and 2x2 shared-memory tiles. Reductions and
softmax rows have a serial kernel (one thread per output) and a block kernel (a
shared-memory tree per output) used for long reductions on a GPU.

Under the simulator every launch (kernel name, argument types) is recorded in
`LAUNCHED`, so that `python -m backends.numba_cuda --check-compile FILE` (used by
the tests) can type-check and lower exactly those kernels for the real CUDA
target, without a GPU: the simulator runs plain Python and would accept code
the CUDA compiler rejects.
"""
import contextlib
import math
import sys

import numpy as np

from .base import Backend, UNARY_OPS, BINARY_OPS, SEMIRINGS

try:
    import numba
    from numba import cuda
    _IMPORT_ERROR = None
except Exception as e:  # numba-cuda missing, or no CUDA bindings
    numba = cuda = None
    _IMPORT_ERROR = e


def _simulator_enabled():
    if cuda is None:
        return False
    try:
        from numba.cuda.core import config
    except ImportError:  # older numba-cuda
        from numba import config
    return bool(getattr(config, "ENABLE_CUDASIM", False))


SIM = _simulator_enabled()

# ---- launch configuration (module attributes so tests can vary them) ----------
if SIM:
    THREADS, MAX_BLOCKS = 1, 1        # element-parallel kernels
    REDUCE_THREADS = 4                # block reductions (power of two)
    BLOCK_REDUCE_MIN = 1 << 62        # simulator: serial reductions unless a test asks
    TILE = 1                          # matmul tiles (TILE x TILE threads)
    MAX_TILE_BLOCKS = 1
else:
    THREADS, MAX_BLOCKS = 256, 65535
    REDUCE_THREADS = 256
    BLOCK_REDUCE_MIN = 256            # a reduction this long gets a block per output
    TILE = 16
    MAX_TILE_BLOCKS = 65535
BLOCK_REDUCE_MAX_OUT = 1 << 14        # ... unless there are many outputs anyway

LAUNCHED = set()  # (kernel key, argument numba types): see --check-compile

if SIM:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    class SimDeviceArray(FakeCUDAArray):
        """The simulator's device array, with a plain tuple `.shape` as a GPU
        DeviceNDArray has (the simulator's own shape rejects negative indices,
        which host code such as `x.shape[-1]` may use)."""

        @property
        def shape(self):
            return tuple(self._ary.shape)

        def reshape(self, *args, **kwargs):
            return SimDeviceArray(self._ary.reshape(*args, **kwargs))

    def _device_array(shape, dtype):
        return SimDeviceArray(np.empty(shape, dtype=dtype))

    def _patch_simulator_shared_arrays():
        """The simulator gives the threads of a block one shared array per source line
        through an unlocked get-or-create: two threads that both miss create two arrays,
        and the block silently stops sharing memory (wrong matmul results, more often
        the more often threads switch). Same logic, under a lock."""
        import threading
        from numba.core import types as nbtypes
        from numba.np import numpy_support
        from numba.cuda.simulator import kernelapi
        original = kernelapi.FakeCUDAShared.array
        lock = threading.Lock()

        def array(self, shape, dtype, alignment=None):
            if alignment is not None or shape == 0:  # dynamic shared memory: no allocation
                return original(self, shape, dtype, alignment)
            if isinstance(dtype, nbtypes.Type):
                dtype = numpy_support.as_dtype(dtype)
            frame = sys._getframe(1)
            caller = (frame.f_code.co_filename, frame.f_lineno)
            with lock:
                res = self._allocations.get(caller)
                if res is None:
                    res = self._allocations[caller] = np.empty(shape, dtype)
            return res

        kernelapi.FakeCUDAShared.array = array

    _patch_simulator_shared_arrays()

    def _to_device(host):
        return SimDeviceArray(np.array(host, copy=True, order="C"))
else:
    def _device_array(shape, dtype):
        return cuda.device_array(shape, dtype=dtype)

    def _to_device(host):
        return _to_device(host)


def _device(f):
    """A device function: compiled for the GPU; plain Python under the simulator
    (a simulated device call costs a lock and a module swap per call)."""
    if cuda is None or SIM:
        return f
    return cuda.jit(device=True)(f)


# ---- index arithmetic (device functions) --------------------------------------
def _offset_py(i, shape, strides):
    """Offset of the C-order flat index i in a view with `shape` and `strides`."""
    off = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        off += (i % s) * strides[d]
        i //= s
    return off


def _offset2_py(i, shape, s1, s2):
    o1 = 0
    o2 = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        q = i % s
        o1 += q * s1[d]
        o2 += q * s2[d]
        i //= s
    return o1, o2


def _offset3_py(i, shape, s1, s2, s3):
    o1 = 0
    o2 = 0
    o3 = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        q = i % s
        o1 += q * s1[d]
        o2 += q * s2[d]
        o3 += q * s3[d]
        i //= s
    return o1, o2, o3


_offset = _device(_offset_py)
_offset2 = _device(_offset2_py)
_offset3 = _device(_offset3_py)


# ---- elementwise math (device functions) --------------------------------------
# The guards make the simulator (Python's math raises on log(0), exp(1000),
# sin(inf)) give the IEEE results a GPU gives.
def _neg(x):
    return -x


def _exp(x):
    if x > 709.7:
        return math.inf
    return math.exp(x)


def _log(x):
    if x > 0:
        return math.log(x)
    if x == 0:
        return -math.inf
    return math.nan


def _sin(x):
    if math.isinf(x):
        return math.nan
    return math.sin(x)


def _cos(x):
    if math.isinf(x):
        return math.nan
    return math.cos(x)


def _sqrt(x):
    if x >= 0:
        return math.sqrt(x)
    return math.nan


def _rsqrt(x):
    if x > 0:
        return 1 / math.sqrt(x)
    if x == 0:
        return math.inf
    return math.nan


def _relu(x):
    return 0 if x < 0 else x


def _sigmoid_py(x):
    if x >= 0:
        e = math.exp(-x)
        return 1 / (1 + e)
    e = math.exp(x)
    return e / (1 + e)


_sigmoid = _device(_sigmoid_py)


def _tanh(x):
    return math.tanh(x)


def _silu(x):
    return x * _sigmoid(x)


def _abs(x):
    return abs(x)


def _sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return x  # 0 or nan


def _add(x, y):
    return x + y


def _sub(x, y):
    return x - y


def _mul(x, y):
    return x * y


def _div(x, y):
    return x / y


def _pow(x, y):
    return x ** y


def _maximum(x, y):
    if x != x:
        return x
    if y != y:
        return y
    return x if x >= y else y


def _minimum(x, y):
    if x != x:
        return x
    if y != y:
        return y
    return x if x <= y else y


def _gt(x, y):
    return x > y


def _ge(x, y):
    return x >= y


def _lt(x, y):
    return x < y


def _le(x, y):
    return x <= y


def _eq(x, y):
    return x == y


def _ne(x, y):
    return x != y


_UNARY_DEV = {name: _device(f) for name, f in {
    "neg": _neg, "exp": _exp, "log": _log, "sin": _sin, "cos": _cos, "sqrt": _sqrt,
    "rsqrt": _rsqrt, "relu": _relu, "sigmoid": _sigmoid, "tanh": _tanh, "silu": _silu,
    "abs": _abs, "sign": _sign}.items()}
_BINARY_DEV = {name: _device(f) for name, f in {
    "add": _add, "sub": _sub, "mul": _mul, "div": _div, "pow": _pow,
    "maximum": _maximum, "minimum": _minimum, "gt": _gt, "ge": _ge, "lt": _lt,
    "le": _le, "eq": _eq, "ne": _ne}.items()}
assert set(_UNARY_DEV) == set(UNARY_OPS) and set(_BINARY_DEV) == set(BINARY_OPS)
_exp_dev, _log_dev = _UNARY_DEV["exp"], _UNARY_DEV["log"]

# NumPy ufuncs, used on the host only on one-element dummies to get result dtypes
_UNARY_NP = {"neg": np.negative, "exp": np.exp, "log": np.log, "sin": np.sin,
             "cos": np.cos, "sqrt": np.sqrt, "rsqrt": np.sqrt, "relu": np.abs,
             "sigmoid": np.exp, "tanh": np.tanh, "silu": np.exp, "abs": np.abs,
             "sign": np.sign}
_BINARY_NP = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
              "gt": np.greater, "ge": np.greater_equal, "lt": np.less,
              "le": np.less_equal, "eq": np.equal, "ne": np.not_equal}


# first-maximum / first-minimum comparisons with NumPy's NaN rule (NaN wins, first NaN)
def _better_max(v, i, bv, bi):
    if i < 0:
        return False
    if bi < 0:
        return True
    if bv != bv:
        return v != v and i < bi
    if v != v:
        return True
    return v > bv or (v == bv and i < bi)


def _better_min(v, i, bv, bi):
    if i < 0:
        return False
    if bi < 0:
        return True
    if bv != bv:
        return v != v and i < bi
    if v != v:
        return True
    return v < bv or (v == bv and i < bi)


_BETTER = {"max": _device(_better_max), "min": _device(_better_min)}


# tropical semirings: combine (⊗) and strict "better" (⊕ picks the better, ties keep the first)
def _tgt(x, y):
    return x > y


def _tlt(x, y):
    return x < y


_SEMIRING_DEV = {
    "max_plus": (_device(_add), _device(_tgt), -np.inf),
    "min_plus": (_device(_add), _device(_tlt), np.inf),
    "max_mul": (_device(_mul), _device(_tgt), 0.0),
}
assert set(_SEMIRING_DEV) == set(SEMIRINGS)


# ---- kernel builders -------------------------------------------------------------
# Each builder returns a plain Python kernel function; `_kernel(key)` jits it once.
# Keys are tuples of strings and ints, so `--check-compile` can rebuild them.

def _b_fill():
    def fill(out, n, value):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = value
            i += step
    return fill


def _b_arange():
    def arange(out, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = i
            i += step
    return arange


def _b_cast():
    def cast(src, out, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = src[i]
            i += step
    return cast


def _b_strided_copy():
    def strided_copy(src, soff, dst, doff, n, shape, sstr, dstr):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            o1, o2 = _offset2(i, shape, sstr, dstr)
            dst[doff + o2] = src[soff + o1]
            i += step
    return strided_copy


def _b_unary(op):
    f = _UNARY_DEV[op]

    def unary(a, out, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = f(a[i])
            i += step
    return unary


def _b_binary(op, mode):
    f = _BINARY_DEV[op]
    if mode == "flat":  # same shapes: both contiguous, flat index
        def binary(a, b, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = f(a[i], b[i])
                i += step
    elif mode == "bcast":
        def binary(a, b, out, n, shape, sa, sb):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                oa, ob = _offset2(i, shape, sa, sb)
                out[i] = f(a[oa], b[ob])
                i += step
    elif mode == "as":  # array op scalar
        def binary(a, b, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = f(a[i], b)
                i += step
    elif mode == "sa":  # scalar op array
        def binary(a, b, out, n):
            i = cuda.grid(1)
            step = cuda.gridsize(1)
            while i < n:
                out[i] = f(a, b[i])
                i += step
    else:
        raise ValueError(mode)
    return binary


def _b_where():
    def where(c, a, b, out, n, shape, sc, sa, sb):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            oc, oa, ob = _offset3(i, shape, sc, sa, sb)
            if c[oc]:
                out[i] = a[oa]
            else:
                out[i] = b[ob]
            i += step
    return where


def _b_sum_serial():
    def sum_serial(src, out, n_out, n_red, kshape, kstr, rshape, rstr, zero):
        o = cuda.grid(1)
        step = cuda.gridsize(1)
        while o < n_out:
            base = _offset(o, kshape, kstr)
            acc = zero
            for r in range(n_red):
                acc += src[base + _offset(r, rshape, rstr)]
            out[o] = acc
            o += step
    return sum_serial


def _b_sum_block(dtype, T):
    nbt = numba.from_dtype(np.dtype(dtype))

    def sum_block(src, out, n_out, n_red, kshape, kstr, rshape, rstr, zero):
        sh = cuda.shared.array(T, nbt)
        tid = cuda.threadIdx.x
        o = cuda.blockIdx.x
        while o < n_out:
            base = _offset(o, kshape, kstr)
            acc = zero
            r = tid
            while r < n_red:
                acc += src[base + _offset(r, rshape, rstr)]
                r += T
            sh[tid] = acc
            cuda.syncthreads()
            s = T // 2
            while s > 0:
                if tid < s:
                    sh[tid] += sh[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[o] = sh[0]
            cuda.syncthreads()  # sh is reused by this block's next output
            o += cuda.gridDim.x
    return sum_block


def _b_best_serial(kind):
    better = _BETTER[kind]

    def best_serial(src, out, arg, n_out, n_red, kshape, kstr, rshape, rstr):
        o = cuda.grid(1)
        step = cuda.gridsize(1)
        while o < n_out:
            base = _offset(o, kshape, kstr)
            bv = src[base]
            bi = 0
            for r in range(1, n_red):
                v = src[base + _offset(r, rshape, rstr)]
                if better(v, r, bv, bi):
                    bv = v
                    bi = r
            out[o] = bv
            arg[o] = bi
            o += step
    return best_serial


def _b_best_block(kind, dtype, T):
    better = _BETTER[kind]
    nbt = numba.from_dtype(np.dtype(dtype))

    def best_block(src, out, arg, n_out, n_red, kshape, kstr, rshape, rstr):
        shv = cuda.shared.array(T, nbt)
        shi = cuda.shared.array(T, numba.int64)
        tid = cuda.threadIdx.x
        o = cuda.blockIdx.x
        while o < n_out:
            base = _offset(o, kshape, kstr)
            bv = src[base]
            bi = -1  # -1: this thread has seen nothing yet
            r = tid
            while r < n_red:
                v = src[base + _offset(r, rshape, rstr)]
                if better(v, r, bv, bi):
                    bv = v
                    bi = r
                r += T
            shv[tid] = bv
            shi[tid] = bi
            cuda.syncthreads()
            s = T // 2
            while s > 0:
                if tid < s:
                    if better(shv[tid + s], shi[tid + s], shv[tid], shi[tid]):
                        shv[tid] = shv[tid + s]
                        shi[tid] = shi[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[o] = shv[0]
                arg[o] = shi[0]
            cuda.syncthreads()
            o += cuda.gridDim.x
    return best_block


def _b_softmax_serial(log):
    log = bool(log)

    def softmax_serial(src, out, n_rows, n, kshape, kstr, rstride, zero):
        o = cuda.grid(1)
        step = cuda.gridsize(1)
        while o < n_rows:
            base = _offset(o, kshape, kstr)
            m = src[base]
            for j in range(1, n):
                v = src[base + j * rstride]
                if v > m or v != v:
                    m = v
            s = zero
            for j in range(n):
                s += _exp_dev(src[base + j * rstride] - m)
            if log:
                ls = _log_dev(s)
                for j in range(n):
                    p = base + j * rstride
                    out[p] = src[p] - m - ls
            else:
                for j in range(n):
                    p = base + j * rstride
                    out[p] = _exp_dev(src[p] - m) / s
            o += step
    return softmax_serial


def _b_softmax_block(log, dtype, T):
    log = bool(log)
    nbt = numba.from_dtype(np.dtype(dtype))

    def softmax_block(src, out, n_rows, n, kshape, kstr, rstride, zero):
        sh = cuda.shared.array(T, nbt)
        tid = cuda.threadIdx.x
        o = cuda.blockIdx.x
        while o < n_rows:
            base = _offset(o, kshape, kstr)
            m = src[base]
            j = tid
            while j < n:
                v = src[base + j * rstride]
                if v > m or v != v:
                    m = v
                j += T
            sh[tid] = m
            cuda.syncthreads()
            s = T // 2
            while s > 0:
                if tid < s:
                    w = sh[tid + s]
                    if w > sh[tid] or w != w:
                        sh[tid] = w
                cuda.syncthreads()
                s //= 2
            m = sh[0]
            cuda.syncthreads()
            acc = zero
            j = tid
            while j < n:
                acc += _exp_dev(src[base + j * rstride] - m)
                j += T
            sh[tid] = acc
            cuda.syncthreads()
            s = T // 2
            while s > 0:
                if tid < s:
                    sh[tid] += sh[tid + s]
                cuda.syncthreads()
                s //= 2
            total = sh[0]
            j = tid
            if log:
                ls = _log_dev(total)
                while j < n:
                    p = base + j * rstride
                    out[p] = src[p] - m - ls
                    j += T
            else:
                while j < n:
                    p = base + j * rstride
                    out[p] = _exp_dev(src[p] - m) / total
                    j += T
            cuda.syncthreads()
            o += cuda.gridDim.x
    return softmax_block


def _b_gather_flat():
    def gather_flat(src, idx, out, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = src[idx[i]]
            i += step
    return gather_flat


def _b_scatter_add_flat():
    def scatter_add_flat(out, idx, vals, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            cuda.atomic.add(out, idx[i], vals[i])
            i += step
    return scatter_add_flat


def _b_gather_axis():
    def gather_axis(src, index, out, n, ishape, sstr, saxis, alen):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            j = index[i]
            if j < 0:
                j += alen
            out[i] = src[_offset(i, ishape, sstr) + j * saxis]
            i += step
    return gather_axis


def _b_scatter_axis():
    def scatter_axis(out, index, src, n, ishape, ostr, oaxis, alen, sstr):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            j = index[i]
            if j < 0:
                j += alen
            oo, so = _offset2(i, ishape, ostr, sstr)
            cuda.atomic.add(out, oo + j * oaxis, src[so])
            i += step
    return scatter_axis


def _b_take_rows():
    def take_rows(table, idx, out, n, row, num_rows):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            r = idx[i // row]
            if r < 0:
                r += num_rows
            out[i] = table[r * row + i % row]
            i += step
    return take_rows


def _b_scatter_rows():
    def scatter_rows(out, idx, src, n, row, num_rows):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            r = idx[i // row]
            if r < 0:
                r += num_rows
            cuda.atomic.add(out, r * row + i % row, src[i])
            i += step
    return scatter_rows


def _b_matmul(dtype, T):
    nbt = numba.from_dtype(np.dtype(dtype))

    def matmul(a, b, c, n, k, m, nb, bshape, sa, sb, zero):
        # c[z] = a[z] @ b[z]; a[z] (n, k) and b[z] (k, m) contiguous at batch offsets
        ta = cuda.shared.array((T, T), nbt)
        tb = cuda.shared.array((T, T), nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tiles_n = (n + T - 1) // T
        tiles_m = (m + T - 1) // T
        z = cuda.blockIdx.z
        while z < nb:
            aoff, boff = _offset2(z, bshape, sa, sb)
            ti = cuda.blockIdx.y
            while ti < tiles_n:
                tj = cuda.blockIdx.x
                while tj < tiles_m:
                    row = ti * T + ty
                    col = tj * T + tx
                    acc = zero
                    for t0 in range(0, k, T):
                        if row < n and t0 + tx < k:
                            ta[ty, tx] = a[aoff + row * k + t0 + tx]
                        else:
                            ta[ty, tx] = zero
                        if col < m and t0 + ty < k:
                            tb[ty, tx] = b[boff + (t0 + ty) * m + col]
                        else:
                            tb[ty, tx] = zero
                        if T > 1:  # a one-thread tile needs no barrier
                            cuda.syncthreads()
                        for l in range(T):
                            acc += ta[ty, l] * tb[l, tx]
                        if T > 1:  # a one-thread tile needs no barrier
                            cuda.syncthreads()
                    if row < n and col < m:
                        c[(z * n + row) * m + col] = acc
                    tj += cuda.gridDim.x
                ti += cuda.gridDim.y
            z += cuda.gridDim.z
    return matmul


def _b_tropical(semiring, dtype, T):
    combine, better, _ = _SEMIRING_DEV[semiring]
    nbt = numba.from_dtype(np.dtype(dtype))

    def tropical(a, b, c, arg, n, k, m, nb, bshape, sa, sb, identity):
        ta = cuda.shared.array((T, T), nbt)
        tb = cuda.shared.array((T, T), nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tiles_n = (n + T - 1) // T
        tiles_m = (m + T - 1) // T
        z = cuda.blockIdx.z
        while z < nb:
            aoff, boff = _offset2(z, bshape, sa, sb)
            ti = cuda.blockIdx.y
            while ti < tiles_n:
                tj = cuda.blockIdx.x
                while tj < tiles_m:
                    row = ti * T + ty
                    col = tj * T + tx
                    best = identity
                    bi = 0
                    for t0 in range(0, k, T):
                        if row < n and t0 + tx < k:
                            ta[ty, tx] = a[aoff + row * k + t0 + tx]
                        else:
                            ta[ty, tx] = identity
                        if col < m and t0 + ty < k:
                            tb[ty, tx] = b[boff + (t0 + ty) * m + col]
                        else:
                            tb[ty, tx] = identity
                        if T > 1:  # a one-thread tile needs no barrier
                            cuda.syncthreads()
                        for l in range(T):
                            if t0 + l < k:
                                v = combine(ta[ty, l], tb[l, tx])
                                # strictly better only: ties keep the lowest index
                                if better(v, best):
                                    best = v
                                    bi = t0 + l
                        if T > 1:  # a one-thread tile needs no barrier
                            cuda.syncthreads()
                    if row < n and col < m:
                        p = (z * n + row) * m + col
                        c[p] = best
                        arg[p] = bi
                    tj += cuda.gridDim.x
                ti += cuda.gridDim.y
            z += cuda.gridDim.z
    return tropical


def _b_im2col():
    def im2col(x, cols, n_total, C, H, W, kh, kw, stride, pad, OH, OW):
        # cols (N, C*kh*kw, OH*OW): one thread per output element
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n_total:
            ow = i % OW
            t = i // OW
            oh = t % OH
            t //= OH
            kj = t % kw
            t //= kw
            ki = t % kh
            t //= kh
            c = t % C
            nn = t // C
            h = oh * stride + ki - pad
            w = ow * stride + kj - pad
            if h >= 0 and h < H and w >= 0 and w < W:
                cols[i] = x[((nn * C + c) * H + h) * W + w]
            else:
                cols[i] = 0
            i += step
    return im2col


def _b_col2im():
    def col2im(cols, x, n_total, C, H, W, kh, kw, stride, pad, OH, OW, zero):
        # the adjoint as a gather: each image element sums the patches that cover it
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n_total:
            w = i % W
            t = i // W
            h = t % H
            t //= H
            c = t % C
            nn = t // C
            acc = zero
            for ki in range(kh):
                hp = h + pad - ki
                if hp >= 0 and hp % stride == 0 and hp // stride < OH:
                    oh = hp // stride
                    for kj in range(kw):
                        wp = w + pad - kj
                        if wp >= 0 and wp % stride == 0 and wp // stride < OW:
                            ow = wp // stride
                            acc += cols[(((nn * C + c) * kh + ki) * kw + kj) * (OH * OW)
                                        + oh * OW + ow]
            x[i] = acc
            i += step
    return col2im


def _b_max_pool():
    better = _BETTER["max"]

    def max_pool(x, out, idx, n_total, H, W, kernel, stride, OH, OW):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n_total:
            ow = i % OW
            t = i // OW
            oh = t % OH
            plane = t // OH  # n * C + c
            base = plane * H * W
            h0 = oh * stride
            w0 = ow * stride
            bv = x[base + h0 * W + w0]
            bi = 0
            for r in range(kernel):
                for q in range(kernel):
                    v = x[base + (h0 + r) * W + w0 + q]
                    if better(v, r * kernel + q, bv, bi):
                        bv = v
                        bi = r * kernel + q
            out[i] = bv
            idx[i] = (h0 + bi // kernel) * W + w0 + bi % kernel
            i += step
    return max_pool


_BUILDERS = {
    "fill": _b_fill, "arange": _b_arange, "cast": _b_cast, "strided_copy": _b_strided_copy,
    "unary": _b_unary, "binary": _b_binary, "where": _b_where,
    "sum_serial": _b_sum_serial, "sum_block": _b_sum_block,
    "best_serial": _b_best_serial, "best_block": _b_best_block,
    "softmax_serial": _b_softmax_serial, "softmax_block": _b_softmax_block,
    "gather_flat": _b_gather_flat, "scatter_add_flat": _b_scatter_add_flat,
    "gather_axis": _b_gather_axis, "scatter_axis": _b_scatter_axis,
    "take_rows": _b_take_rows, "scatter_rows": _b_scatter_rows,
    "matmul": _b_matmul, "tropical": _b_tropical,
    "im2col": _b_im2col, "col2im": _b_col2im, "max_pool": _b_max_pool,
}
_kernels = {}


def kernel_function(key):
    """The Python function of kernel `key` (uncompiled)."""
    return _BUILDERS[key[0]](*key[1:])


def _kernel(key):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = cuda.jit(kernel_function(key))
    return k


@contextlib.contextmanager
def _simulator_switching():
    # Simulated threads meet at barriers through the GIL; the default 5 ms switch
    # interval makes every cuda.syncthreads() cost milliseconds. (Single-thread
    # launches are faster with the default interval, so they keep it.)
    old = sys.getswitchinterval()
    sys.setswitchinterval(2e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _launch(key, grid, block, *args):
    k = _kernel(key)[grid, block]
    if not SIM:  # on a GPU every launch compiles for real: nothing to record
        k(*args)
        return
    LAUNCHED.add((key, tuple(numba.typeof(a) for a in args)))
    threads = block if isinstance(block, int) else math.prod(block)
    if threads > 1:
        with _simulator_switching():
            k(*args)
    else:
        k(*args)


def _grid1(n):
    return min(MAX_BLOCKS, max(1, -(-n // THREADS))), THREADS


# ---- host-side shape helpers ------------------------------------------------------
def _size(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _c_strides(shape):
    strides = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= int(shape[d])
    return tuple(strides)


def _collapse(shape, *strides):
    """Drop size-1 dims and merge adjacent dims that are contiguous in every stride
    list; always returns at least one dim (kernels need non-empty tuples)."""
    dims = [(int(s), [int(st[d]) for st in strides]) for d, s in enumerate(shape) if s != 1]
    out = []
    for s, st in dims:
        if out and all(prev_st == cur * s for prev_st, cur in zip(out[-1][1], st)):
            out[-1] = (out[-1][0] * s, st)
        else:
            out.append((s, st))
    if not out:
        return (1,), tuple((0,) for _ in strides)
    return tuple(s for s, _ in out), tuple(tuple(st[i] for _, st in out)
                                             for i in range(len(strides)))


def _bcast_strides(shape, out_shape):
    """Element strides of a contiguous array of `shape` read as `out_shape` (0 where broadcast)."""
    shape = tuple(shape)
    while len(shape) > len(out_shape) and shape[0] == 1:  # leading 1s broadcast away
        shape = shape[1:]
    shape = (1,) * (len(out_shape) - len(shape)) + shape
    cs = _c_strides(shape)
    return tuple(0 if s == 1 and o != 1 else c for s, o, c in zip(shape, out_shape, cs))


def _axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for ax in axes:
        ax = int(ax)
        if not -ndim <= ax < max(ndim, 1):
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
        out.append(ax % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _basic_view(shape, key):
    """(offset, shape, strides) in elements of a[key] for a basic key on a
    C-contiguous array, computed by NumPy on a strided dummy that owns no data
    (basic indexing only does pointer arithmetic: nothing is read)."""
    base = np.zeros(1, dtype=np.int64)
    dummy = np.lib.stride_tricks.as_strided(
        base, shape=shape, strides=tuple(8 * s for s in _c_strides(shape)), writeable=False)
    key = key if isinstance(key, tuple) else (key,)
    if not any(k is Ellipsis for k in key):
        key = key + (Ellipsis,)
    view = dummy[key + (None,)]  # a trailing new axis keeps a view even for all-int keys
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 8
    return offset, view.shape[:-1], tuple(s // 8 for s in view.strides[:-1])


def _is_basic(part):
    if isinstance(part, (bool, np.bool_)):
        return False  # a boolean scalar is an advanced index in NumPy
    return part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer))


def _dtype_of(x):
    return x.dtype if hasattr(x, "dtype") else None


def _scalar_like(x):
    return isinstance(x, (bool, int, float, np.generic))


def _unavailable_reason():
    if cuda is None:
        return (f"numba-cuda is not installed ({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR}); "
                "install it with pip install -e '.[cuda]'")
    if SIM:
        return None
    try:
        if cuda.is_available():
            return None
    except Exception:  # the driver can raise instead of returning False
        pass
    return ("no CUDA GPU is available (numba.cuda.is_available() is False) and Numba's CUDA "
            "simulator is off; to run the cuda backend on the CPU, set NUMBA_ENABLE_CUDASIM=1 "
            "in the environment before numba.cuda (or opgraph) is first imported")


class NumbaCUDABackend(Backend):
    """Tensor data on the GPU as Numba device arrays; every kernel a CUDA kernel."""
    name = "cuda"

    def __init__(self):
        why = _unavailable_reason()
        if why is not None:
            raise RuntimeError(f"backend 'cuda' is unavailable: {why}")
        self.simulator = SIM

    def __repr__(self):
        return "<backend cuda (simulator)>" if self.simulator else "<backend cuda>"

    # ---- allocation helpers
    def _empty(self, shape, dtype):
        return _device_array(tuple(int(s) for s in shape), np.dtype(dtype))

    def _flat(self, a):
        """The 1-D view of a contiguous device array."""
        return a.reshape(a.size) if a.ndim != 1 else a

    def _dev(self, x):
        """A kernel operand as a contiguous device array (NumPy arrays are uploaded)."""
        return self.asarray(x)

    def _copy_into(self, src, soff, shape, sstr, dst, doff, dstr):
        """dst[doff + view(shape, dstr)] = src[soff + view(shape, sstr)], on the device."""
        n = _size(shape)
        if n == 0:
            return
        shape, (sstr, dstr) = _collapse(shape, sstr, dstr)
        _launch(("strided_copy",), *_grid1(n), self._flat(src), soff, self._flat(dst),
                doff, n, shape, sstr, dstr)

    def _view_copy(self, a, offset, shape, strides, dtype=None):
        """A new contiguous array holding the strided view (offset, shape, strides) of `a`."""
        out = self._empty(shape, dtype or a.dtype)
        self._copy_into(a, offset, shape, strides, out, 0, _c_strides(shape))
        return out

    # ---- creation and host transfer
    def asarray(self, data, dtype=None):
        if getattr(data, "__cuda_ndarray__", False):
            a = data
            if not a.is_c_contiguous():  # a strided view made by the user: device-side copy
                a = _device_array(tuple(a.shape), a.dtype)
                a[...] = data
            if dtype is not None and a.dtype != np.dtype(dtype):
                a = self.astype(a, dtype)
            return a
        if hasattr(data, "__cuda_array_interface__") and not SIM:
            # CuPy / PyTorch-CUDA arrays: a zero-copy view, then as above
            return self.asarray(cuda.as_cuda_array(data), dtype)
        host = np.asarray(data, dtype=dtype)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"cuda backend: unsupported dtype {host.dtype}")
        if not host.flags.c_contiguous:
            host = host.copy(order="C")
        return _to_device(host)

    def to_numpy(self, a):
        if not self.is_array(a):
            return np.array(a)
        return a.copy_to_host()

    def is_array(self, a):
        return bool(getattr(a, "__cuda_ndarray__", False)) and a.is_c_contiguous()

    def full(self, shape, value, dtype):
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        dtype = np.dtype(dtype)
        out = self._empty(shape, dtype)
        n = out.size
        if n:
            _launch(("fill",), *_grid1(n), self._flat(out), n, dtype.type(value))
        return out

    def astype(self, a, dtype):
        dtype = np.dtype(dtype)
        a = self._dev(a)
        if a.dtype == dtype:
            return a
        out = self._empty(a.shape, dtype)
        if a.size:
            _launch(("cast",), *_grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def arange(self, n, dtype):
        n = int(n)
        out = self._empty((n,), dtype)
        if n:
            _launch(("arange",), *_grid1(n), out, n)
        return out

    # ---- elementwise
    def unary(self, op, a):
        if op not in _UNARY_DEV:
            raise ValueError(f"cuda backend: unknown unary op {op!r}; expected one of {UNARY_OPS}")
        a = self._dev(a)
        dtype = _UNARY_NP[op](np.ones(1, a.dtype)).dtype
        out = self._empty(a.shape, dtype)
        if a.size:
            _launch(("unary", op), *_grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def binary(self, op, a, b):
        if op not in _BINARY_DEV:
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
        if a_scalar or b_scalar:
            arr, scalar = (b, a) if a_scalar else (a, b)
            # compute in the common type of the array and the scalar
            common = np.result_type(arr.dtype, scalar if isinstance(scalar, np.generic) else type(scalar)(1))
            scalar = common.type(scalar)
            out = self._empty(arr.shape, dtype)
            if arr.size:
                mode = "sa" if a_scalar else "as"
                args = (scalar, self._flat(arr)) if a_scalar else (self._flat(arr), scalar)
                _launch(("binary", op, mode), *_grid1(arr.size), *args, self._flat(out), arr.size)
            return out
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        out = self._empty(shape, dtype)
        n = out.size
        if n == 0:
            return out
        if a.shape == b.shape:
            _launch(("binary", op, "flat"), *_grid1(n), self._flat(a), self._flat(b),
                    self._flat(out), n)
        else:
            cshape, (sa, sb) = _collapse(shape, _bcast_strides(a.shape, shape),
                                         _bcast_strides(b.shape, shape))
            _launch(("binary", op, "bcast"), *_grid1(n), self._flat(a), self._flat(b),
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
            cshape, (sc, sa, sb) = _collapse(shape, _bcast_strides(cond.shape, shape),
                                             _bcast_strides(a.shape, shape),
                                             _bcast_strides(b.shape, shape))
            _launch(("where",), *_grid1(n), self._flat(cond), self._flat(a), self._flat(b),
                    self._flat(out), n, cshape, sc, sa, sb)
        return out

    # ---- reductions
    def _split_axes(self, shape, axes):
        """(kept shape, kept strides, reduced shape, reduced strides), collapsed."""
        cs = _c_strides(shape)
        kshape = tuple(shape[d] for d in range(len(shape)) if d not in axes)
        kstr = tuple(cs[d] for d in range(len(shape)) if d not in axes)
        rshape = tuple(shape[d] for d in axes)
        rstr = tuple(cs[d] for d in axes)
        kshape_c, (kstr_c,) = _collapse(kshape, kstr)
        rshape_c, (rstr_c,) = _collapse(rshape, rstr)
        return kshape, kshape_c, kstr_c, rshape_c, rstr_c

    def _out_shape(self, shape, axes, kept, keepdims):
        if keepdims:
            return tuple(1 if d in axes else s for d, s in enumerate(shape))
        return kept

    def _use_block(self, n_out, n_red):
        return n_red >= BLOCK_REDUCE_MIN and n_out < BLOCK_REDUCE_MAX_OUT

    def _block_launch(self, n_out):
        return min(n_out, MAX_BLOCKS if SIM else 65535), REDUCE_THREADS

    def sum(self, a, axes=None, keepdims=False):
        a = self._dev(a)
        axes = _axes(axes, a.ndim)
        dtype = np.sum(np.zeros(1, a.dtype)).dtype
        kept, kshape, kstr, rshape, rstr = self._split_axes(a.shape, axes)
        out = self._empty(self._out_shape(a.shape, axes, kept, keepdims), dtype)
        n_out, n_red = out.size, _size(a.shape[d] for d in axes)
        if n_out == 0:
            return out
        args = (self._flat(a), self._flat(out), n_out, n_red, kshape, kstr, rshape, rstr,
                dtype.type(0))
        if self._use_block(n_out, n_red):
            _launch(("sum_block", dtype.str, REDUCE_THREADS), *self._block_launch(n_out), *args)
        else:
            _launch(("sum_serial",), *_grid1(n_out), *args)
        return out

    def _best(self, kind, a, axis, keepdims, name):
        a = self._dev(a)
        axes = _axes(axis, a.ndim)
        kept, kshape, kstr, rshape, rstr = self._split_axes(a.shape, axes)
        out_shape = self._out_shape(a.shape, axes, kept, keepdims)
        n_out, n_red = _size(out_shape), _size(a.shape[d] for d in axes)
        if n_red == 0 and n_out:
            raise ValueError(f"cuda backend: {name} of an empty axis (shape {tuple(a.shape)}, "
                             f"axis {axis}) has no identity")
        out = self._empty(out_shape, a.dtype)
        arg = self._empty(out_shape, np.int64)
        if n_out == 0:
            return out, arg
        args = (self._flat(a), self._flat(out), self._flat(arg), n_out, n_red,
                kshape, kstr, rshape, rstr)
        if self._use_block(n_out, n_red):
            _launch(("best_block", kind, a.dtype.str, REDUCE_THREADS),
                    *self._block_launch(n_out), *args)
        else:
            _launch(("best_serial", kind), *_grid1(n_out), *args)
        return out, arg

    def max(self, a, axis=None, keepdims=False):
        return self._best("max", a, axis, keepdims, "max")[0]

    def min(self, a, axis=None, keepdims=False):
        return self._best("min", a, axis, keepdims, "min")[0]

    def argmax(self, a, axis, keepdims=False):
        return self._best("max", a, axis, keepdims, "argmax")[1]

    # ---- layout
    def reshape(self, a, shape):
        a = self._dev(a)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if shape.count(-1) > 1:
            raise ValueError("cuda backend: reshape accepts at most one -1")
        if -1 in shape:
            known = _size(s for s in shape if s != -1)
            if known == 0 or a.size % known:
                raise ValueError(f"cuda backend: cannot reshape {tuple(a.shape)} into {shape}")
            shape = tuple(a.size // known if s == -1 else s for s in shape)
        if _size(shape) != a.size:
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
        cs = _c_strides(a.shape)
        return self._view_copy(a, 0, tuple(a.shape[d] for d in axes), tuple(cs[d] for d in axes))

    def broadcast_to(self, a, shape):
        a = self._dev(a)
        shape = tuple(int(s) for s in shape)
        if tuple(np.broadcast_shapes(a.shape, shape)) != shape:
            raise ValueError(f"cuda backend: cannot broadcast {tuple(a.shape)} to {shape}")
        if tuple(a.shape) == shape:
            return a
        return self._view_copy(a, 0, shape, _bcast_strides(a.shape, shape))

    def copy(self, a):
        a = self._dev(a)
        out = self._empty(a.shape, a.dtype)
        if a.size:
            _launch(("cast",), *_grid1(a.size), self._flat(a), self._flat(out), a.size)
        return out

    def cat(self, arrays, axis):
        arrays = [self._dev(x) for x in arrays]
        ndim = arrays[0].ndim
        axis = _axes(axis, ndim)[0]
        dtype = np.result_type(*[x.dtype for x in arrays])
        shape = list(arrays[0].shape)
        shape[axis] = sum(x.shape[axis] for x in arrays)
        out = self._empty(tuple(shape), dtype)
        ostr = _c_strides(out.shape)
        pos = 0
        for x in arrays:
            self._copy_into(x, 0, x.shape, _c_strides(x.shape), out, pos * ostr[axis], ostr)
            pos += x.shape[axis]
        return out

    def split(self, a, sizes, axis):
        a = self._dev(a)
        axis = _axes(axis, a.ndim)[0]
        cs = _c_strides(a.shape)
        pieces, pos = [], 0
        for s in sizes:
            shape = tuple(int(s) if d == axis else n for d, n in enumerate(a.shape))
            pieces.append(self._view_copy(a, pos * cs[axis], shape, cs))
            pos += int(s)
        return tuple(pieces)

    def diagonal(self, a, axis1, axis2):
        a = self._dev(a)
        axis1, axis2 = int(axis1) % a.ndim, int(axis2) % a.ndim
        cs = _c_strides(a.shape)
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
        os_ = _c_strides(shape)
        dstr = tuple(os_[r] for r in rest) + (os_[axis1] + os_[axis2],)
        self._copy_into(a, 0, a.shape, _c_strides(a.shape), out, 0, dstr)
        return out

    # ---- indexing
    def _host_key(self, key):
        """The key with device index arrays copied to the host (index data only)."""
        parts = key if isinstance(key, tuple) else (key,)
        host = []
        for k in parts:
            if getattr(k, "__cuda_ndarray__", False):
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
        for d, (n, stride) in enumerate(zip(shape, _c_strides(shape))):
            axis = np.arange(n, dtype=np.int64) * stride
            grid = np.broadcast_to(axis.reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1)), shape)
            total = total + grid[key]
        return np.asarray(total, dtype=np.int64)

    def getitem(self, a, key):
        a = self._dev(a)
        key = self._host_key(key)
        if all(_is_basic(k) for k in key):
            offset, shape, strides = _basic_view(tuple(a.shape), key)
            return self._view_copy(a, offset, shape, strides)
        pos = self._flat_positions(a.shape, key)
        out = self._empty(pos.shape, a.dtype)
        if pos.size:
            _launch(("gather_flat",), *_grid1(pos.size), self._flat(a),
                    _to_device(pos.reshape(-1)), self._flat(out), pos.size)
        return out

    def index_put_add(self, shape, key, values):
        shape = tuple(int(s) for s in shape)
        key = self._host_key(key)
        values = self._dev(values)
        out = self.full(shape, 0, values.dtype)
        if all(_is_basic(k) for k in key):
            offset, vshape, vstrides = _basic_view(shape, key)
            self._copy_into(values, 0, vshape, _bcast_strides(values.shape, vshape),
                            out, offset, vstrides)
            return out
        pos = self._flat_positions(shape, key)
        if pos.size:
            vals = self.broadcast_to(values, pos.shape)
            _launch(("scatter_add_flat",), *_grid1(pos.size), self._flat(out),
                    _to_device(pos.reshape(-1)), self._flat(vals), pos.size)
        return out

    def gather(self, a, axis, index):
        a, index = self._dev(a), self._dev(index)
        if a.ndim == 0:  # 0-d: the same as 1-d of length 1
            return self.reshape(self.gather(self.reshape(a, (1,)), 0, self.reshape(index, (1,))), ())
        axis = _axes(axis, a.ndim)[0]
        out = self._empty(index.shape, a.dtype)
        n = index.size
        if n:
            cs = _c_strides(a.shape)
            sstr = tuple(0 if d == axis else cs[d] for d in range(a.ndim))
            _launch(("gather_axis",), *_grid1(n), self._flat(a), self._flat(index),
                    self._flat(out), n, tuple(index.shape), sstr, cs[axis], a.shape[axis])
        return out

    def scatter_add(self, shape, axis, index, src):
        index, src = self._dev(index), self._dev(src)
        shape = tuple(int(s) for s in shape)
        if not shape:
            return self.reshape(self.scatter_add((1,), 0, self.reshape(index, (1,)),
                                                 self.reshape(src, (1,))), ())
        axis = _axes(axis, len(shape))[0]
        out = self.full(shape, 0, src.dtype)
        n = index.size
        if n:
            cs = _c_strides(shape)
            ostr = tuple(0 if d == axis else cs[d] for d in range(len(shape)))
            sstr = _c_strides(src.shape)
            _launch(("scatter_axis",), *_grid1(n), self._flat(out), self._flat(index),
                    self._flat(src), n, tuple(index.shape), ostr, cs[axis], shape[axis], sstr)
        return out

    def take_rows(self, table, indices):
        table, indices = self._dev(table), self._dev(indices)
        row = _size(table.shape[1:])
        out = self._empty(tuple(indices.shape) + tuple(table.shape[1:]), table.dtype)
        n = out.size
        if n:
            _launch(("take_rows",), *_grid1(n), self._flat(table), self._flat(indices),
                    self._flat(out), n, row, table.shape[0])
        return out

    def scatter_rows_add(self, num_rows, indices, src):
        indices, src = self._dev(indices), self._dev(src)
        row_shape = tuple(src.shape[indices.ndim:])
        out = self.full((int(num_rows),) + row_shape, 0, src.dtype)
        n = _size(indices.shape) * _size(row_shape)
        if n:
            _launch(("scatter_rows",), *_grid1(n), self._flat(out), self._flat(indices),
                    self._flat(src), n, _size(row_shape), int(num_rows))
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
        nb = _size(batch)
        sa = tuple(s * n * k for s in _bcast_strides(a.shape[:-2], batch))
        sb = tuple(s * k * m for s in _bcast_strides(b.shape[:-2], batch))
        bshape, (sa, sb) = _collapse(batch, sa, sb) if batch else ((1,), ((0,), (0,)))
        return a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze

    def _tile_grid(self, n, m, nb):
        tiles_n, tiles_m = -(-n // TILE), -(-m // TILE)
        return ((min(tiles_m, MAX_TILE_BLOCKS), min(tiles_n, MAX_TILE_BLOCKS),
                 min(nb, MAX_TILE_BLOCKS)), (TILE, TILE))

    def matmul(self, a, b):
        a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze = self._batched(a, b, "matmul")
        dtype = np.result_type(a.dtype, b.dtype)
        out = self._empty(batch + (n, m), dtype)
        if out.size:
            _launch(("matmul", dtype.str, TILE), *self._tile_grid(n, m, nb), self._flat(a),
                    self._flat(b), self._flat(out), n, k, m, nb, bshape, sa, sb, dtype.type(0))
        if squeeze:
            out = self.reshape(out, tuple(s for d, s in enumerate(out.shape)
                                          if d - out.ndim not in squeeze))
        return out

    def tropical_matmul(self, a, b, semiring):
        if semiring not in _SEMIRING_DEV:
            raise ValueError(f"cuda backend: unknown semiring {semiring!r}; expected one of {SEMIRINGS}")
        a, b, batch, n, k, m, nb, bshape, sa, sb, squeeze = self._batched(a, b, "tropical_matmul")
        dtype = np.result_type(a.dtype, b.dtype)
        out = self._empty(batch + (n, m), dtype)
        arg = self._empty(batch + (n, m), np.int64)
        if out.size:
            identity = dtype.type(_SEMIRING_DEV[semiring][2])
            _launch(("tropical", semiring, dtype.str, TILE), *self._tile_grid(n, m, nb),
                    self._flat(a), self._flat(b), self._flat(out), self._flat(arg),
                    n, k, m, nb, bshape, sa, sb, identity)
        if squeeze:
            keep = tuple(s for d, s in enumerate(out.shape) if d - out.ndim not in squeeze)
            out, arg = self.reshape(out, keep), self.reshape(arg, keep)
        return out, arg

    # ---- convolution and pooling
    def im2col(self, x, kh, kw, stride, padding):
        x = self._dev(x)
        n, c, h, w = x.shape
        oh = (h + 2 * padding - kh) // stride + 1
        ow = (w + 2 * padding - kw) // stride + 1
        cols = self._empty((n, c * kh * kw, oh * ow), x.dtype)
        if cols.size:
            _launch(("im2col",), *_grid1(cols.size), self._flat(x), self._flat(cols), cols.size,
                    c, h, w, int(kh), int(kw), int(stride), int(padding), oh, ow)
        return cols

    def col2im(self, cols, x_shape, kh, kw, stride, padding):
        cols = self._dev(cols)
        n, c, h, w = (int(s) for s in x_shape)
        oh = (h + 2 * padding - kh) // stride + 1
        ow = (w + 2 * padding - kw) // stride + 1
        x = self._empty((n, c, h, w), cols.dtype)
        if x.size:
            _launch(("col2im",), *_grid1(x.size), self._flat(cols), self._flat(x), x.size,
                    c, h, w, int(kh), int(kw), int(stride), int(padding), oh, ow,
                    cols.dtype.type(0))
        return x

    def max_pool2d(self, x, kernel, stride):
        x = self._dev(x)
        n, c, h, w = x.shape
        kernel, stride = int(kernel), int(stride)
        oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        out = self._empty((n, c, oh, ow), x.dtype)
        idx = self._empty((n, c, oh, ow), np.int64)
        if out.size:
            _launch(("max_pool",), *_grid1(out.size), self._flat(x), self._flat(out),
                    self._flat(idx), out.size, h, w, kernel, stride, oh, ow)
        return out, idx

    # ---- fused rows
    def _rows(self, a, axis, log):
        a = self._dev(a)
        if a.ndim == 0:
            a2 = self._rows(self.reshape(a, (1,)), 0, log)
            return self.reshape(a2, ())
        axis = _axes(axis, a.ndim)[0]
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
        a = self.astype(a, dtype)
        out = self._empty(a.shape, dtype)
        n = a.shape[axis]
        kept, kshape, kstr, _, _ = self._split_axes(a.shape, (axis,))
        n_rows = _size(kept)
        if n_rows == 0 or n == 0:
            return out
        rstride = _c_strides(a.shape)[axis]
        args = (self._flat(a), self._flat(out), n_rows, n, kshape, kstr, rstride, dtype.type(0))
        if self._use_block(n_rows, n):
            _launch(("softmax_block", int(log), dtype.str, REDUCE_THREADS),
                    *self._block_launch(n_rows), *args)
        else:
            _launch(("softmax_serial", int(log)), *_grid1(n_rows), *args)
        return out

    def softmax(self, a, axis):
        return self._rows(a, axis, False)

    def log_softmax(self, a, axis):
        return self._rows(a, axis, True)


# ---- compile check: lower recorded kernels with the real CUDA target (no GPU needed) ----
def check_compile(path, cc=(7, 5)):
    """Type-check and lower every (kernel, signature) pickled in `path` for the CUDA
    target (to LLVM IR: no driver, GPU or NVVM needed); returns the failures."""
    import pickle
    import types
    from numba.cuda import dispatcher
    from numba.cuda.compiler import compile_cuda
    # device functions ask the current device for its compute capability: answer
    # without a driver, so that this runs on machines without a GPU
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    with open(path, "rb") as f:
        launched = pickle.load(f)
    failures = []
    for key, argtypes in sorted(launched, key=repr):
        try:
            compile_cuda(kernel_function(key), None, argtypes, cc=cc)
        except Exception as e:  # report every kernel, not just the first
            failures.append(f"{key} {argtypes}: {type(e).__name__}: {str(e).splitlines()[0]}")
    return failures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-compile":
        if SIM:
            sys.exit("--check-compile needs the real CUDA target: unset NUMBA_ENABLE_CUDASIM")
        problems = check_compile(sys.argv[2])
        print("\n".join(problems) if problems else "all kernels lower for the CUDA target")
        sys.exit(1 if problems else 0)
    sys.exit("usage: python -m backends.numba_cuda --check-compile LAUNCHED.pkl")
