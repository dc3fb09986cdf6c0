"""Convolution and pooling (NCHW): Im2Col, Col2Im, Conv2D, MaxPool2D, AvgPool2D."""
from opgraph.operation import Operation
from opgraph.tape import is_recording

from .indexing import ScatterAdd
from .padding import pad_array
from .shape import Index, Reshape


def _out_size(size, k, stride, padding, dilation=1):
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def as_pair(name, what, value, least):
    """An int or a pair of ints (height, width), each at least `least`, as a tuple of two."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(parts) != 2 or any(isinstance(v, bool) or not hasattr(v, "__index__") or v < least
                              for v in parts):
        kind = "positive" if least > 0 else "non-negative"
        raise ValueError(f"{name}: {what} must be a {kind} int or a pair of {kind} ints, got "
                         f"{value!r}")
    return int(parts[0]), int(parts[1])


def _kernel_arg(pair):
    """What a backend kernel takes: one int when both dims agree, else the pair."""
    return pair[0] if pair[0] == pair[1] else pair


class Im2Col(Operation):
    """cols[n, (c, i, j), (oh, ow)] = xpad[n, c, oh·sh + i·dh, ow·sw + j·dw] (zero padding
    ph, pw; strides sh, sw; dilations dh, dw);  dx = col2im(dcols)"""
    saves = ()

    def __init__(self, kh, kw, stride=1, padding=0, dilation=1):
        self.kh, self.kw, self.stride, self.padding = kh, kw, stride, padding
        self.dilation = dilation

    def forward(self, x):
        self.in_shape = x.shape
        return _im2col(self.backend, x, self.kh, self.kw, self.stride, self.padding,
                       self.dilation)

    def backward(self, grad):
        return (Col2Im(self.in_shape, self.kh, self.kw, self.stride, self.padding,
                       self.dilation)(grad),)


class Col2Im(Operation):
    """x[n, c, h, w] = Σ of the cols entries that im2col read from (n, c, h, w) (its adjoint);
    dcols = im2col(dx)"""
    saves = ()

    def __init__(self, x_shape, kh, kw, stride=1, padding=0, dilation=1):
        self.x_shape, self.kh, self.kw = tuple(x_shape), kh, kw
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, cols):
        return _col2im(self.backend, cols, self.x_shape, self.kh, self.kw, self.stride,
                       self.padding, self.dilation)

    def backward(self, grad):
        return (Im2Col(self.kh, self.kw, self.stride, self.padding, self.dilation)(grad),)


def _im2col(backend, x, kh, kw, stride, padding, dilation):
    args = (x, kh, kw, _kernel_arg(as_pair("Im2Col", "stride", stride, 1)),
            _kernel_arg(as_pair("Im2Col", "padding", padding, 0)))
    dilation = as_pair("Im2Col", "dilation", dilation, 1)
    return backend.im2col(*args) if dilation == (1, 1) else backend.im2col(
        *args, _kernel_arg(dilation))


def _col2im(backend, cols, x_shape, kh, kw, stride, padding, dilation):
    args = (cols, x_shape, kh, kw, _kernel_arg(as_pair("Col2Im", "stride", stride, 1)),
            _kernel_arg(as_pair("Col2Im", "padding", padding, 0)))
    dilation = as_pair("Col2Im", "dilation", dilation, 1)
    return backend.col2im(*args) if dilation == (1, 1) else backend.col2im(
        *args, _kernel_arg(dilation))


class Conv2D(Operation):
    """y[n, f] = Σ_{c,i,j} w[f, c, i, j] · xpad[n, g·C/G + c, oh·sh + i·dh, ow·sw + j·dw] + b[f]
    for filter f of group g = f // (F/G) (G groups, w (F, C/G, kh, kw));
    dW_g = dY_g · cols_gᵀ,  dx = patchesᵀ(W_gᵀ · dY_g for every g),  db = Σ_{n,oh,ow} dy
    with cols = patches(x) (C·kh·kw, N·OH·OW) and dY = dy as (F, N·OH·OW).
    The backend computes them (Backend.conv2d / conv2d_backward): by default one
    matrix product per group for the whole batch, Y_g = W_g · cols_g; the Numba-CPU
    backend convolves stride 1, one group directly, as sums of shifted rows of the
    zero-padded input, without the cols matrix."""
    saves = (0, 1)

    def __init__(self, stride=1, padding=0, dilation=1, groups=1):
        self.stride = as_pair("Conv2D", "stride", stride, 1)
        self.padding = as_pair("Conv2D", "padding", padding, 0)
        self.dilation = as_pair("Conv2D", "dilation", dilation, 1)
        if isinstance(groups, bool) or not hasattr(groups, "__index__") or groups < 1:
            raise ValueError(f"Conv2D: groups must be a positive int, got {groups!r}")
        self.groups = int(groups)

    def forward(self, x, w, b=None):
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise ValueError(f"{self.name}: expects input (N, C, H, W) and weight (F, C/groups, "
                             f"kh, kw), got shapes {tuple(x.shape)} and {tuple(w.shape)}")
        n, c, h, wd = x.shape
        f, cw, kh, kw = w.shape
        g = self.groups
        if g == 1 and c != cw:
            raise ValueError(f"{self.name}: input has {c} channels but weight {tuple(w.shape)} "
                             f"expects {cw}")
        if c != cw * g or f % g:
            raise ValueError(f"{self.name}: input with {c} channels and weight {tuple(w.shape)} "
                             f"do not fit groups={g} (expected {cw * g} input channels and a "
                             f"multiple of {g} filters)")
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(wd, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            dil = f" with dilation {self.dilation}" if self.dilation != (1, 1) else ""
            raise ValueError(f"{self.name}: kernel {kh}x{kw}{dil} does not fit input {h}x{wd} "
                             f"with padding {self.padding}")
        if b is not None and tuple(b.shape) != (f,):
            raise ValueError(f"{self.name}: bias must have shape ({f},), got {tuple(b.shape)}")
        y, self.saved = self.backend.conv2d(x, w, b, self.stride, self.padding, self.dilation,
                                            g)
        return y

    def backward(self, grad):
        if is_recording():  # create_graph: a backward made of ops, differentiable again
            return self._backward_as_ops(grad)
        x, w = self.inputs[0], self.inputs[1]
        with_bias = len(self.inputs) == 3
        dx, dw, db = self.backend.conv2d_backward(
            grad.data, x.data, w.data, self.saved, self.stride, self.padding, self.dilation,
            self.groups, x.requires_grad, with_bias)
        grads = (None if dx is None else self.constant(dx), self.constant(dw))
        return grads + (self.constant(db),) if with_bias else grads

    def _backward_as_ops(self, grad):
        x, w = self.inputs[0], self.inputs[1]
        n, f, oh, ow = grad.shape
        kh, kw = w.shape[2], w.shape[3]
        g = self.groups
        conv = (kh, kw, self.stride, self.padding, self.dilation)
        cols = Im2Col(*conv)(x)  # recomputed as an op: its gradient flows into x
        if g == 1:
            dy = grad.reshape(n, f, oh * ow)
            w2 = w.reshape(f, -1)
            dw = (dy @ cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
            dcols = w2.T @ dy
        else:
            k = w.shape[1] * kh * kw
            dy = grad.reshape(n, g, f // g, oh * ow)
            cols = cols.reshape(n, g, k, oh * ow)
            w3 = w.reshape(1, g, f // g, k)
            dw = (dy @ cols.transpose(0, 1, 3, 2)).sum(0).reshape(w.shape)
            dcols = (w3.transpose(0, 1, 3, 2) @ dy).reshape(n, g * k, oh * ow)
        dx = Col2Im(x.shape, *conv)(dcols)
        if len(self.inputs) == 3:
            return dx, dw, grad.sum((0, 2, 3))
        return dx, dw


def pool_geometry(name, x_shape, kernel, stride, padding, dilation, ceil_mode):
    """Output size and right-hand padding of a pooling window over (N, C, H, W) as torch:
    ((oh, ow), ((ph, ph_right), (pw, pw_right))), the right side padded for ceil_mode."""
    if len(x_shape) != 4:
        raise ValueError(f"{name}: expects input (N, C, H, W), got shape {tuple(x_shape)}")
    out, pads = [], []
    for size, k, s, p, d in zip(x_shape[2:], kernel, stride, padding, dilation):
        if p > k // 2:
            raise ValueError(f"{name}: padding {padding} must be at most half the kernel size "
                             f"{kernel}")
        span = d * (k - 1) + 1
        o = (size + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1  # the last window would start in the right padding
        if o < 1:
            shown = kernel[0] if kernel[0] == kernel[1] else kernel
            pad = f" with padding {padding}" if any(padding) else ""
            raise ValueError(f"{name}: kernel {shown} is larger than the input "
                             f"{x_shape[2]}x{x_shape[3]}{pad}")
        out.append(o)
        pads.append((p, max((o - 1) * s + span - size - p, 0)))
    return tuple(out), tuple(pads)


class MaxPool2D(Operation):
    """y[n, c, oh, ow] = max over i < kh, j < kw of xpad[n, c, oh·sh + i·dh, ow·sw + j·dw],
    x padded with -inf (dilations dh, dw; ceil_mode: the last window may overhang on the
    right, as torch);
    dx = dy routed to the first maximum (row-major) of each window, summed where windows overlap"""
    saves = ()

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1):
        self.kernel = as_pair("MaxPool2D", "kernel_size", kernel_size, 1)
        self.stride = self.kernel if stride is None or (
            isinstance(stride, (tuple, list)) and not stride) else as_pair(
            "MaxPool2D", "stride", stride, 1)
        self.padding = as_pair("MaxPool2D", "padding", padding, 0)
        self.dilation = as_pair("MaxPool2D", "dilation", dilation, 1)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        (oh, ow), pads = pool_geometry(self.name, x.shape, self.kernel, self.stride,
                                       self.padding, self.dilation, self.ceil_mode)
        b = self.backend
        self.in_shape, self.pads = tuple(x.shape), pads
        if any(lo or hi for lo, hi in pads):
            low = float("-inf") if x.dtype.kind == "f" else _lowest(x.dtype)
            x = pad_array(b, x, ((0, 0), (0, 0)) + pads, low)
        n, c = x.shape[0], x.shape[1]
        self.padded_shape = tuple(x.shape)
        if self.dilation == (1, 1):
            out, idx = b.max_pool2d(x, _kernel_arg(self.kernel), _kernel_arg(self.stride))
            self.idx = b.reshape(idx, (n, c, oh * ow))
            return out
        # dilated windows: gather them with im2col, then the first maximum of each
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        wp = self.padded_shape[3]
        cols = b.im2col(x, kh, kw, _kernel_arg(self.stride), 0, _kernel_arg(self.dilation))
        windows = b.reshape(cols, (n, c, kh * kw, oh * ow))
        pick = b.argmax(windows, 2)                      # (n, c, oh·ow), first maximum
        row = _floor_div(b, pick, kw)
        col = b.binary("sub", pick, b.binary("mul", row, kw))
        # the window's top-left corner in the padded plane, from the geometry alone
        corner = b.asarray([(i // ow) * sh * wp + (i % ow) * sw for i in range(oh * ow)],
                           dtype=pick.dtype)
        offset = b.binary("add", b.binary("mul", row, dh * wp), b.binary("mul", col, dw))
        self.idx = b.binary("add", offset, corner)
        return b.reshape(b.max(windows, 2), (n, c, oh, ow))

    def indices(self):
        """Flat positions in the unpadded H·W plane of each window's maximum (torch's
        return_indices)."""
        b = self.backend
        n, c, h, w = self.in_shape
        wp = self.padded_shape[3]
        (ph, _), (pw, _) = self.pads
        flat = self.idx
        row = _floor_div(b, flat, wp)
        col = b.binary("sub", flat, b.binary("mul", row, wp))
        out = b.binary("add", b.binary("mul", b.binary("sub", row, ph), w), b.binary("sub", col, pw))
        return out

    def backward(self, grad):
        n, c, hp, wp = self.padded_shape
        g = grad.reshape(n, c, grad.shape[2] * grad.shape[3])  # no -1: an empty batch works
        dx = Reshape(self.padded_shape)(ScatterAdd((n, c, hp * wp), 2)(g, self.constant(self.idx)))
        if self.padded_shape != self.in_shape:
            (ph, _), (pw, _) = self.pads
            dx = Index((slice(None), slice(None), slice(ph, ph + self.in_shape[2]),
                        slice(pw, pw + self.in_shape[3])))(dx)
        return (dx,)


def _lowest(dtype):
    import numpy as np  # dtype metadata only, not tensor data
    return np.iinfo(dtype).min if dtype.kind in "iu" else False


def _floor_div(backend, a, d):
    """a // d for a non-negative int64 array and a positive int (via float division)."""
    b = backend
    return b.astype(b.binary("div", a, d), a.dtype)  # truncation: exact below 2**52


class AvgPool2D(Operation):
    """y[n, c, oh, ow] = Σ of the kh×kw window at (oh·sh - ph, ow·sw - pw) of x padded with
    zeros / divisor, the divisor kh·kw (count_include_pad, the window clipped to the padded
    input as torch), the count of real inputs in the window (count_include_pad=False) or
    divisor_override;  dx = col2im(dy / divisor spread over each window)"""
    saves = ()

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        self.kernel = as_pair("AvgPool2D", "kernel_size", kernel_size, 1)
        self.stride = self.kernel if stride is None or (
            isinstance(stride, (tuple, list)) and not stride) else as_pair(
            "AvgPool2D", "stride", stride, 1)
        self.padding = as_pair("AvgPool2D", "padding", padding, 0)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        if divisor_override is not None and (isinstance(divisor_override, bool) or not hasattr(
                divisor_override, "__index__") or divisor_override == 0):
            raise ValueError(f"AvgPool2D: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        self.divisor_override = divisor_override

    def _inverse_divisor(self, size, out, dtype):
        """(oh, ow) array of 1/divisor for each window."""
        counts = []
        for n, o, k, s, p in zip(size, out, self.kernel, self.stride, self.padding):
            row = []
            for i in range(o):
                start = i * s - p
                end = min(start + k, n + p)
                if not self.count_include_pad:
                    start, end = max(start, 0), min(end, n)
                row.append(end - start)
            counts.append(row)
        if self.divisor_override is not None:
            table = [[1.0 / self.divisor_override] * out[1] for _ in range(out[0])]
        else:
            table = [[1.0 / (a * b) for b in counts[1]] for a in counts[0]]
        return self.backend.asarray(table, dtype=dtype)

    def forward(self, x):
        (oh, ow), pads = pool_geometry(self.name, x.shape, self.kernel, self.stride,
                                       self.padding, (1, 1), self.ceil_mode)
        if x.dtype.kind != "f":
            raise TypeError(f"{self.name}: expects a floating-point input, got dtype {x.dtype}")
        b = self.backend
        n, c, h, w = x.shape
        self.in_shape, self.pads = tuple(x.shape), pads
        if any(lo or hi for lo, hi in pads):
            x = pad_array(b, x, ((0, 0), (0, 0)) + pads, 0.0)
        self.padded_shape = tuple(x.shape)
        kh, kw = self.kernel
        cols = b.im2col(x, kh, kw, _kernel_arg(self.stride), 0)
        total = b.sum(b.reshape(cols, (n, c, kh * kw, oh * ow)), (2,))
        self.inv = self._inverse_divisor((h, w), (oh, ow), x.dtype)
        return b.binary("mul", b.reshape(total, (n, c, oh, ow)), self.inv)

    def backward(self, grad):
        n, c, oh, ow = grad.shape
        kh, kw = self.kernel
        g = (grad * self.constant(self.inv)).reshape(n, c, 1, oh * ow)
        spread = g.broadcast_to(n, c, kh * kw, oh * ow).reshape(n, c * kh * kw, oh * ow)
        dx = Col2Im(self.padded_shape, kh, kw, self.stride, 0)(spread)
        if self.padded_shape != self.in_shape:
            (ph, _), (pw, _) = self.pads
            dx = Index((slice(None), slice(None), slice(ph, ph + self.in_shape[2]),
                        slice(pw, pw + self.in_shape[3])))(dx)
        return (dx,)
