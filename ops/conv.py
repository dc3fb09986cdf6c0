"""Convolution and pooling (NCHW): Im2Col, Col2Im, Conv2D, MaxPool2D."""
from opgraph.operation import Operation
from opgraph.tape import is_recording

from .indexing import ScatterAdd
from .shape import Reshape


def _out_size(size, k, stride, padding):
    return (size + 2 * padding - k) // stride + 1


def square_int(name, what, value, least):
    """An int, or a pair of equal ints as PyTorch users write it ((2, 2) for 2), as one int;
    a ValueError naming `name` otherwise (ints below `least` included)."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, (tuple, list)):
        raise ValueError(f"{name}: {what} {tuple(value)} is not square; only equal height and "
                         f"width {what}s are supported")
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "positive" if least > 0 else "non-negative"
        raise ValueError(f"{name}: {what} must be a {kind} int (or a pair of equal ints), "
                         f"got {value!r}")
    return int(value)


class Im2Col(Operation):
    """cols[n, (c, i, j), (oh, ow)] = xpad[n, c, oh·s + i, ow·s + j];  dx = col2im(dcols)"""

    def __init__(self, kh, kw, stride=1, padding=0):
        self.kh, self.kw, self.stride, self.padding = kh, kw, stride, padding

    def forward(self, x):
        self.in_shape = x.shape
        return self.backend.im2col(x, self.kh, self.kw, self.stride, self.padding)

    def backward(self, grad):
        return (Col2Im(self.in_shape, self.kh, self.kw, self.stride, self.padding)(grad),)


class Col2Im(Operation):
    """x[n, c, h, w] = Σ of the cols entries that im2col read from (n, c, h, w) (its adjoint);
    dcols = im2col(dx)"""

    def __init__(self, x_shape, kh, kw, stride=1, padding=0):
        self.x_shape, self.kh, self.kw = tuple(x_shape), kh, kw
        self.stride, self.padding = stride, padding

    def forward(self, cols):
        return self.backend.col2im(cols, self.x_shape, self.kh, self.kw, self.stride, self.padding)

    def backward(self, grad):
        return (Im2Col(self.kh, self.kw, self.stride, self.padding)(grad),)


class Conv2D(Operation):
    """y[n, f] = Σ_{c,i,j} w[f, c, i, j] · xpad[n, c, oh·s + i, ow·s + j] + b[f], computed as
    cols = im2col(x), y = W·cols with W = w reshaped (F, C·kh·kw);
    dW = Σ_n dy_n · cols_nᵀ,  dx = col2im(Wᵀ · dy),  db = Σ_{n,oh,ow} dy"""

    def __init__(self, stride=1, padding=0):
        self.stride = square_int("Conv2D", "stride", stride, 1)
        self.padding = square_int("Conv2D", "padding", padding, 0)

    def forward(self, x, w, b=None):
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise ValueError(f"{self.name}: expects input (N, C, H, W) and weight (F, C, kh, kw), "
                             f"got shapes {tuple(x.shape)} and {tuple(w.shape)}")
        n, c, h, wd = x.shape
        f, cw, kh, kw = w.shape
        if c != cw:
            raise ValueError(f"{self.name}: input has {c} channels but weight {tuple(w.shape)} "
                             f"expects {cw}")
        oh, ow = _out_size(h, kh, self.stride, self.padding), _out_size(wd, kw, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: kernel {kh}x{kw} does not fit input {h}x{wd} with "
                             f"padding {self.padding}")
        if b is not None and tuple(b.shape) != (f,):
            raise ValueError(f"{self.name}: bias must have shape ({f},), got {tuple(b.shape)}")
        bk = self.backend
        self.cols = bk.im2col(x, kh, kw, self.stride, self.padding)
        y = bk.matmul(bk.reshape(w, (f, c * kh * kw)), self.cols)
        y = bk.reshape(y, (n, f, oh, ow))
        return y if b is None else bk.binary("add", y, bk.reshape(b, (1, f, 1, 1)))

    def backward(self, grad):
        x, w = self.inputs[0], self.inputs[1]
        n, f, oh, ow = grad.shape
        kh, kw = w.shape[2], w.shape[3]
        g = grad.reshape(n, f, oh * ow)
        w2 = w.reshape(f, -1)
        # the saved cols are reused, unless a graph of the backward itself is being built
        cols = (Im2Col(kh, kw, self.stride, self.padding)(x) if is_recording()
                else self.constant(self.cols))
        dw = (g @ cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
        dx = Col2Im(x.shape, kh, kw, self.stride, self.padding)(w2.T @ g)
        if len(self.inputs) == 3:
            return dx, dw, grad.sum((0, 2, 3))
        return dx, dw


class MaxPool2D(Operation):
    """y[n, c, oh, ow] = max of the kernel×kernel window at (oh·s, ow·s);
    dx = dy routed to the first maximum (row-major) of each window, summed where windows overlap"""

    def __init__(self, kernel_size, stride=None):
        self.kernel = square_int("MaxPool2D", "kernel_size", kernel_size, 1)
        self.stride = self.kernel if stride is None else square_int("MaxPool2D", "stride", stride, 1)

    def forward(self, x):
        if len(x.shape) != 4:
            raise ValueError(f"{self.name}: expects input (N, C, H, W), got shape {tuple(x.shape)}")
        if self.kernel > x.shape[2] or self.kernel > x.shape[3]:
            raise ValueError(f"{self.name}: kernel {self.kernel} is larger than the input "
                             f"{x.shape[2]}x{x.shape[3]}")
        out, idx = self.backend.max_pool2d(x, self.kernel, self.stride)
        n, c, oh, ow = out.shape
        self.in_shape = x.shape
        self.idx = self.backend.reshape(idx, (n, c, oh * ow))
        return out

    def backward(self, grad):
        n, c, h, w = self.in_shape
        g = grad.reshape(n, c, -1)
        dx = ScatterAdd((n, c, h * w), 2)(g, self.constant(self.idx))
        return (Reshape(self.in_shape)(dx),)
