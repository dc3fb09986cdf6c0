"""The CUDA kernels, as builders: `kernel_function(key)` returns the plain Python
function of kernel `key`, a tuple of strings and ints (the builder's name, then its
arguments), so that launch.py can jit each kernel once and `--check-compile` can
rebuild exactly the kernels a test session launched.

Element-parallel kernels are grid-stride loops over a flat output; every array is
a flat C-contiguous buffer plus shapes and strides passed as tuples.
"""
import numpy as np

from . import device_functions as fn
from .device import cuda, numba

_offset, _offset2, _offset3 = fn.offset, fn.offset2, fn.offset3
_exp, _log = fn.exp, fn.log



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
    f = fn.UNARY[op]

    def unary(a, out, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = f(a[i])
            i += step
    return unary


def _b_binary(op, mode):
    f = fn.BINARY[op]
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
    better = fn.BETTER[kind]

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
    better = fn.BETTER[kind]
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
                s += _exp(src[base + j * rstride] - m)
            if log:
                ls = _log(s)
                for j in range(n):
                    p = base + j * rstride
                    out[p] = src[p] - m - ls
            else:
                for j in range(n):
                    p = base + j * rstride
                    out[p] = _exp(src[p] - m) / s
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
                acc += _exp(src[base + j * rstride] - m)
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
                ls = _log(total)
                while j < n:
                    p = base + j * rstride
                    out[p] = src[p] - m - ls
                    j += T
            else:
                while j < n:
                    p = base + j * rstride
                    out[p] = _exp(src[p] - m) / total
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


def _b_scatter_set_flat():
    def scatter_set_flat(out, idx, vals, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[idx[i]] = vals[i]
            i += step
    return scatter_set_flat


# Index kernels skip an index outside its dim and set bad[0]; the host then raises.
def _b_gather_axis():
    def gather_axis(src, index, out, n, ishape, sstr, saxis, alen, bad):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            j = index[i]
            if 0 <= j < alen:
                out[i] = src[_offset(i, ishape, sstr) + j * saxis]
            else:
                bad[0] = 1
            i += step
    return gather_axis


def _b_scatter_axis():
    def scatter_axis(out, index, src, n, ishape, ostr, oaxis, alen, sstr, bad):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            j = index[i]
            if 0 <= j < alen:
                oo, so = _offset2(i, ishape, ostr, sstr)
                cuda.atomic.add(out, oo + j * oaxis, src[so])
            else:
                bad[0] = 1
            i += step
    return scatter_axis


def _b_take_rows():
    def take_rows(table, idx, out, n, row, num_rows, bad):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            r = idx[i // row]
            if 0 <= r < num_rows:
                out[i] = table[r * row + i % row]
            else:
                bad[0] = 1
            i += step
    return take_rows


def _b_scatter_rows():
    def scatter_rows(out, idx, src, n, row, num_rows, bad):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            r = idx[i // row]
            if 0 <= r < num_rows:
                cuda.atomic.add(out, r * row + i % row, src[i])
            else:
                bad[0] = 1
            i += step
    return scatter_rows


def _b_tiled(product, dtype, T):
    """One shared-memory tiled kernel for every batched product c[z] = a[z] (x) b[z]
    of a[z] (n, k) and b[z] (k, m), contiguous at batch offsets. `product` is
    "matmul" (sum of products; `arg` is not written) or a name in SEMIRING, whose
    (x) combines and whose strictly-better test picks; then arg gets the winning l,
    the lowest on ties. `pad` fills the tile edges: 0 for matmul, the semiring's zero."""
    track = product != "matmul"
    combine, better, _ = fn.SEMIRING[product] if track else (None, None, None)
    nbt = numba.from_dtype(np.dtype(dtype))

    def tiled(a, b, c, arg, n, k, m, nb, bshape, sa, sb, pad):
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
                    acc = pad
                    bi = 0
                    for t0 in range(0, k, T):
                        if row < n and t0 + tx < k:
                            ta[ty, tx] = a[aoff + row * k + t0 + tx]
                        else:
                            ta[ty, tx] = pad
                        if col < m and t0 + ty < k:
                            tb[ty, tx] = b[boff + (t0 + ty) * m + col]
                        else:
                            tb[ty, tx] = pad
                        if T > 1:  # a one-thread tile needs no barrier
                            cuda.syncthreads()
                        for l in range(T):
                            if not track:  # zero padding adds nothing
                                acc += ta[ty, l] * tb[l, tx]
                            elif t0 + l < k:
                                v = combine(ta[ty, l], tb[l, tx])
                                if better(v, acc):  # strictly: ties keep the lowest l
                                    acc = v
                                    bi = t0 + l
                        if T > 1:
                            cuda.syncthreads()
                    if row < n and col < m:
                        p = (z * n + row) * m + col
                        c[p] = acc
                        if track:
                            arg[p] = bi
                    tj += cuda.gridDim.x
                ti += cuda.gridDim.y
            z += cuda.gridDim.z
    return tiled


def _b_im2col():
    def im2col(x, cols, n_total, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW):
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
            h = oh * sh + ki * dh - ph
            w = ow * sw + kj * dw - pw
            if h >= 0 and h < H and w >= 0 and w < W:
                cols[i] = x[((nn * C + c) * H + h) * W + w]
            else:
                cols[i] = 0
            i += step
    return im2col


def _b_col2im():
    def col2im(cols, x, n_total, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, zero):
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
                hp = h + ph - ki * dh
                if hp >= 0 and hp % sh == 0 and hp // sh < OH:
                    oh = hp // sh
                    for kj in range(kw):
                        wp = w + pw - kj * dw
                        if wp >= 0 and wp % sw == 0 and wp // sw < OW:
                            ow = wp // sw
                            acc += cols[(((nn * C + c) * kh + ki) * kw + kj) * (OH * OW)
                                        + oh * OW + ow]
            x[i] = acc
            i += step
    return col2im


def _b_max_pool():
    better = fn.BETTER["max"]

    def max_pool(x, out, idx, n_total, H, W, kh, kw, sh, sw, OH, OW):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n_total:
            ow = i % OW
            t = i // OW
            oh = t % OH
            plane = t // OH  # n * C + c
            base = plane * H * W
            h0 = oh * sh
            w0 = ow * sw
            bv = x[base + h0 * W + w0]
            bi = 0
            for r in range(kh):
                for q in range(kw):
                    v = x[base + (h0 + r) * W + w0 + q]
                    if better(v, r * kw + q, bv, bi):
                        bv = v
                        bi = r * kw + q
            out[i] = bv
            idx[i] = (h0 + bi // kw) * W + w0 + bi % kw
            i += step
    return max_pool


BUILDERS = {
    "fill": _b_fill, "arange": _b_arange, "cast": _b_cast, "strided_copy": _b_strided_copy,
    "unary": _b_unary, "binary": _b_binary, "where": _b_where,
    "sum_serial": _b_sum_serial, "sum_block": _b_sum_block,
    "best_serial": _b_best_serial, "best_block": _b_best_block,
    "softmax_serial": _b_softmax_serial, "softmax_block": _b_softmax_block,
    "gather_flat": _b_gather_flat, "scatter_add_flat": _b_scatter_add_flat,
    "scatter_set_flat": _b_scatter_set_flat,
    "gather_axis": _b_gather_axis, "scatter_axis": _b_scatter_axis,
    "take_rows": _b_take_rows, "scatter_rows": _b_scatter_rows,
    "tiled": _b_tiled,
    "im2col": _b_im2col, "col2im": _b_col2im, "max_pool": _b_max_pool,
}


def kernel_function(key):
    """The Python function of kernel `key` (uncompiled)."""
    return BUILDERS[key[0]](*key[1:])
