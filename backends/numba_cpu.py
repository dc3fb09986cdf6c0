"""The Numba-CPU backend: the NumPy backend with its slow kernels compiled.

Everything already at BLAS or NumPy speed (matmul, reductions, layout, most
elementwise math) is inherited from `NumpyBackend`. The kernels where NumPy is
slow or wasteful are overridden with `numba.njit(parallel=True, cache=True)`
loops: tropical matmul with argmax, scatter-add (the backward of gather,
embedding and fancy indexing), im2col / col2im, a direct stride-1 convolution
(forward and backward, without the im2col matrix), max-pool with indices,
softmax / log-softmax rows and the fused sigmoid / SiLU.

Results equal the NumPy backend's: the same float operations in the same order
wherever NumPy's order is defined (tropical products, scatter-adds, col2im and
max-pool are bitwise identical, argmax ties go to the lowest index); rows
computed with `exp` differ from NumPy's SIMD `exp` by an ulp or so. Only sums
whose order NumPy leaves to BLAS anyway may be reassociated or contracted into
FMAs (the direct convolution, the tropical contraction's max / min reductions,
which are exact in any order); no kernel assumes "no NaN" or "no inf", and every
kernel gives the same bits on any number of threads.

Threads: every kernel runs on `numba.get_num_threads()` threads, so
`NUMBA_NUM_THREADS` and `numba.set_num_threads` are respected (small inputs run
on the calling thread only). Importing this module sets OMP_WAIT_POLICY=PASSIVE
unless it is already set (see below). Compiled code
is cached on disk (`cache=True`), so only the first call on a machine pays the
compile time (see docs/benchmarks.md).

Wrappers make their inputs C-contiguous (a copy only for views such as
transposes), so each kernel compiles for one layout per dtype.
"""
import math
import os
import threading

# Idle OpenMP workers (Numba's default threading layer) spin after every
# parallel loop, and OpenBLAS's threads spin after every matmul. On a machine
# with few cores the two pools then steal each other's cores: measured on the
# 2-core benchmark machine, conv2d forward+backward ran 10-20x slower. Sleeping
# OpenMP workers avoid it. This must be set before Numba starts its pool; a
# value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import numba  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.extending import overload  # noqa: E402

from .base import (check_axis_indexing, check_index, check_index_dtype, check_key,  # noqa: E402
                   check_rows_indexing, check_targets, pair)
from .numpy_backend import NumpyBackend, conv_out  # noqa: E402
from .semiring import BUILTIN as BUILTIN_SEMIRINGS, get_semiring  # noqa: E402

# nogil: kernels release the GIL, so Python threads can run them concurrently
_PARALLEL = dict(parallel=True, cache=True, nogil=True)

# ===================================================================== tropical
# Semiring codes. Each semiring has its own top-level kernel that passes its code
# as a module constant; Numba types such an argument as a literal, so every
# helper below is compiled for one semiring and the branches on it fold away:
# the inner loops are branch-free. (Plain njit helpers, which LLVM inlines,
# rather than Numba-IR inlining: the same loops for about half the compile time.)
_MAX_PLUS, _MIN_PLUS, _MAX_MUL = 0, 1, 2

# Tile sizes of the tropical product: a task owns _ROWS output rows x _COLS
# columns; the reduction runs in panels of _DEPTH so that the (_DEPTH, _COLS)
# slab of b it streams stays in L2 while all _ROWS rows reuse it.
_ROWS, _COLS, _DEPTH = 16, 512, 128


@njit
def _otimes(mode, x, y):
    if mode == _MAX_MUL:
        return x * y
    return x + y


@njit
def _wins(mode, v, best):
    # strict: an equal later candidate never replaces the earlier one (ties -> lowest l)
    if mode == _MIN_PLUS:
        return v < best
    return v > best


@njit
def _relax(mode, v, cv, gv, l):
    # the running best (cv, gv) after candidate v of step l: a select, not a branch
    w = _wins(mode, v, cv)
    return (v if w else cv), (l if w else gv)


@njit
def _micro(mode, c0, g0, c1, g1, b0, b1, b2, b3,
           x00, x01, x02, x03, x10, x11, x12, x13, l):
    # The micro-kernel: two output rows x four reduction steps per pass over the
    # columns. The running best value / index live in locals (registers) across
    # the four steps and the four b rows are loaded once for both output rows,
    # so per 16 lanes there is one load+store of c and g per four steps. The
    # selects (not if-statements) let LLVM vectorise the j loop.
    l0 = np.int32(l)
    l1 = np.int32(l + 1)
    l2 = np.int32(l + 2)
    l3 = np.int32(l + 3)
    for j in range(c0.shape[0]):
        y0 = b0[j]
        y1 = b1[j]
        y2 = b2[j]
        y3 = b3[j]
        cv, gv = _relax(mode, _otimes(mode, x00, y0), c0[j], g0[j], l0)
        cv, gv = _relax(mode, _otimes(mode, x01, y1), cv, gv, l1)
        cv, gv = _relax(mode, _otimes(mode, x02, y2), cv, gv, l2)
        cv, gv = _relax(mode, _otimes(mode, x03, y3), cv, gv, l3)
        c0[j] = cv
        g0[j] = gv
        cv, gv = _relax(mode, _otimes(mode, x10, y0), c1[j], g1[j], l0)
        cv, gv = _relax(mode, _otimes(mode, x11, y1), cv, gv, l1)
        cv, gv = _relax(mode, _otimes(mode, x12, y2), cv, gv, l2)
        cv, gv = _relax(mode, _otimes(mode, x13, y3), cv, gv, l3)
        c1[j] = cv
        g1[j] = gv


@njit
def _step(mode, c0, g0, brow, x, l):
    # one output row x one reduction step (remainders of the micro-kernel)
    li = np.int32(l)
    for j in range(c0.shape[0]):
        v = _otimes(mode, x, brow[j])
        cv = c0[j]
        w = _wins(mode, v, cv)
        c0[j] = v if w else cv
        g0[j] = li if w else g0[j]


@njit
def _tropical_tile(mode, a, b, c, arg, i0, i1, j0, j1):
    """c, arg[i0:i1, j0:j1] for 2-D a (n, k), b (k, m); the running argmax is kept
    in an int32 tile (twice the lanes per vector of int64) and widened at the end."""
    k = a.shape[1]
    g = np.empty((i1 - i0, j1 - j0), np.int32)
    for i in range(i0, i1):  # step l = 0 initialises (even against an identity-valued row)
        x = a[i, 0]
        for j in range(j0, j1):
            c[i, j] = _otimes(mode, x, b[0, j])
            g[i - i0, j - j0] = 0
    for p0 in range(1, k, _DEPTH):
        p1 = min(k, p0 + _DEPTH)
        for i in range(i0, i1, 2):
            c0 = c[i, j0:j1]
            g0 = g[i - i0]
            l = p0
            if i + 1 < i1:
                c1 = c[i + 1, j0:j1]
                g1 = g[i + 1 - i0]
                while l + 4 <= p1:
                    _micro(mode, c0, g0, c1, g1,
                           b[l, j0:j1], b[l + 1, j0:j1], b[l + 2, j0:j1], b[l + 3, j0:j1],
                           a[i, l], a[i, l + 1], a[i, l + 2], a[i, l + 3],
                           a[i + 1, l], a[i + 1, l + 1], a[i + 1, l + 2], a[i + 1, l + 3], l)
                    l += 4
                for r in range(l, p1):
                    _step(mode, c1, g1, b[r, j0:j1], a[i + 1, r], r)
            for r in range(l, p1):
                _step(mode, c0, g0, b[r, j0:j1], a[i, r], r)
    if arg.shape[0] == 0:   # values only (tropical_contract): no winners kept
        return
    for i in range(i0, i1):  # widen to int64 while the tile is still in cache
        for j in range(j0, j1):
            arg[i, j] = g[i - i0, j - j0]


@njit(inline="always")
def _tropical_batched(mode, a, b, ia, ib, c, arg):
    # a (A, n, k), b (B, k, m); output entry t reads a[ia[t]] and b[ib[t]]
    nb, n, m = c.shape
    row_tiles = (n + _ROWS - 1) // _ROWS
    col_tiles = (m + _COLS - 1) // _COLS
    per_batch = row_tiles * col_tiles
    for task in prange(nb * per_batch):
        t = task // per_batch
        r = task % per_batch
        i0 = (r // col_tiles) * _ROWS
        j0 = (r % col_tiles) * _COLS
        _tropical_tile(mode, a[ia[t]], b[ib[t]], c[t], arg[t],
                       i0, min(n, i0 + _ROWS), j0, min(m, j0 + _COLS))


@njit(**_PARALLEL)
def _tropical_max_plus(a, b, ia, ib, c, arg):
    _tropical_batched(_MAX_PLUS, a, b, ia, ib, c, arg)


@njit(**_PARALLEL)
def _tropical_min_plus(a, b, ia, ib, c, arg):
    _tropical_batched(_MIN_PLUS, a, b, ia, ib, c, arg)


@njit(**_PARALLEL)
def _tropical_max_mul(a, b, ia, ib, c, arg):
    _tropical_batched(_MAX_MUL, a, b, ia, ib, c, arg)


# semiring name -> (the Semiring, its compiled kernel)
_TROPICAL = {"max_plus": (BUILTIN_SEMIRINGS["max_plus"], _tropical_max_plus),
             "min_plus": (BUILTIN_SEMIRINGS["min_plus"], _tropical_min_plus),
             "max_mul": (BUILTIN_SEMIRINGS["max_mul"], _tropical_max_mul)}


def _may_give_nan(a, b, semiring):
    """True when some candidate a[i, l] ⊗ b[l, j] can be NaN: a NaN input, or +inf and
    -inf added (max_plus, min_plus), or 0 times inf (max_mul)."""
    if np.isnan(a).any() or np.isnan(b).any():
        return True
    if semiring.times == "add":
        return ((np.isposinf(a).any() and np.isneginf(b).any())
                or (np.isneginf(a).any() and np.isposinf(b).any()))
    return ((np.isinf(a).any() and (b == 0).any()) or ((a == 0).any() and np.isinf(b).any()))


# ---- one pairwise step of a tropical contraction, values only, permutations fused:
# c[b, l, r] = ⊕_k a[oa_b[b] + oa_l[l] + oa_k[k]] ⊗ b[ob_b[b] + ob_k[k] + ob_r[r]], where
# the o* tables are the flat offsets of each (batch, left, contracted, right) index in
# the operands as they are stored: no transposed copies, no winners kept. A task owns
# one batch index and a run of rows; it gathers b's (k, r) slab transposed, so the
# reduction over k (innermost) reads contiguous memory. Only reassociation is allowed
# (the order of a max does not change it; infinities stay exact); callers never pass
# NaN candidates (those go to NumPy's kernel, which defines the NaN rule).
_REASSOC = dict(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "nsz"})


@njit(inline="always")
def _contract(mode, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    nb, nl, nk, nr = oa_b.shape[0], oa_l.shape[0], oa_k.shape[0], ob_r.shape[0]
    total = nb * nl
    for task in prange((total + rows - 1) // rows):
        slab = np.empty((nr, nk), c.dtype)
        x = np.empty(nk, c.dtype)
        current = -1
        for r in range(task * rows, min(total, (task + 1) * rows)):
            ib = r // nl
            if ib != current:   # b's (k, r) slab of this batch index, transposed
                current = ib
                for k in range(nk):
                    row = ob_b[ib] + ob_k[k]
                    for j in range(nr):
                        slab[j, k] = b[row + ob_r[j]]
            base = oa_b[ib] + oa_l[r - ib * nl]
            for k in range(nk):
                x[k] = a[base + oa_k[k]]
            out = r * nr
            for j in range(nr):
                m = _otimes(mode, x[0], slab[j, 0])
                for k in range(1, nk):
                    v = _otimes(mode, x[k], slab[j, k])
                    if mode == _MIN_PLUS:
                        m = min(m, v)
                    else:
                        m = max(m, v)
                c[out + j] = m


_LANES = 16


@njit(inline="always")
def _dot(mode, a, bt, c):
    # c[t, l, r] = ⊕_k a[t, l, k] ⊗ bt[t, r, k]: both sides contiguous along k, the
    # reduction innermost (vectorised: only reassociation is allowed, as above)
    # (callers pass nk >= _LANES). _LANES running results per output entry, an
    # elementwise ⊕ of two short vectors per step: that LLVM turns into SIMD, which it
    # does not for a one-accumulator reduction over a select
    nb, nl, nk = a.shape
    nr = bt.shape[1]
    body = nk - nk % _LANES
    for task in prange(nb * nl):
        t = task // nl
        l = task - t * nl
        x = a[t, l]
        acc = np.empty(_LANES, c.dtype)
        for r in range(nr):
            y = bt[t, r]
            for j in range(_LANES):
                acc[j] = _otimes(mode, x[j], y[j])
            for k0 in range(_LANES, body, _LANES):
                for j in range(_LANES):
                    v = _otimes(mode, x[k0 + j], y[k0 + j])
                    if mode == _MIN_PLUS:
                        acc[j] = min(acc[j], v)
                    else:
                        acc[j] = max(acc[j], v)
            m = acc[0]
            for j in range(1, _LANES):
                m = min(m, acc[j]) if mode == _MIN_PLUS else max(m, acc[j])
            for k in range(body, nk):
                v = _otimes(mode, x[k], y[k])
                m = min(m, v) if mode == _MIN_PLUS else max(m, v)
            c[t, l, r] = m


@njit(**_REASSOC)
def _dot_max_plus(a, bt, c):
    _dot(_MAX_PLUS, a, bt, c)


@njit(**_REASSOC)
def _dot_min_plus(a, bt, c):
    _dot(_MIN_PLUS, a, bt, c)


@njit(**_REASSOC)
def _dot_max_mul(a, bt, c):
    _dot(_MAX_MUL, a, bt, c)


_DOT = {"max_plus": _dot_max_plus, "min_plus": _dot_min_plus, "max_mul": _dot_max_mul}


@njit(**_REASSOC)
def _contract_max_plus(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MAX_PLUS, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


@njit(**_REASSOC)
def _contract_min_plus(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MIN_PLUS, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


@njit(**_REASSOC)
def _contract_max_mul(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MAX_MUL, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


_SERIAL = dict(cache=True, nogil=True, fastmath={"reassoc", "nsz"})


@njit(**_SERIAL)
def _contract_max_plus_serial(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MAX_PLUS, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


@njit(**_SERIAL)
def _contract_min_plus_serial(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MIN_PLUS, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


@njit(**_SERIAL)
def _contract_max_mul_serial(a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c):
    _contract(_MAX_MUL, a, b, oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows, c)


# name -> (parallel kernel, serial kernel for small steps: no thread-pool round trip)
_CONTRACT = {"max_plus": (_contract_max_plus, _contract_max_plus_serial),
             "min_plus": (_contract_min_plus, _contract_min_plus_serial),
             "max_mul": (_contract_max_mul, _contract_max_mul_serial)}


@njit(cache=True, nogil=True)
def _special_values(x):
    """(any NaN, any +inf, any -inf, any zero) of a flat array, in one pass."""
    nan = pos = neg = zero = False
    for v in x:
        if v != v:
            nan = True
        elif v == np.inf:
            pos = True
        elif v == -np.inf:
            neg = True
        elif v == 0:
            zero = True
    return nan, pos, neg, zero


def _may_give_nan_flat(a, b, semiring):
    """_may_give_nan for C-contiguous float arrays, one compiled pass over each."""
    na, pa, ma, za = _special_values(a.reshape(-1))
    nb, pb, mb, zb = _special_values(b.reshape(-1))
    if na or nb:
        return True
    if semiring.times == "add":
        return (pa and mb) or (ma and pb)
    return ((pa or ma) and zb) or (za and (pb or mb))


def contract_kernels_ready(dtype):
    """True when tropical_contract's kernels are compiled for `dtype` in this process
    (otherwise the first call compiles them, or loads them from Numba's cache)."""
    sig = numba.typeof(np.empty(1, dtype))
    return all(any(s[0] == sig for s in k.signatures) for pair in _CONTRACT.values()
               for k in pair[:1])


def _group_offsets(shape, perm, shape3):
    """The flat offsets, in a C-contiguous array of `shape`, of each index of the three
    groups of axes of a.transpose(perm).reshape(shape3)."""
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    order = list(range(len(shape))) if perm is None else list(perm)
    tables, pos = [], 0
    for size in shape3:
        off = np.zeros(1, np.int64)
        count = 1
        while count < size:   # size-1 axes left over add nothing to any offset
            if pos == len(order):
                return None   # the groups split an axis: not a pure permutation + reshape
            axis = order[pos]
            off = (off[:, None] + np.arange(shape[axis], dtype=np.int64) * strides[axis]).reshape(-1)
            count *= shape[axis]
            pos += 1
        if count != size:
            return None
        tables.append(off)
    return tables


_OFFSETS = {}


def _offsets(key, a_shape, perm_a, shape_a3, b_shape, perm_b, shape_b3):
    tables = _OFFSETS.get(key)
    if tables is None:
        if len(_OFFSETS) > 4096:
            _OFFSETS.clear()
        oa = _group_offsets(a_shape, perm_a, shape_a3)
        ob = _group_offsets(b_shape, perm_b, shape_b3)
        if oa is None or ob is None:
            return None
        total, nk, nr = oa[0].size * oa[1].size, oa[2].size, ob[2].size
        # rows (of the flattened batch x left) per task: about 2^15 multiply-adds each,
        # and at least 4 tasks per thread
        rows = max(1, min(total, (1 << 15) // max(1, nk * nr)))
        while rows > 1 and (total + rows - 1) // rows < 4 * numba.get_num_threads():
            rows //= 2
        tables = _OFFSETS[key] = (oa[0], oa[1], oa[2], ob[0], ob[1], ob[2], rows)
    return tables


# ---- permuted copies of large tensors: a tensor network's intermediates have dozens
# of axes of size 2, where NumPy's copy of a transposed view runs its inner loop over
# one size-2 axis (seconds for 2^27 entries). The compiled copy walks tiles instead:
# the trailing input axes (a contiguous run of at least _RUN entries to read) times
# the trailing output axes (a contiguous run to write), one tile per task, in cache.
_RUN = 128
_PERMUTE_MIN = 1 << 16


@njit(**_PARALLEL)
def _permute_kernel(src, dst, oi, oo, wi, wo, ri, ro, ci, co):
    for t in prange(oi.shape[0]):
        for w in range(wi.shape[0]):
            bi = oi[t] + wi[w]
            bo = oo[t] + wo[w]
            for r in range(ri.shape[0]):
                i = bi + ri[r]
                o = bo + ro[r]
                for c in range(ci.shape[0]):
                    dst[o + co[c]] = src[i + ci[c]]


_PERMUTE_TABLES = {}


def _permute_tables(shape, perm):
    """Offset tables (outer, write-run-only, read-run-only, common axes; input and
    output offsets of each) of the copy dst = src.transpose(perm), src C-contiguous."""
    key = (shape, perm)
    tables = _PERMUTE_TABLES.get(key)
    if tables is not None:
        return tables
    nd = len(shape)
    in_strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        in_strides[d] = in_strides[d + 1] * shape[d + 1]
    out_shape = [shape[p] for p in perm]
    out_strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        out_strides[d] = out_strides[d + 1] * out_shape[d + 1]
    out_stride = {perm[i]: out_strides[i] for i in range(nd)}

    def trailing(axes):
        run, size = [], 1
        for ax in reversed(axes):
            if shape[ax] == 1:
                continue
            if size >= _RUN:
                break
            run.append(ax)
            size *= shape[ax]
        return set(run)

    t_in, t_out = trailing(list(range(nd))), trailing(list(perm))
    groups = ([ax for ax in perm if ax not in t_in | t_out and shape[ax] > 1],
              [ax for ax in perm if ax in t_out - t_in],
              [ax for ax in range(nd) if ax in t_in - t_out],
              [ax for ax in range(nd) if ax in t_in & t_out])
    tables = []
    for axes in groups:
        oi, oo = np.zeros(1, np.int64), np.zeros(1, np.int64)
        for ax in axes:
            r = np.arange(shape[ax], dtype=np.int64)
            oi = (oi[:, None] + r * in_strides[ax]).reshape(-1)
            oo = (oo[:, None] + r * out_stride[ax]).reshape(-1)
        tables += [oi, oo]
    if len(_PERMUTE_TABLES) > 256:
        _PERMUTE_TABLES.clear()
    _PERMUTE_TABLES[key] = tables = tuple(tables)
    return tables


def _contiguous(a, dtype, perm=None):
    """a.transpose(perm) (perm None: a) as a C-contiguous array of `dtype`; a large
    permuted view of a contiguous buffer is copied by the tiled compiled kernel."""
    v = a if perm is None else a.transpose(perm)
    if v.flags.c_contiguous and v.dtype == dtype and v.flags.writeable:
        return v
    if v.size < _PERMUTE_MIN or v.dtype != dtype or dtype not in _FLOATS:
        return _c(v, dtype)
    # the buffer behind the view: its axes ordered by decreasing stride
    order = sorted(range(v.ndim), key=lambda d: (-v.strides[d], -v.shape[d]))
    src = v.transpose(order)
    if not src.flags.c_contiguous:
        return _c(v, dtype)
    inverse = [0] * v.ndim
    for i, d in enumerate(order):
        inverse[d] = i
    tables = _permute_tables(src.shape, tuple(inverse))
    out = np.empty(v.shape, dtype)
    _permute_kernel(src.reshape(-1), out.reshape(-1), *tables)
    return out


def _batch_right_contracted(perm_b, b_shape, shape_b3):
    """The axis order (batch, right, contracted) of b, from perm_b's order (batch,
    contracted, right) and the group sizes shape_b3; None if a group splits an axis."""
    order = list(range(len(b_shape))) if perm_b is None else list(perm_b)
    groups, pos = [], 0
    for size in shape_b3:
        axes, count = [], 1
        while count < size and pos < len(order):
            axes.append(order[pos])
            count *= b_shape[order[pos]]
            pos += 1
        if count != size:
            return None
        groups.append(axes)
    batch, contracted, right = groups
    return tuple(batch + right + contracted + order[pos:])


def _batch_map(batch_shape, out_batch):
    """For each entry of the flattened broadcast batch, the flat index into an
    operand with batch shape `batch_shape` (no copy of the operand)."""
    ids = np.arange(int(np.prod(batch_shape, dtype=np.int64)), dtype=np.int64)
    ids = ids.reshape(batch_shape)
    return np.array(np.broadcast_to(ids, out_batch)).reshape(-1)


# ====================================================================== scatter
@njit(**_PARALLEL)
def _scatter_add_kernel(out, index, src, bad):
    # out (P, A, Q), index and src (P, J, Q): out[p, index[p, j, q], q] += src[p, j, q].
    # A task owns one p and a block of q, so no two tasks write the same element,
    # and each element receives its terms in increasing j, as numpy.add.at does.
    # An index outside [0, A) is skipped and flagged in bad[task].
    npre, nj, nq = index.shape
    na = out.shape[1]
    blocks = (nq + 63) // 64
    for task in prange(npre * blocks):
        p = task // blocks
        q0 = (task % blocks) * 64
        q1 = min(nq, q0 + 64)
        for j in range(nj):
            for q in range(q0, q1):
                a = index[p, j, q]
                if 0 <= a < na:
                    out[p, a, q] += src[p, j, q]
                else:
                    bad[task] = True


@njit(**_PARALLEL)
def _scatter_rows_kernel(out, index, src, parts, bad):
    # out (R, D), index (N,), src (N, D): out[index[i]] += src[i].
    # Each thread owns a contiguous range of output rows and scans all indices,
    # skipping the ones it does not own: no atomics, no private copies of the
    # table, and every row receives its terms in index order (as numpy.add.at).
    # An index outside [0, R) belongs to no thread: it is flagged in bad[part].
    nrows, width = out.shape
    for part in prange(parts):
        r0 = part * nrows // parts
        r1 = (part + 1) * nrows // parts
        for i in range(index.shape[0]):
            r = index[i]
            if r0 <= r < r1:
                for d in range(width):
                    out[r, d] += src[i, d]
            elif r < 0 or r >= nrows:
                bad[part] = True


def _plain_slice(k):
    return isinstance(k, slice) and k == slice(None)


def _int_array(k):
    return isinstance(k, np.ndarray) and k.dtype.kind in "iu"


# ================================================================ conv and pool
@njit(**_PARALLEL)
def _im2col_kernel(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    for task in prange(n * c):  # one (image, channel) plane per task
        b = task // c
        ch = task % c
        for i in range(kh):
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                for y in range(oh):
                    iy = y * sh + i * dh - ph
                    inside = 0 <= iy < h
                    for xo in range(ow):
                        ix = xo * sw + j * dw - pw
                        if inside and 0 <= ix < w:
                            cols[b, row, y * ow + xo] = x[b, ch, iy, ix]
                        else:
                            cols[b, row, y * ow + xo] = 0


@njit(**_PARALLEL)
def _col2im_kernel(cols, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    # out must be zeros. Each task owns one output plane; kernel offsets are
    # summed in (i, j) order, the NumPy backend's order, so results are identical.
    n, c, h, w = out.shape
    for task in prange(n * c):
        b = task // c
        ch = task % c
        for i in range(kh):
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                for y in range(oh):
                    iy = y * sh + i * dh - ph
                    if 0 <= iy < h:
                        for xo in range(ow):
                            ix = xo * sw + j * dw - pw
                            if 0 <= ix < w:
                                out[b, ch, iy, ix] += cols[b, row, y * ow + xo]


@njit(**_PARALLEL)
def _patches_adjoint_kernel(cols, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    # out must be zeros. Each task owns one output plane (it stays in cache while the
    # kh*kw rows of its channel are added in); kernel offsets are summed in (i, j)
    # order, the NumPy backend's order, so results are identical. The columns whose
    # input lies inside the image are found once per offset: no test in the inner loop.
    n, c, h, w = out.shape
    for task in prange(n * c):
        b = task // c
        ch = task % c
        plane = out[b, ch]
        for i in range(kh):
            for j in range(kw):
                shift = j * dw - pw
                lo = 0 if shift >= 0 else (sw - 1 - shift) // sw
                hi = min(ow, (w - 1 - shift) // sw + 1) if w - 1 - shift >= 0 else 0
                src = cols[(ch * kh + i) * kw + j, b * oh * ow:(b + 1) * oh * ow]
                for y in range(oh):
                    iy = y * sh + i * dh - ph
                    if 0 <= iy < h:
                        at = y * ow
                        if sw == 1:
                            for xo in range(lo, hi):
                                plane[iy, xo + shift] += src[at + xo]
                        else:
                            for xo in range(lo, hi):
                                plane[iy, xo * sw + shift] += src[at + xo]


# Direct convolution (stride 1, one group) on a "plane grid": channel c of the input
# is one row of the grid holding every image as a plane of hr x wr cells, the image
# at (ph, pw) and zeros around it, the padding shared between neighbouring rows and
# planes. Output (oh, ow) of image b then sits at q = b*plane + oh*wr + ow, and tap
# (i, j) of the kernel reads the grid at q + i*dh*wr + j*dw: the convolution is a sum
# of shifted rows, y[f, q] = sum_s w[f, s] * grid[chan[s], q + offs[s]] over the
# sources s = (channel, tap). No im2col matrix (kh*kw times the input) is written;
# every inner loop is a long unit-stride FMA stream. Grid cells that are not an
# output get values that are thrown away. The kernels let LLVM contract a*b + c into
# an FMA and (for the weight gradient's dot products) reassociate sums, as BLAS
# does: the rounding differs from the NumPy backend's by a few ulps.
_FMA = dict(parallel=True, cache=True, nogil=True, fastmath={"contract"})
_FMA_REASSOC = dict(parallel=True, cache=True, nogil=True, fastmath={"contract", "reassoc"})
# A task of the correlation owns 4 output rows x _GRID_CHUNK columns, a part of the
# weight gradient's sums about _GRID_PART columns: long runs amortise each task's
# setup (correlation at 1024 / 4096 / 8192 columns: 86 / 95 / 96 GFLOP/s on one Zen 4
# core, float32; weight gradient at 1024 / 8192: 92 / 114 GFLOP/s).
_GRID_CHUNK, _GRID_PART = 8192, 8192


@njit(fastmath={"contract"})
def _shifted8(o0, o1, o2, o3, src, chan, offs, w, f, s, q0, m):
    # o_r[:m] += sum over the 8 sources s..s+7 of w[f + r, s'] * src[chan[s'], q0 + offs[s']:]
    # (4 outputs x 8 sources: 32 FMAs per 8 loads, the register budget of AVX-512)
    a0 = src[chan[s], q0 + offs[s]:q0 + offs[s] + m]
    a1 = src[chan[s + 1], q0 + offs[s + 1]:q0 + offs[s + 1] + m]
    a2 = src[chan[s + 2], q0 + offs[s + 2]:q0 + offs[s + 2] + m]
    a3 = src[chan[s + 3], q0 + offs[s + 3]:q0 + offs[s + 3] + m]
    a4 = src[chan[s + 4], q0 + offs[s + 4]:q0 + offs[s + 4] + m]
    a5 = src[chan[s + 5], q0 + offs[s + 5]:q0 + offs[s + 5] + m]
    a6 = src[chan[s + 6], q0 + offs[s + 6]:q0 + offs[s + 6] + m]
    a7 = src[chan[s + 7], q0 + offs[s + 7]:q0 + offs[s + 7] + m]
    w00, w01, w02, w03 = w[f, s], w[f, s + 1], w[f, s + 2], w[f, s + 3]
    w04, w05, w06, w07 = w[f, s + 4], w[f, s + 5], w[f, s + 6], w[f, s + 7]
    w10, w11, w12, w13 = w[f + 1, s], w[f + 1, s + 1], w[f + 1, s + 2], w[f + 1, s + 3]
    w14, w15, w16, w17 = w[f + 1, s + 4], w[f + 1, s + 5], w[f + 1, s + 6], w[f + 1, s + 7]
    w20, w21, w22, w23 = w[f + 2, s], w[f + 2, s + 1], w[f + 2, s + 2], w[f + 2, s + 3]
    w24, w25, w26, w27 = w[f + 2, s + 4], w[f + 2, s + 5], w[f + 2, s + 6], w[f + 2, s + 7]
    w30, w31, w32, w33 = w[f + 3, s], w[f + 3, s + 1], w[f + 3, s + 2], w[f + 3, s + 3]
    w34, w35, w36, w37 = w[f + 3, s + 4], w[f + 3, s + 5], w[f + 3, s + 6], w[f + 3, s + 7]
    for q in range(m):
        x0, x1, x2, x3 = a0[q], a1[q], a2[q], a3[q]
        x4, x5, x6, x7 = a4[q], a5[q], a6[q], a7[q]
        o0[q] += (w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3 + w04 * x4 + w05 * x5
                  + w06 * x6 + w07 * x7)
        o1[q] += (w10 * x0 + w11 * x1 + w12 * x2 + w13 * x3 + w14 * x4 + w15 * x5
                  + w16 * x6 + w17 * x7)
        o2[q] += (w20 * x0 + w21 * x1 + w22 * x2 + w23 * x3 + w24 * x4 + w25 * x5
                  + w26 * x6 + w27 * x7)
        o3[q] += (w30 * x0 + w31 * x1 + w32 * x2 + w33 * x3 + w34 * x4 + w35 * x5
                  + w36 * x6 + w37 * x7)


@njit(fastmath={"contract"})
def _shifted1(o0, o1, o2, o3, src, chan, offs, w, f, s, q0, m):
    a = src[chan[s], q0 + offs[s]:q0 + offs[s] + m]
    w0, w1, w2, w3 = w[f, s], w[f + 1, s], w[f + 2, s], w[f + 3, s]
    for q in range(m):
        x = a[q]
        o0[q] += w0 * x
        o1[q] += w1 * x
        o2[q] += w2 * x
        o3[q] += w3 * x


@njit(**_FMA)
def _grid_correlate_kernel(src, chan, offs, w, out):
    # out[f, q] = sum_s w[f, s] * src[chan[s], q + offs[s]]; w's rows a multiple of 4.
    # Slices are taken as arr[row, a:b] of C-contiguous arrays only: a view such as
    # arr[:, k:] has layout 'A' and its loops do not vectorise.
    rows, sources = w.shape
    length = out.shape[1]
    chunks = (length + _GRID_CHUNK - 1) // _GRID_CHUNK
    for task in prange((rows // 4) * chunks):
        f = (task // chunks) * 4
        q0 = (task % chunks) * _GRID_CHUNK
        m = min(length, q0 + _GRID_CHUNK) - q0
        o0, o1 = out[f, q0:q0 + m], out[f + 1, q0:q0 + m]
        o2, o3 = out[f + 2, q0:q0 + m], out[f + 3, q0:q0 + m]
        o0[:] = 0
        o1[:] = 0
        o2[:] = 0
        o3[:] = 0
        s = 0
        while s + 8 <= sources:
            _shifted8(o0, o1, o2, o3, src, chan, offs, w, f, s, q0, m)
            s += 8
        while s < sources:
            _shifted1(o0, o1, o2, o3, src, chan, offs, w, f, s, q0, m)
            s += 1


@njit(fastmath={"contract", "reassoc"})
def _dots4x4(acc, dy, front, src, chan, offs, f, s, q0, q1):
    # acc[r, t] += dot(dy[f + r, front + q0:front + q1], src[chan[s + t], q0 + offs[s + t]:])
    m = q1 - q0
    d0 = dy[f, front + q0:front + q1]
    d1 = dy[f + 1, front + q0:front + q1]
    d2 = dy[f + 2, front + q0:front + q1]
    d3 = dy[f + 3, front + q0:front + q1]
    a0 = src[chan[s], q0 + offs[s]:q0 + offs[s] + m]
    a1 = src[chan[s + 1], q0 + offs[s + 1]:q0 + offs[s + 1] + m]
    a2 = src[chan[s + 2], q0 + offs[s + 2]:q0 + offs[s + 2] + m]
    a3 = src[chan[s + 3], q0 + offs[s + 3]:q0 + offs[s + 3] + m]
    # the sums start from acc's entries: a literal 0.0 would make them float64
    c00, c01, c02, c03 = acc[0, 0], acc[0, 1], acc[0, 2], acc[0, 3]
    c10, c11, c12, c13 = acc[1, 0], acc[1, 1], acc[1, 2], acc[1, 3]
    c20, c21, c22, c23 = acc[2, 0], acc[2, 1], acc[2, 2], acc[2, 3]
    c30, c31, c32, c33 = acc[3, 0], acc[3, 1], acc[3, 2], acc[3, 3]
    for q in range(m):
        y0, y1, y2, y3 = d0[q], d1[q], d2[q], d3[q]
        x0, x1, x2, x3 = a0[q], a1[q], a2[q], a3[q]
        c00 += y0 * x0
        c01 += y0 * x1
        c02 += y0 * x2
        c03 += y0 * x3
        c10 += y1 * x0
        c11 += y1 * x1
        c12 += y1 * x2
        c13 += y1 * x3
        c20 += y2 * x0
        c21 += y2 * x1
        c22 += y2 * x2
        c23 += y2 * x3
        c30 += y3 * x0
        c31 += y3 * x1
        c32 += y3 * x2
        c33 += y3 * x3
    acc[0, 0], acc[0, 1], acc[0, 2], acc[0, 3] = c00, c01, c02, c03
    acc[1, 0], acc[1, 1], acc[1, 2], acc[1, 3] = c10, c11, c12, c13
    acc[2, 0], acc[2, 1], acc[2, 2], acc[2, 3] = c20, c21, c22, c23
    acc[3, 0], acc[3, 1], acc[3, 2], acc[3, 3] = c30, c31, c32, c33


@njit(**_FMA_REASSOC)
def _grid_weight_grad_kernel(dy, front, src, chan, offs, partial):
    # partial[k, f, s] = sum over q in part k of dy[f, front + q] * src[chan[s], q + offs[s]]
    # (partial zeros, its rows and sources multiples of 4). The parts are fixed by the
    # length, not by the thread count: the sums are the same on any number of threads.
    parts, rows, sources = partial.shape
    length = dy.shape[1] - front
    fb, sb = rows // 4, sources // 4
    for task in prange(parts * fb * sb):
        k = task // (fb * sb)
        f = (task // sb) % fb * 4
        s = task % sb * 4
        q0 = k * length // parts
        q1 = (k + 1) * length // parts
        _dots4x4(partial[k, f:f + 4, s:s + 4], dy, front, src, chan, offs, f, s, q0, q1)


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})
def _to_grid_kernel(x, grid, front, top, left, width, plane, bad):
    # grid[c, front + b*plane + (top + i)*width + left + j] = x[b, c, i, j]; the other
    # cells are left as they are (zeros). bad[task] turns NaN when its plane holds an
    # inf or a NaN (v - v is 0 for every finite v; reassociating that sum lets it
    # vectorise, 2.6x faster, and a NaN stays a NaN in any order)
    n, c, h, w = x.shape
    for task in prange(n * c):
        b = task // c
        ch = task % c
        z = bad[task]
        for i in range(h):
            at = front + b * plane + (top + i) * width + left
            row = x[b, ch, i]
            dst = grid[ch, at:at + w]
            for j in range(w):
                v = row[j]
                dst[j] = v
                z += v - v
        bad[task] = z


@njit(**_PARALLEL)
def _from_grid_kernel(grid, out, top, left, width, plane, bias):
    # out[b, c, i, j] = grid[c, b*plane + (top + i)*width + left + j] (+ bias[c] if given)
    n, c, h, w = out.shape
    for task in prange(n * c):
        b = task // c
        ch = task % c
        for i in range(h):
            at = b * plane + (top + i) * width + left
            row = out[b, ch, i]
            src = grid[ch, at:at + w]
            if bias.shape[0]:
                add = bias[ch]
                for j in range(w):
                    row[j] = src[j] + add
            else:
                for j in range(w):
                    row[j] = src[j]


@njit(**_PARALLEL)
def _max_pool_kernel(x, out, idx, kh, kw, sh, sw):
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n * c):
        b = task // c
        ch = task % c
        for y in range(oh):
            best = out[b, ch, y]
            pos = idx[b, ch, y]
            for xo in range(ow):
                best[xo] = x[b, ch, y * sh, xo * sw]
                pos[xo] = y * sh * w + xo * sw
            # window offsets outermost, output columns innermost: the xo loop is
            # branch-free and vectorises, and each output still sees its window
            # in row-major order, so the strict comparison keeps the first maximum
            for di in range(kh):
                row = x[b, ch, y * sh + di]
                for dj in range(kw):
                    for xo in range(ow):
                        v = row[xo * sw + dj]
                        cur = best[xo]
                        # like numpy.argmax, a NaN counts as the maximum (the first NaN wins)
                        win = v > cur or (v != v and cur == cur)
                        best[xo] = v if win else cur
                        pos[xo] = (y * sh + di) * w + xo * sw + dj if win else pos[xo]


@njit(**_PARALLEL)
def _max_pool_2x2_kernel(x, out, idx):
    # kernel 2, stride 2 (the common pooling): the four window entries read straight from
    # x, in the general kernel's order and with its rule (a later entry wins when strictly
    # larger, or when it is the first NaN), so results are identical. Plain 4-d indexing,
    # no row views: with views the loop ran ~15x slower (0.9 ms against 0.05 ms for
    # 64x16x16x16 on one thread)
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n * c):
        b = task // c
        ch = task % c
        for y in range(oh):
            at = 2 * y * w
            for xo in range(ow):
                best = x[b, ch, 2 * y, 2 * xo]
                pos = at + 2 * xo
                v = x[b, ch, 2 * y, 2 * xo + 1]
                if v > best or (v != v and best == best):
                    best = v
                    pos = at + 2 * xo + 1
                v = x[b, ch, 2 * y + 1, 2 * xo]
                if v > best or (v != v and best == best):
                    best = v
                    pos = at + w + 2 * xo
                v = x[b, ch, 2 * y + 1, 2 * xo + 1]
                if v > best or (v != v and best == best):
                    best = v
                    pos = at + w + 2 * xo + 1
                out[b, ch, y, xo] = best
                idx[b, ch, y, xo] = pos


# ================================================================ fused rows
# exp without a libm call, so that LLVM vectorises the loops that use it (Numba
# calls the scalar libm exp otherwise, 3-5x slower than NumPy's SIMD exp).
# Only for x <= 0, which is all that softmax (x - max) and sigmoid (-|x|) need.
# Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, then a Taylor polynomial in
# float64: degree 13 for float64 data (within an ulp of NumPy's exp), degree 7
# for float32 data (error far below a float32 ulp, at half the cost).
_LN2_HI = 0.693147180369123816490
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700


@njit(inline="always")
def _exp_reduced(x, degree):
    x = float(x)
    x = -745.2 if x < -745.2 else x  # below: exp underflows to 0 (-inf too); NaN stays NaN
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    if degree == 13:  # |error| < 2^-60: float64 results within an ulp
        p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
            1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (
                1 / 39916800 + r * (1 / 479001600 + r * (1 / 6227020800)))))))))))))
    else:  # degree 7, |error| < 2^-27: enough for float32 results
        p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
            1 / 720 + r * (1 / 5040)))))))
    # times 2^k, built from exponent bits in two halves so that k down to -1075
    # (subnormal results) never underflows a factor
    ki = np.int64(k)
    half = ki // 2
    return (p * np.int64((half + 1023) << 52).view(np.float64)
            * np.int64((ki - half + 1023) << 52).view(np.float64))


@njit(inline="always")
def _exp_float32(x):
    # float32 arithmetic throughout (twice the SIMD lanes of the float64 path): the same
    # reduction with a two-part float32 ln2, a degree-6 polynomial (within 2 ulp), and
    # 2^k from exponent bits. Below -87 the result is 0 (float32's normal range ends
    # at exp(-87.3)); NaN stays NaN.
    lo = np.float32(-87.0)
    xc = x if x > lo else lo
    k = np.floor(xc * np.float32(1.4426950408889634) + np.float32(0.5))
    r = (xc - k * np.float32(0.693359375)) - k * np.float32(-2.12194440e-4)
    p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (
        np.float32(1 / 6) + r * (np.float32(1 / 24) + r * (np.float32(1 / 120) + r * np.float32(
            1 / 720))))))
    y = p * np.int32((np.int32(k) + 127) << 23).view(np.float32)
    return y if x >= lo else (np.float32(0.0) if x < lo else x)


def _exp_nonpositive(x):
    """exp(x) for x <= 0, vectorisable: float32 arithmetic for float32 x, else float64."""
    raise NotImplementedError("only callable from compiled code")


@overload(_exp_nonpositive, inline="always")
def _exp_nonpositive_impl(x):
    if x == types.float32:
        return lambda x: _exp_float32(x)
    return lambda x: _exp_reduced(x, 13)


@njit
def _row_max(x, r):
    # four independent maxima: a single running max is one long dependency chain
    n = x.shape[1]
    m0 = m1 = m2 = m3 = x[r, 0]
    j = 0
    while j + 4 <= n:
        m0 = max(m0, x[r, j])
        m1 = max(m1, x[r, j + 1])
        m2 = max(m2, x[r, j + 2])
        m3 = max(m3, x[r, j + 3])
        j += 4
    for j in range(j, n):
        m0 = max(m0, x[r, j])
    return max(max(m0, m1), max(m2, m3))


@njit
def _row_exp_sum(x, r, top, out):
    # out[r] = exp(x[r] - top) in a reduction-free loop, which LLVM vectorises
    # (a float sum in the same loop would keep it scalar); then the sum, in
    # float64 with four accumulators
    n = x.shape[1]
    for j in range(n):
        out[r, j] = _exp_nonpositive(x[r, j] - top)
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= n:
        s0 += out[r, j]
        s1 += out[r, j + 1]
        s2 += out[r, j + 2]
        s3 += out[r, j + 3]
        j += 4
    for j in range(j, n):
        s0 += out[r, j]
    return (s0 + s1) + (s2 + s3)


@njit(**_PARALLEL)
def _softmax_kernel(x, out):
    # rows of C-contiguous (M, L) arrays
    for r in prange(x.shape[0]):
        inv = 1.0 / _row_exp_sum(x, r, _row_max(x, r), out)
        for j in range(x.shape[1]):
            out[r, j] = out[r, j] * inv


@njit(**_PARALLEL)
def _log_softmax_kernel(x, out):
    for r in prange(x.shape[0]):
        top = _row_max(x, r)
        shift = top + math.log(_row_exp_sum(x, r, top, out))  # out is scratch here
        for j in range(x.shape[1]):
            out[r, j] = x[r, j] - shift


@njit(inline="always")
def _sigmoid_vec(v):
    # the NumPy backend's stable form: exp of a non-positive number only (vectorises)
    e = _exp_nonpositive(-abs(v))
    return (1.0 if v >= 0 else e) / (1.0 + e)


@njit(**_PARALLEL)
def _sigmoid_kernel(x, out):
    for i in prange(x.shape[0]):
        out[i] = _sigmoid_vec(x[i])


@njit(**_PARALLEL)
def _silu_kernel(x, out):
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = v * _sigmoid_vec(v)


_FUSED_UNARY = {"sigmoid": _sigmoid_kernel, "silu": _silu_kernel}  # erf joins below


@njit
def _exp_sum(row, top, scratch):
    # Σ exp(row - top) via a reduction-free exp loop (vectorised), as _row_exp_sum
    n = row.shape[0]
    for j in range(n):
        scratch[j] = _exp_nonpositive(row[j] - top)
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= n:
        s0 += scratch[j]
        s1 += scratch[j + 1]
        s2 += scratch[j + 2]
        s3 += scratch[j + 3]
        j += 4
    for j in range(j, n):
        s0 += scratch[j]
    return (s0 + s1) + (s2 + s3)


@njit(**_PARALLEL)
def _cross_entropy_kernel(x, targets, loss, top, logsum):
    # one read of each row for its max, one for the exp-sum; nothing (N, C) is written
    for r in prange(x.shape[0]):
        scratch = np.empty(x.shape[1], dtype=x.dtype)
        m = _row_max(x, r)
        ls = math.log(_exp_sum(x[r], m, scratch))
        top[r] = m
        logsum[r] = ls
        loss[r] = (m - x[r, targets[r]]) + ls


@njit(**_PARALLEL)
def _cross_entropy_grad_kernel(x, targets, top, logsum, scale, out):
    # scale · (softmax - onehot) in one pass; (x - top) - logsum <= 0 up to rounding
    for r in prange(x.shape[0]):
        m, ls = top[r], logsum[r]
        for j in range(x.shape[1]):
            out[r, j] = _exp_nonpositive((x[r, j] - m) - ls) * scale
        out[r, targets[r]] -= scale


@njit(**_PARALLEL)
def _sigmoid_grad_kernel(y, g, out):
    for i in prange(y.shape[0]):
        out[i] = g[i] * (y[i] * (1.0 - y[i]))


@njit(**_PARALLEL)
def _tanh_grad_kernel(y, g, out):
    for i in prange(y.shape[0]):
        out[i] = g[i] * (1.0 - y[i] * y[i])


@njit(**_PARALLEL)
def _silu_grad_kernel(x, g, out):
    for i in prange(x.shape[0]):
        v = x[i]
        s = _sigmoid_vec(v)
        out[i] = g[i] * (s * (1.0 + v * (1.0 - s)))


# ================================================================ GELU and normalization
_SQRT1_2 = 1 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)
_GELU_KAPPA = 0.044715


@njit(**_PARALLEL)
def _erf_kernel(x, out):
    for i in prange(x.shape[0]):
        out[i] = math.erf(x[i])


@njit(**_PARALLEL)
def _gelu_kernel(x, out):
    for i in prange(x.shape[0]):
        v = float(x[i])
        out[i] = v * 0.5 * (1.0 + math.erf(v * _SQRT1_2))


@njit(**_PARALLEL)
def _gelu_tanh_kernel(x, out):
    for i in prange(x.shape[0]):
        v = float(x[i])
        out[i] = 0.5 * v * (1.0 + math.tanh(_SQRT_2_OVER_PI * (v + _GELU_KAPPA * v * v * v)))


@njit(**_PARALLEL)
def _gelu_grad_kernel(x, g, out):
    for i in prange(x.shape[0]):
        v = float(x[i])
        cdf = 0.5 * (1.0 + math.erf(v * _SQRT1_2))
        out[i] = g[i] * (cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI)


@njit(**_PARALLEL)
def _gelu_tanh_grad_kernel(x, g, out):
    for i in prange(x.shape[0]):
        v = float(x[i])
        t = math.tanh(_SQRT_2_OVER_PI * (v + _GELU_KAPPA * v * v * v))
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_KAPPA * v * v)
        out[i] = g[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du)


@njit(**_PARALLEL)
def _normalize_kernel(x, eps, y, mean, var):
    # x (A, C, B): the statistics of each c over a and b, in float64, two passes
    na, nc, nb = x.shape
    count = max(na * nb, 1)
    for c in prange(nc):
        s = 0.0
        for a in range(na):
            for b in range(nb):
                s += x[a, c, b]
        m = s / count
        ss = 0.0
        for a in range(na):
            for b in range(nb):
                d = x[a, c, b] - m
                ss += d * d
        v = ss / count
        r = 1.0 / math.sqrt(v + eps)
        for a in range(na):
            for b in range(nb):
                y[a, c, b] = (x[a, c, b] - m) * r
        mean[c] = m
        var[c] = v


@njit(**_PARALLEL)
def _normalize_grad_kernel(y, rstd, g, out):
    na, nc, nb = y.shape
    count = max(na * nb, 1)
    for c in prange(nc):
        sg = 0.0
        sgy = 0.0
        for a in range(na):
            for b in range(nb):
                sg += g[a, c, b]
                sgy += g[a, c, b] * y[a, c, b]
        mg = sg / count
        mgy = sgy / count
        r = float(rstd[c])
        for a in range(na):
            for b in range(nb):
                out[a, c, b] = (g[a, c, b] - mg - y[a, c, b] * mgy) * r


@njit(inline="always")
def _sigmoid_scalar(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@njit(inline="always")
def _lstm_gates(gates, r, j, k):
    # gates (N, 4H) in torch's order i, f, g, o
    return (_sigmoid_scalar(float(gates[r, j])), _sigmoid_scalar(float(gates[r, k + j])),
            math.tanh(float(gates[r, 2 * k + j])), _sigmoid_scalar(float(gates[r, 3 * k + j])))


@njit(**_PARALLEL)
def _lstm_cell_kernel(gates, c, h, c_new):
    # one pass, nothing (N, 4H) is written
    n, k = c.shape
    for r in prange(n):
        for j in range(k):
            i, f, g, o = _lstm_gates(gates, r, j, k)
            cn = f * c[r, j] + i * g
            c_new[r, j] = cn
            h[r, j] = o * math.tanh(cn)


@njit(**_PARALLEL)
def _lstm_cell_grad_kernel(gates, c, c_new, dh, dc_new, dgates, dc):
    n, k = c.shape
    for r in prange(n):
        for j in range(k):
            i, f, g, o = _lstm_gates(gates, r, j, k)
            t = math.tanh(float(c_new[r, j]))
            d = dc_new[r, j] + dh[r, j] * o * (1.0 - t * t)
            dgates[r, j] = d * g * (i * (1.0 - i))
            dgates[r, k + j] = d * c[r, j] * (f * (1.0 - f))
            dgates[r, 2 * k + j] = d * i * (1.0 - g * g)
            dgates[r, 3 * k + j] = dh[r, j] * t * (o * (1.0 - o))
            dc[r, j] = d * f


@njit(inline="always")
def _gru_gates(gx, gh, row, j, k):
    # (r, z, the hidden side of n, n) from gx, gh (N, 3H) in torch's order r, z, n
    r = _sigmoid_scalar(float(gx[row, j] + gh[row, j]))
    z = _sigmoid_scalar(float(gx[row, k + j] + gh[row, k + j]))
    hn = float(gh[row, 2 * k + j])
    return r, z, hn, math.tanh(float(gx[row, 2 * k + j]) + r * hn)


@njit(**_PARALLEL)
def _gru_cell_kernel(gx, gh, h, out):
    n, k = h.shape
    for row in prange(n):
        for j in range(k):
            r, z, _, m = _gru_gates(gx, gh, row, j, k)
            out[row, j] = m + z * (h[row, j] - m)


@njit(**_PARALLEL)
def _gru_cell_grad_kernel(gx, gh, h, dh_new, dgx, dgh, dh):
    n, k = h.shape
    for row in prange(n):
        for j in range(k):
            r, z, hn, m = _gru_gates(gx, gh, row, j, k)
            g = float(dh_new[row, j])
            a = g * (1.0 - z) * (1.0 - m * m)
            a_r = a * hn * (r * (1.0 - r))
            a_z = g * (h[row, j] - m) * (z * (1.0 - z))
            dgx[row, j] = a_r
            dgx[row, k + j] = a_z
            dgx[row, 2 * k + j] = a
            dgh[row, j] = a_r
            dgh[row, k + j] = a_z
            dgh[row, 2 * k + j] = a * r
            dh[row, j] = g * z


_ACTIVATION_GRAD = {"sigmoid": _sigmoid_grad_kernel, "tanh": _tanh_grad_kernel,
                    "silu": _silu_grad_kernel, "gelu": _gelu_grad_kernel,
                    "gelu_tanh": _gelu_tanh_grad_kernel}
_GELU = {"none": _gelu_kernel, "tanh": _gelu_tanh_kernel}
_FUSED_UNARY["erf"] = _erf_kernel

# every compiled kernel, for tests and for warm-up timing
KERNELS = (_tropical_max_plus, _tropical_min_plus, _tropical_max_mul,
           _contract_max_plus, _contract_min_plus, _contract_max_mul,
           _scatter_add_kernel, _scatter_rows_kernel, _im2col_kernel, _col2im_kernel,
           _patches_adjoint_kernel, _grid_correlate_kernel, _grid_weight_grad_kernel,
           _to_grid_kernel, _from_grid_kernel, _max_pool_kernel, _max_pool_2x2_kernel,
           _softmax_kernel, _log_softmax_kernel,
           _sigmoid_kernel, _silu_kernel, _cross_entropy_kernel, _cross_entropy_grad_kernel,
           _sigmoid_grad_kernel, _tanh_grad_kernel, _silu_grad_kernel, _erf_kernel,
           _gelu_kernel, _gelu_tanh_kernel, _gelu_grad_kernel, _gelu_tanh_grad_kernel,
           _normalize_kernel, _normalize_grad_kernel, _lstm_cell_kernel, _lstm_cell_grad_kernel,
           _gru_cell_kernel, _gru_cell_grad_kernel)

_FLOATS = (np.float32, np.float64)

# Below this much work (elements touched) a kernel runs on the calling thread
# only: waking the pool costs more than it saves, and on a busy machine a
# parallel launch can wait a whole scheduler tick for a descheduled worker.
PARALLEL_MIN_WORK = 1 << 16


def _launch(kernel, work, *args):
    threads = numba.get_num_threads()
    if work >= PARALLEL_MIN_WORK or threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)  # per calling thread, so other Python threads are unaffected
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


# The grid conversions of the direct convolution are plain copies, bound by memory:
# below about 4 MB a second thread does not pay for waking it (measured on the Zen 4
# benchmark machine, 1 MB: 0.08 ms on one thread, 0.13-0.14 ms on two; 8 MB: 0.6-1.1
# ms on one, 0.35-0.48 ms on two)
COPY_PARALLEL_MIN_WORK = 1 << 20


def _launch_copy(kernel, work, *args):
    return _launch(kernel, work if work >= COPY_PARALLEL_MIN_WORK else 0, *args)


def _c(a, dtype=None):
    """`a` as a C-contiguous writable array: one compiled signature per dtype
    (Numba types read-only arrays, e.g. broadcast views, separately)."""
    return np.require(a, dtype=dtype, requirements=("C", "W"))


def _conv_geometry(x_shape, kh, kw, stride, padding, dilation):
    """(sh, sw, ph, pw, dh, dw, oh, ow): the conv kernels' stride, padding, dilation and
    output size arguments."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    return (sh, sw, ph, pw, dh, dw, conv_out(x_shape[2], kh, sh, ph, dh),
            conv_out(x_shape[3], kw, sw, pw, dw))


def _is_float(*arrays):
    return all(a.dtype in _FLOATS for a in arrays)


DIRECT_CONV_MAX_SOURCES = 1024


def _up4(k):
    return (k + 3) // 4 * 4


class _PlaneGrid:
    """Where a stride-1 convolution puts things on the plane grid (see the kernels):
    row width wr and plane size of each image, the offset of every kernel tap, the
    reach (the last tap's offset) and the output size."""

    def __init__(self, x_shape, w_shape, padding, dilation):
        self.n, self.c, self.h, self.w = x_shape
        self.f, _, kh, kw = w_shape
        (self.ph, self.pw), (dh, dw) = padding, dilation
        self.oh = conv_out(self.h, kh, 1, self.ph, dh)
        self.ow = conv_out(self.w, kw, 1, self.pw, dw)
        # the bottom / right padding is what the top / left padding of the next plane /
        # row does not already provide
        hr = self.h + self.ph + max(0, self.ph - dh * (kh - 1))
        self.wr = self.w + self.pw + max(0, self.pw - dw * (kw - 1))
        self.plane = hr * self.wr
        self.length = self.n * self.plane
        self.taps = (np.arange(kh)[:, None] * (dh * self.wr)
                     + np.arange(kw)[None, :] * dw).reshape(-1).astype(np.int64)
        self.reach = int(self.taps[-1])

    def sources(self, channels, offsets, count=None):
        """(chan, offs) of the sources (channel, tap) in channel-major order, padded with
        harmless copies of source 0 up to `count`."""
        total = channels * self.taps.size
        chan = np.zeros(count or total, np.int64)
        offs = np.zeros(count or total, np.int64)
        chan[:total] = np.repeat(np.arange(channels), self.taps.size)
        offs[:total] = np.tile(offsets, channels)
        return chan, offs


class _DirectConv:
    """What the direct convolution keeps for its backward: the grid geometry, the
    input on the grid and whether it holds an inf or a NaN."""

    def __init__(self, grid, x_grid, x_finite):
        self.grid, self.x_grid, self.x_finite = grid, x_grid, x_finite


_SCRATCH = threading.local()
_SCRATCH_ARRAYS, _SCRATCH_BYTES = 8, 256 << 20  # kept per thread, least recently used out


def _scratch(key, shape, dtype):
    """A zero-initialised work array reused by later calls with the same key (per
    thread): a fresh array of a few MB costs a page fault per 4 KiB on first touch,
    which on the benchmark machine's VM is as slow as the convolution itself. A
    grid scratch array is only ever written at the cells its key fixes, so the
    cells in between stay zero."""
    cache = getattr(_SCRATCH, "arrays", None)
    if cache is None:
        cache = _SCRATCH.arrays = {}
    key = (key, tuple(shape), np.dtype(dtype).str)
    a = cache.pop(key, None)
    if a is None:
        a = np.zeros(shape, dtype)
    cache[key] = a  # most recently used last
    while len(cache) > 1 and (len(cache) > _SCRATCH_ARRAYS or
                              sum(b.nbytes for b in cache.values()) > _SCRATCH_BYTES):
        cache.pop(next(iter(cache)))
    return a


class NumbaCPUBackend(NumpyBackend):
    name = "numba"

    # ---- elementwise
    def unary(self, op, a):
        kernel = _FUSED_UNARY.get(op)
        if kernel is None or not isinstance(a, np.ndarray) or not _is_float(a):
            return super().unary(op, a)
        flat = _c(a).reshape(-1)
        out = np.empty_like(flat)
        _launch(kernel, flat.size, flat, out)
        return out.reshape(a.shape)

    # ---- indexing
    def index_put_add(self, shape, key, values):
        parts = key if isinstance(key, tuple) else (key,)
        arrays = [i for i, k in enumerate(parts) if _int_array(k)]
        values = np.asarray(values)
        if not arrays or values.dtype.kind not in "fiu":
            return super().index_put_add(shape, key, values)
        check_key(f"{self.name}.index_put_add", shape, key)  # then mode="wrap" below is exact
        s, e = arrays[0], arrays[-1] + 1
        # fast path: a block of integer-array keys, every other entry a plain `:`
        # (x[idx], x[i, j], x[:, idx], ... -- gather, embedding and fancy-indexing backward)
        if (e - s != len(arrays) or len(parts) > len(shape)
                or not all(_plain_slice(k) for k in parts[:s] + parts[e:])):
            return super().index_put_add(shape, key, values)
        ndim = len(shape)
        idx = np.broadcast_arrays(*parts[s:e])
        sub = idx[0].shape
        flat = np.ravel_multi_index(tuple(i.astype(np.int64, copy=False) for i in idx),
                                    shape[s:e], mode="wrap").reshape(-1)
        pre, post = tuple(shape[:s]), tuple(shape[e:])
        vals = np.broadcast_to(values, pre + sub + post)
        # bring the indexed block to the front: (sub..., pre..., post...)
        vals = np.moveaxis(vals, tuple(range(len(pre), len(pre) + len(sub))),
                           tuple(range(len(sub))))
        out = self.scatter_rows_add(int(np.prod(shape[s:e], dtype=np.int64)), flat,
                                    vals.reshape((flat.size,) + pre + post))
        out = out.reshape(tuple(shape[s:e]) + pre + post)
        # and back: (indexed dims..., pre..., post...) -> shape order
        order = list(range(e - s, e - s + s)) + list(range(e - s)) + \
            list(range(e - s + s, ndim))
        return np.ascontiguousarray(out.transpose(order))

    def scatter_add(self, shape, axis, index, src):
        shape = tuple(shape)
        if not _is_float(src) or index.size == 0 or not shape:
            return super().scatter_add(shape, axis, index, src)
        name = f"{self.name}.scatter_add"
        axis = check_axis_indexing(name, shape, axis, index, src)
        check_index_dtype(name, index)
        ishape = index.shape
        src = src[tuple(slice(0, n) for n in ishape)]
        pre = int(np.prod(ishape[:axis], dtype=np.int64))
        post = int(np.prod(ishape[axis + 1:], dtype=np.int64))
        window = tuple(shape[axis] if d == axis else n for d, n in enumerate(ishape))
        part = np.zeros(window, dtype=src.dtype)
        bad = np.zeros(pre * ((post + 63) // 64), dtype=np.bool_)
        _launch(_scatter_add_kernel, src.size, part.reshape(pre, shape[axis], post),
                _c(index, np.int64).reshape(pre, -1, post), _c(src).reshape(pre, -1, post), bad)
        if bad.any():
            check_index(self, name, index, shape[axis], axis)  # raises, with the range found
        if window == shape:
            return part
        out = np.zeros(shape, dtype=src.dtype)
        out[tuple(slice(0, n) for n in window)] = part
        return out

    def scatter_rows_add(self, num_rows, indices, src):
        indices = np.asarray(indices)
        row_shape = src.shape[indices.ndim:]
        if not _is_float(src) or num_rows == 0 or src.size == 0:
            return super().scatter_rows_add(num_rows, indices, src)
        name = f"{self.name}.scatter_rows_add"
        check_rows_indexing(name, indices, src)
        check_index_dtype(name, indices, "indices")
        width = int(np.prod(row_shape, dtype=np.int64))
        out = np.zeros((num_rows, width), dtype=src.dtype)
        parts = min(numba.get_num_threads(), num_rows)
        bad = np.zeros(parts, dtype=np.bool_)
        _launch(_scatter_rows_kernel, src.size + indices.size, out,
                _c(indices, np.int64).reshape(-1), _c(src).reshape(-1, width), parts, bad)
        if bad.any():
            check_index(self, name, indices, num_rows, 0, "indices")  # raises, with the range
        return out.reshape((num_rows,) + tuple(row_shape))

    # ---- linear algebra
    def semiring_kernel(self, semiring):
        # compiled kernels for the built-in semirings; NumPy's ufunc kernel for the rest
        if _TROPICAL.get(semiring.name, (None, None))[0] is semiring:
            return self._tropical_compiled
        return super().semiring_kernel(semiring)

    def tropical_contract(self, a, b, perm_a, shape_a3, perm_b, shape_b3, out_shape, semiring):
        sr = get_semiring(semiring, "numba backend tropical_contract")
        dtype = np.result_type(a, b)
        kernels = _CONTRACT.get(sr.name) if _TROPICAL.get(sr.name, (None,))[0] is sr else None
        if kernels is None or dtype not in _FLOATS or 0 in shape_a3 or 0 in shape_b3:
            return super().tropical_contract(a, b, perm_a, shape_a3, perm_b, shape_b3,
                                             out_shape, sr)
        nk = shape_a3[2]
        nb, nl, nr = shape_a3[0], shape_a3[1], shape_b3[2]
        if nk >= 256 and nl * nr <= 4096 and nb * nl * nr * nk >= PARALLEL_MIN_WORK:
            # a long reduction into a small output per batch entry (two large halves
            # of a network joined): both sides copied contracted-axes-last by the tiled
            # permute, then one vectorised reduction per output entry
            order = _batch_right_contracted(perm_b, b.shape, shape_b3)
            a3 = _contiguous(a, dtype, perm_a).reshape(shape_a3) if order else None
            bt = _contiguous(b, dtype, order).reshape(nb, nr, nk) if order else None
            if order and not _may_give_nan_flat(a3, bt, sr):
                c = np.empty((nb, nl, nr), dtype)
                _DOT[sr.name](a3, bt, c)
                return c.reshape(out_shape)
        if nk >= 16 and min(shape_a3[1], shape_b3[2]) >= 8:
            # a real matrix product: the tiled kernel (register blocking, cache panels)
            # is an order of magnitude faster than the gather loop, transposes included
            a3 = _contiguous(a, dtype, perm_a).reshape(shape_a3)
            b3 = _contiguous(b, dtype, perm_b).reshape(shape_b3)
            return self._tropical_compiled(a3, b3, sr, values_only=True)[0].reshape(out_shape)
        a, b = _contiguous(a, dtype), _contiguous(b, dtype)
        if _may_give_nan_flat(a, b, sr):
            return super().tropical_contract(a, b, perm_a, shape_a3, perm_b, shape_b3,
                                             out_shape, sr)
        key = (a.shape, perm_a, shape_a3, b.shape, perm_b, shape_b3)
        tables = _offsets(key, a.shape, perm_a, tuple(shape_a3), b.shape, perm_b,
                          tuple(shape_b3))
        if tables is None:
            return super().tropical_contract(a, b, perm_a, shape_a3, perm_b, shape_b3,
                                             out_shape, sr)
        nb, nl, nk = shape_a3
        nr = shape_b3[2]
        c = np.empty(nb * nl * nr, dtype)
        parallel, serial = kernels
        kernel = parallel if c.size * nk >= PARALLEL_MIN_WORK else serial
        oa_b, oa_l, oa_k, ob_b, ob_k, ob_r, rows = tables
        if nl < nr and nl < 64 and nk >= 4:
            # few rows against a wide (k, r) slab: the slab would be gathered for a
            # handful of rows only. Swap the sides (⊗ commutes), rows over r, slab over
            # (k, l), then put the result back in (batch, left, right) order
            swapped_rows = max(1, min(nb * nr, (1 << 15) // max(1, nk * nl)))
            kernel(b.reshape(-1), a.reshape(-1), ob_b, ob_r, ob_k, oa_b, oa_k, oa_l,
                   swapped_rows, c)
            return np.ascontiguousarray(c.reshape(nb, nr, nl).transpose(0, 2, 1)).reshape(out_shape)
        kernel(a.reshape(-1), b.reshape(-1), *tables, c)
        return c.reshape(out_shape)

    def _tropical_compiled(self, a, b, semiring, values_only=False):
        kernel = _TROPICAL[semiring.name][1]
        dtype = np.result_type(a, b)
        n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
        if dtype not in _FLOATS or k == 0 or (
                _may_give_nan_flat(a, b, semiring)
                if a.flags.c_contiguous and b.flags.c_contiguous and a.dtype == b.dtype
                else _may_give_nan(a, b, semiring)):
            # NaN candidates (NaN inputs, inf - inf, 0 * inf): NumPy's kernel, whose NaN
            # rule (the first NaN wins) the compiled loops do not spend time on
            return super()._tropical_ufunc(a, b, semiring)
        if m < 16 and n > m:
            # a narrow output would leave the vector lanes (which run along the
            # columns) mostly empty: compute the transposed product b^T (x) a^T
            # instead -- the semiring product commutes, so values and winning l agree
            c, arg = self._tropical_compiled(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2),
                                             semiring, values_only)
            return np.swapaxes(c, -1, -2), None if arg is None else np.swapaxes(arg, -1, -2)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if n == 0 or m == 0 or 0 in batch:
            return (np.empty(batch + (n, m), dtype), np.empty(batch + (n, m), np.int64))
        a3 = _c(a, dtype).reshape(-1, n, k)
        b3 = _c(b, dtype).reshape(-1, k, m)
        count = int(np.prod(batch, dtype=np.int64))
        c = np.empty((count, n, m), dtype=dtype)
        arg = np.empty((count, 0, 0) if values_only else (count, n, m), dtype=np.int64)
        _launch(kernel, c.size * k, a3, b3, _batch_map(a.shape[:-2], batch),
                _batch_map(b.shape[:-2], batch), c, arg)
        if values_only:
            return c.reshape(batch + (n, m)), None
        return c.reshape(batch + (n, m)), arg.reshape(batch + (n, m))

    # ---- convolution and pooling
    def im2col(self, x, kh, kw, stride, padding, dilation=1):
        if not _is_float(x):
            return super().im2col(x, kh, kw, stride, padding, dilation)
        n, c = x.shape[:2]
        geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation)
        oh, ow = geometry[-2:]
        cols = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
        _launch(_im2col_kernel, cols.size, _c(x), cols, kh, kw, *geometry)
        return cols

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation=1):
        if not _is_float(cols):
            return super().col2im(cols, x_shape, kh, kw, stride, padding, dilation)
        n, c = x_shape[:2]
        geometry = _conv_geometry(x_shape, kh, kw, stride, padding, dilation)
        oh, ow = geometry[-2:]
        out = np.zeros(tuple(x_shape), dtype=cols.dtype)
        _launch(_col2im_kernel, cols.size, _c(cols).reshape(n, c * kh * kw, oh * ow), out,
                kh, kw, *geometry)
        return out

    def conv_patches_adjoint(self, cols, x_shape, kh, kw, stride, padding, dilation=1):
        if not _is_float(cols):
            return super().conv_patches_adjoint(cols, x_shape, kh, kw, stride, padding, dilation)
        out = np.zeros(tuple(x_shape), dtype=cols.dtype)
        _launch(_patches_adjoint_kernel, cols.size, _c(cols), out, kh, kw,
                *_conv_geometry(x_shape, kh, kw, stride, padding, dilation))
        return out

    def _direct_conv(self, x, w, b, stride, groups):
        """Whether the direct (plane-grid) convolution applies, and pays: up to
        DIRECT_CONV_MAX_SOURCES (channel, tap) pairs and more than one tap. Beyond, the
        GEMM route's blocking wins (one thread, fwd+bwd, direct / GEMM time: 0.49 for
        16->32 channels 3x3 on 64x16x16, 0.67 for 64->64 3x3 on 8x56x56, 1.12 for
        256->256 3x3 on 16x8x8, 1.16 for a 256->64 1x1 on 64x14x14, float32)."""
        return (isinstance(x, np.ndarray) and isinstance(w, np.ndarray) and stride == (1, 1)
                and groups == 1 and x.dtype in _FLOATS and w.dtype == x.dtype
                and (b is None or (isinstance(b, np.ndarray) and b.dtype == x.dtype))
                and x.size > 0 and w.size > 0 and w.shape[2] * w.shape[3] > 1
                and w.shape[1] * w.shape[2] * w.shape[3] <= DIRECT_CONV_MAX_SOURCES)

    def _to_grid(self, x, grid, rows, front, top, left, back, scratch=None):
        """x (N, C, H, W) on the plane grid: (rows, front + length + back) and whether
        x is finite; `scratch` names a reusable array, else the grid is a fresh one."""
        shape = (rows, front + grid.length + back)
        if scratch is None:
            out = np.zeros(shape, x.dtype)
        else:
            out = _scratch((scratch, front, top, left, grid.wr, grid.plane, x.shape), shape,
                           x.dtype)
        bad = np.zeros(x.shape[0] * x.shape[1], x.dtype)
        _launch_copy(_to_grid_kernel, x.size, _c(x), out, front, top, left, grid.wr,
                     grid.plane, bad)
        return out, not np.isnan(bad).any()

    def _correlate(self, src, chan, offs, w, rows, scratch):
        out = _scratch(scratch, (w.shape[0], rows), src.dtype)
        _launch(_grid_correlate_kernel, w.size * rows, src, chan, offs, w, out)
        return out

    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        if not self._direct_conv(x, w, b, stride, groups):
            return super().conv2d(x, w, b, stride, padding, dilation, groups)
        grid = _PlaneGrid(x.shape, w.shape, padding, dilation)
        x_grid, x_finite = self._to_grid(x, grid, grid.c, 0, grid.ph, grid.pw, grid.reach)
        chan, offs = grid.sources(grid.c, grid.taps)
        w2 = np.zeros((_up4(grid.f), chan.size), x.dtype)
        w2[:grid.f] = w.reshape(grid.f, -1)
        out = self._correlate(x_grid, chan, offs, w2, grid.length, "conv2d")
        y = np.empty((grid.n, grid.f, grid.oh, grid.ow), x.dtype)
        bias = np.zeros(0, x.dtype) if b is None else _c(b)
        _launch_copy(_from_grid_kernel, y.size, out, y, 0, 0, grid.wr, grid.plane, bias)
        return y, _DirectConv(grid, x_grid, x_finite)

    def conv2d_backward(self, dy, x, w, saved, stride, padding, dilation, groups, need_dx,
                        need_db):
        direct = self._direct_conv(x, w, None, stride, groups) and dy.dtype == x.dtype
        if not direct or not (saved is None or isinstance(saved, _DirectConv)):
            return super().conv2d_backward(dy, x, w, saved, stride, padding, dilation, groups,
                                           need_dx, need_db)
        if saved is None:
            grid = _PlaneGrid(x.shape, w.shape, padding, dilation)
            saved = _DirectConv(grid, *self._to_grid(x, grid, grid.c, 0, grid.ph, grid.pw,
                                                     grid.reach))
        grid = saved.grid
        w_finite = not need_dx or bool(np.isfinite(w).all())
        if not (saved.x_finite and w_finite):
            # the grid's discarded cells would meet the inf or NaN as 0 * inf = NaN
            return super().conv2d_backward(dy, x, w, None, stride, padding, dilation, groups,
                                           need_dx, need_db)
        rows = _up4(grid.f)
        dy_grid, _ = self._to_grid(dy, grid, rows, grid.reach, 0, 0, 0, "conv2d dy")
        chan, offs = grid.sources(grid.c, grid.taps, _up4(grid.c * grid.taps.size))
        parts = min(64, max(1, grid.length // _GRID_PART))
        partial = _scratch("conv2d dw", (parts, rows, chan.size), x.dtype)
        partial.fill(0)
        _launch(_grid_weight_grad_kernel, rows * chan.size * grid.length, dy_grid, grid.reach,
                saved.x_grid, chan, offs, partial)
        dw = partial.sum(axis=0)[:grid.f, :grid.c * grid.taps.size].reshape(w.shape)
        dx = db = None
        if need_dx:
            # dx[c, p] = sum_{f,t} w[f, c, t] * dy[f, p - tap_t]: the same correlation over
            # the output gradient, whose grid starts `reach` cells early for it
            wt = np.zeros((_up4(grid.c), grid.f * grid.taps.size), x.dtype)
            wt[:grid.c] = w.reshape(grid.f, grid.c, -1).transpose(1, 0, 2).reshape(grid.c, -1)
            chan, offs = grid.sources(grid.f, grid.reach - grid.taps)
            dx_grid = self._correlate(dy_grid, chan, offs, wt, grid.length, "conv2d dx")
            dx = np.empty(x.shape, x.dtype)
            _launch_copy(_from_grid_kernel, dx.size, dx_grid, dx, grid.ph, grid.pw, grid.wr,
                         grid.plane, np.zeros(0, x.dtype))
        if need_db:
            db = dy.sum(axis=(0, 2, 3))
        return dx, dw, db

    def max_pool2d(self, x, kernel, stride):
        if not _is_float(x):
            return super().max_pool2d(x, kernel, stride)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = pair(kernel), pair(stride)
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        idx = np.empty((n, c, oh, ow), dtype=np.int64)
        if kh == kw == sh == sw == 2:
            _launch(_max_pool_2x2_kernel, out.size * 4, _c(x), out, idx)
        else:
            _launch(_max_pool_kernel, out.size * kh * kw, _c(x), out, idx, kh, kw, sh, sw)
        return out, idx

    # ---- fused rows
    def _rows(self, kernel, a, axis):
        a = np.asarray(a)
        if not _is_float(a) or a.size == 0 or a.ndim == 0:
            return None
        moved = np.moveaxis(a, axis, -1)
        rows = _c(moved).reshape(-1, moved.shape[-1])
        out = np.empty_like(rows)
        _launch(kernel, rows.size, rows, out)
        return np.moveaxis(out.reshape(moved.shape), -1, axis)

    def softmax(self, a, axis):
        out = self._rows(_softmax_kernel, a, axis)
        return super().softmax(a, axis) if out is None else out

    def log_softmax(self, a, axis):
        out = self._rows(_log_softmax_kernel, a, axis)
        return super().log_softmax(a, axis) if out is None else out

    # ---- fused loss and activation gradients
    def cross_entropy(self, logits, targets):
        if not _is_float(logits) or 0 in logits.shape:
            return super().cross_entropy(logits, targets)
        check_targets(self, f"{self.name}.cross_entropy", logits, targets)
        x, t = _c(logits), _c(targets, np.int64)
        loss, top, logsum = (np.empty(x.shape[0], dtype=x.dtype) for _ in range(3))
        _launch(_cross_entropy_kernel, x.size, x, t, loss, top, logsum)
        return loss, top, logsum

    def cross_entropy_grad(self, logits, targets, top, logsum, scale):
        if not _is_float(logits) or 0 in logits.shape:
            return super().cross_entropy_grad(logits, targets, top, logsum, scale)
        check_targets(self, f"{self.name}.cross_entropy_grad", logits, targets)
        x = _c(logits)
        out = np.empty_like(x)
        _launch(_cross_entropy_grad_kernel, x.size, x, _c(targets, np.int64),
                _c(top, x.dtype), _c(logsum, x.dtype), float(scale), out)
        return out

    def activation_grad(self, op, saved, grad):
        kernel = _ACTIVATION_GRAD.get(op)
        saved, grad = np.asarray(saved), np.asarray(grad)
        if (kernel is None or saved.shape != grad.shape or saved.dtype != grad.dtype
                or not _is_float(saved)):
            return super().activation_grad(op, saved, grad)
        flat = _c(saved).reshape(-1)
        out = np.empty_like(flat)
        _launch(kernel, flat.size, flat, _c(grad).reshape(-1), out)
        return out.reshape(saved.shape)

    # ---- fused activations and normalization
    def _elementwise(self, kernel, a):
        flat = _c(a).reshape(-1)
        out = np.empty_like(flat)
        _launch(kernel, flat.size, flat, out)
        return out.reshape(a.shape)

    def gelu(self, x, approximate="none"):
        x = np.asarray(x)
        if not _is_float(x) or approximate not in _GELU:
            return super().gelu(x, approximate)
        return self._elementwise(_GELU[approximate], x)

    def normalize(self, x, eps):
        x = np.asarray(x)
        if not _is_float(x) or x.ndim != 3:
            return super().normalize(x, eps)
        y = np.empty(x.shape, dtype=x.dtype)
        mean = np.empty(x.shape[1], dtype=x.dtype)
        var = np.empty(x.shape[1], dtype=x.dtype)
        _launch(_normalize_kernel, 3 * x.size, _c(x), float(eps), y, mean, var)
        return y, mean, var

    def normalize_grad(self, y, rstd, grad):
        y, grad = np.asarray(y), np.asarray(grad)
        if not _is_float(y, grad) or y.shape != grad.shape or y.ndim != 3:
            return super().normalize_grad(y, rstd, grad)
        out = np.empty(y.shape, dtype=np.result_type(y, grad))
        _launch(_normalize_grad_kernel, 2 * y.size, _c(y), _c(rstd), _c(grad), out)
        return out

    def lstm_cell(self, gates, c):
        gates, c = np.asarray(gates), np.asarray(c)
        if not _is_float(gates, c) or gates.dtype != c.dtype or gates.ndim != 2:
            return super().lstm_cell(gates, c)
        h, c_new = np.empty_like(c), np.empty_like(c)
        _launch(_lstm_cell_kernel, gates.size, _c(gates), _c(c), h, c_new)
        return h, c_new

    def lstm_cell_grad(self, gates, c, c_new, dh, dc_new):
        arrays = [np.asarray(a) for a in (gates, c, c_new, dh, dc_new)]
        if not _is_float(*arrays) or len({a.dtype for a in arrays}) != 1:
            return super().lstm_cell_grad(gates, c, c_new, dh, dc_new)
        dgates, dc = np.empty_like(arrays[0]), np.empty_like(arrays[1])
        _launch(_lstm_cell_grad_kernel, arrays[0].size, *[_c(a) for a in arrays], dgates, dc)
        return dgates, dc

    def gru_cell(self, gx, gh, h):
        arrays = [np.asarray(a) for a in (gx, gh, h)]
        if not _is_float(*arrays) or len({a.dtype for a in arrays}) != 1:
            return super().gru_cell(gx, gh, h)
        out = np.empty_like(arrays[2])
        _launch(_gru_cell_kernel, arrays[0].size, *[_c(a) for a in arrays], out)
        return out

    def gru_cell_grad(self, gx, gh, h, dh_new):
        arrays = [np.asarray(a) for a in (gx, gh, h, dh_new)]
        if not _is_float(*arrays) or len({a.dtype for a in arrays}) != 1:
            return super().gru_cell_grad(gx, gh, h, dh_new)
        dgx, dgh, dh = np.empty_like(arrays[0]), np.empty_like(arrays[0]), np.empty_like(arrays[2])
        _launch(_gru_cell_grad_kernel, arrays[0].size, *[_c(a) for a in arrays], dgx, dgh, dh)
        return dgx, dgh, dh
