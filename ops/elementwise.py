"""Elementwise ops. Binary ops broadcast like NumPy and sum the gradient back
to each input's shape."""
from opgraph.operation import Operation
from opgraph.tape import is_recording
from opgraph.tensor import check_fits, weak_scalar

from .shape import broadcast_shapes, sum_to_shape


class _Binary(Operation):
    kernel = None
    promote = True

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes(self.name, a.shape, b.shape)
        return self.backend.binary(self.kernel, a, b)


class Add(_Binary):
    """z = a + b;  da = dz, db = dz (each summed to its input's shape)"""
    saves = ("cond",)  # the condition array may be a bool tensor's own data
    kernel = "add"
    wraps = True

    def backward(self, grad):
        a, b = self.inputs  # (an input that needs no gradient gets None: not computed)
        return (sum_to_shape(grad, a.shape) if a.requires_grad else None,
                sum_to_shape(grad, b.shape) if b.requires_grad else None)


class Sub(_Binary):
    """z = a - b;  da = dz, db = -dz"""
    saves = ("cond",)  # the condition array may be a bool tensor's own data
    kernel = "sub"
    wraps = True

    def forward(self, a, b):
        if a.dtype.kind == "b" and b.dtype.kind == "b":
            raise TypeError(f"{self.name}: subtracting two bool tensors is not supported (as "
                            "torch and NumPy); use where() or convert with .long()/.float()")
        return super().forward(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(grad, a.shape) if a.requires_grad else None,
                sum_to_shape(-grad, b.shape) if b.requires_grad else None)


def crossed_saves(op):
    """The inputs a product's backward reads: each input for the other's gradient only."""
    a, b = op._inputs
    return tuple(i for i, other in ((0, b), (1, a)) if other.requires_grad)


class Mul(_Binary):
    """z = a · b;  da = dz · b, db = dz · a"""
    kernel = "mul"
    wraps = True
    saves = property(crossed_saves)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(grad * b, a.shape) if a.requires_grad else None,
                sum_to_shape(grad * a, b.shape) if b.requires_grad else None)


class Div(_Binary):
    """z = a / b;  da = dz / b, db = -dz · a / b²"""
    floating = True
    kernel = "div"

    @property
    def saves(self):
        return (0, 1) if self._inputs[1].requires_grad else (1,)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(grad / b, a.shape) if a.requires_grad else None,
                sum_to_shape(-grad * a / (b * b), b.shape) if b.requires_grad else None)


class _Division(_Binary):
    """floor_divide / remainder / fmod: integer operands divided by zero are a
    ZeroDivisionError naming the op (as torch; NumPy would warn and give 0)."""

    def forward(self, a, b):
        bk = self.backend
        if a.dtype.kind == "b" and b.dtype.kind == "b":
            raise TypeError(f"{self.name}: not supported for two bool tensors (as torch); "
                            "convert with .long() or .float()")
        if a.dtype.kind in "iu" and b.dtype.kind in "iu" and 0 not in b.shape and \
                bk.to_numpy(bk.sum(bk.astype(bk.binary("eq", b, 0), "int64"))) > 0:
            raise ZeroDivisionError(f"{self.name}: integer division by zero ({a.dtype} "
                                    f"{tuple(a.shape)} by {b.dtype} {tuple(b.shape)} with zeros)")
        return super().forward(a, b)

    def _quotient(self, rounding):
        """floor(a / b) or trunc(a / b) as a constant of the gradient's float dtype."""
        a, b = (t.data for t in self.inputs)
        bk = self.backend
        q = bk.binary("floor_divide", a, b)
        if rounding == "trunc":  # one more than the floor where fmod and % differ in sign
            q = bk.binary("add", q, bk.astype(bk.binary(
                "ne", bk.binary("fmod", a, b), bk.binary("remainder", a, b)), q.dtype))
        return self.constant(q)


class FloorDivide(_Division):
    """z = floor(a / b) (torch.floor_divide, Python's //);  da = 0, db = 0 (a step
    function, as torch)"""
    saves = ()
    kernel = "floor_divide"

    def backward(self, grad):
        a, b = self.inputs
        zero = grad * 0
        return (sum_to_shape(zero, a.shape) if a.requires_grad else None,
                sum_to_shape(zero, b.shape) if b.requires_grad else None)


class Remainder(_Division):
    """z = a - b · floor(a / b) (the sign of b, as Python's % and torch.remainder);
    da = dz, db = -dz · floor(a / b)"""
    saves = (0, 1)
    kernel = "remainder"

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(grad, a.shape) if a.requires_grad else None,
                sum_to_shape(-grad * self._quotient("floor"), b.shape) if b.requires_grad
                else None)


class Fmod(_Division):
    """z = a - b · trunc(a / b) (C's fmod: the sign of a, as torch.fmod);
    da = dz, db = -dz · trunc(a / b)"""
    saves = (0, 1)
    kernel = "fmod"

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(grad, a.shape) if a.requires_grad else None,
                sum_to_shape(-grad * self._quotient("trunc"), b.shape) if b.requires_grad
                else None)


class Pow(Operation):
    """y = x^p for a scalar p;  dx = dy · p · x^(p-1)"""
    saves = (0,)

    def __init__(self, exponent):
        self.exponent = weak_scalar(exponent)
        self.floating = isinstance(self.exponent, float)  # int64 ** 2.0 is float32, as torch

    def forward(self, x):
        p = self.exponent
        if x.dtype.kind in "iub" and hasattr(p, "__index__") and p < 0:  # an integer power
            raise ValueError(f"{self.name}: an integer tensor ({x.dtype}) to the negative integer "
                             f"power {p!r} is not allowed (as NumPy and torch); use a float "
                             "tensor or exponent")
        check_fits(self.name, p, x.dtype)
        if x.dtype.kind == "b" and isinstance(p, bool):  # as torch: x ** True is x (bool)
            return self.backend.astype(self.backend.binary("pow", x, p), x.dtype)
        return self.backend.binary("pow", x, p)

    def backward(self, grad):
        (x,) = self.inputs
        p = self.exponent
        if p == 0:
            return (grad * 0,)
        return (grad * p * (x ** (p - 1) if p != 2 else x),)


class PowTensor(_Binary):
    """z = a^b elementwise (b a tensor, broadcasting);
    da = dz · b · a^(b-1)  (0 at a = b = 0, as torch),
    db = dz · a^b · log a  (0 where a = 0 and b >= 0, as torch)"""
    saves = (0, 1, "output")
    kernel = "pow"

    def forward(self, a, b):
        bk = self.backend
        if a.dtype.kind == "b" and b.dtype.kind == "b":  # NumPy would give int8
            raise TypeError(f"{self.name}: a bool tensor to a bool tensor power is not "
                            "supported (as torch); convert one with .long() or .float()")
        if a.dtype.kind in "iub" and b.dtype.kind in "iub" and 0 not in b.shape \
                and int(bk.to_numpy(bk.min(b))) < 0:
            raise ValueError(f"{self.name}: integer tensors ({a.dtype} ** {b.dtype}) to negative "
                             "integer powers are not allowed (as NumPy); use float tensors")
        return super().forward(a, b)

    def backward(self, grad):
        a, b = self.inputs
        bk = self.backend
        one, zero = (self.constant(bk.full((), v, a.dtype)) for v in (1, 0))
        a_zero = bk.binary("eq", a.data, 0)
        # 0^0: da is 0 (as torch), not 0 · 0^-1 = NaN; a base of 1 there keeps the infinity
        # out of the graph (second order stays finite); elsewhere the formula holds as it is
        zero_zero = bk.where(a_zero, bk.binary("eq", b.data, 0), False)
        safe_a = Where(zero_zero)(one, a)
        da = Where(zero_zero)(zero, grad * b * safe_a ** (b - 1))
        # a^b is flat in b where a = 0 and b >= 0; keep log(0) out of the graph there
        zero_base = bk.where(a_zero, bk.binary("ge", b.data, 0), False)
        log_a = Where(zero_base)(zero, Where(zero_base)(one, a).log())
        db = grad * self.output * log_a
        return sum_to_shape(da, a.shape), sum_to_shape(db, b.shape)


class _Extremum(_Binary):
    """Maximum / Minimum: the gradient goes to the winning side, half to each on ties
    (as torch.maximum); the masks are constants, so the backward is linear in dz."""
    saves = (0, 1)
    promote = True
    wins = None  # "gt" for Maximum, "lt" for Minimum

    def backward(self, grad):
        a, b = self.inputs
        bk = self.backend
        dtype = grad.dtype
        tie = bk.binary("mul", bk.astype(bk.binary("eq", a.data, b.data), dtype), 0.5)
        to_a = bk.binary("add", bk.astype(bk.binary(self.wins, a.data, b.data), dtype), tie)
        to_b = bk.binary("add", bk.astype(bk.binary(self.wins, b.data, a.data), dtype), tie)
        return (sum_to_shape(grad * self.constant(to_a), a.shape),
                sum_to_shape(grad * self.constant(to_b), b.shape))


class Maximum(_Extremum):
    """z = max(a, b) elementwise (NaN if either is NaN);
    da = dz · ([a > b] + ½[a = b]),  db = dz · ([b > a] + ½[a = b])"""
    kernel = "maximum"
    wins = "gt"


class Minimum(_Extremum):
    """z = min(a, b) elementwise (NaN if either is NaN);
    da = dz · ([a < b] + ½[a = b]),  db = dz · ([b < a] + ½[a = b])"""
    kernel = "minimum"
    wins = "lt"


class Clamp(Operation):
    """y = min(max(x, low), high) for scalar bounds (either may be None; all of y is high
    when low > high, as torch.clamp);  dx = dy · [low <= x <= high]"""
    saves = (0,)

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, x):
        bk = self.backend
        y = x if self.low is None else bk.binary("maximum", x, self.low)
        return y if self.high is None else bk.binary("minimum", y, self.high)

    def backward(self, grad):
        return (grad * self.constant(_inside(self.backend, self.inputs[0].data, self.low,
                                             self.high, grad.dtype)),)


def _inside(bk, x, low, high, dtype):
    """[low <= x <= high] as a float mask (a None bound is no bound)."""
    mask = bk.full((), 1, dtype)
    for kind, bound in (("ge", low), ("le", high)):
        if bound is not None:
            mask = bk.binary("mul", mask, bk.astype(bk.binary(kind, x, bound), dtype))
    return mask


class ClampTensor(Operation):
    """y = min(max(x, low), high) with tensor bounds (broadcasting; torch.clamp);
    dx = dy · [low <= x <= high],  dlow = dy · [x < low < high],
    dhigh = dy · [x > high or low > high]  (as torch, so neither bound has a gradient where
    x < low = high; each summed to its input's shape)"""
    saves = (0, 1, 2)
    promote = True

    def forward(self, x, low, high):
        self.out_shape = broadcast_shapes(self.name, x.shape, low.shape, high.shape)
        bk = self.backend
        return bk.binary("minimum", bk.binary("maximum", x, low), high)

    def backward(self, grad):
        x, low, high = self.inputs
        bk = self.backend
        f = grad.dtype
        def mask(kind, u, v):
            return bk.astype(bk.binary(kind, u, v), f)
        to_x = bk.binary("mul", mask("ge", x.data, low.data), mask("le", x.data, high.data))
        # as torch: where x < low == high neither bound gets the gradient
        to_low = bk.binary("mul", mask("lt", x.data, low.data), mask("lt", low.data, high.data))
        to_high = bk.binary("maximum", mask("gt", x.data, high.data),
                            mask("gt", low.data, high.data))
        return (sum_to_shape(grad * self.constant(to_x), x.shape),
                sum_to_shape(grad * self.constant(to_low), low.shape),
                sum_to_shape(grad * self.constant(to_high), high.shape))


class Clone(Operation):
    """y = a copy of x with storage of its own;  dx = dy"""
    saves = ("cond",)  # the condition array may be a bool tensor's own data

    def forward(self, x):
        return self.backend.copy(x)

    def backward(self, grad):
        return (grad,)


class _Unary(Operation):
    kernel = None

    def forward(self, x):
        return self.backend.unary(self.kernel, x)


class Neg(_Unary):
    """y = -x;  dx = -dy"""
    saves = ("cond",)  # the condition array may be a bool tensor's own data
    kernel = "neg"

    def forward(self, x):
        if x.dtype.kind == "b":
            raise TypeError(f"{self.name}: negating a bool tensor is not supported (as torch "
                            "and NumPy); use where() or convert with .long()/.float()")
        return super().forward(x)

    def backward(self, grad):
        return (-grad,)


class Exp(_Unary):
    """y = exp(x);  dx = dy · y"""
    floating = True
    saves = ("output",)
    kernel = "exp"

    def backward(self, grad):
        return (grad * self.output,)


class Log(_Unary):
    """y = log(x);  dx = dy / x"""
    floating = True
    saves = (0,)
    kernel = "log"

    def backward(self, grad):
        return (grad / self.inputs[0],)


class LogWithEpsilon(Operation):
    """y = log(x + eps);  dx = dy / (x + eps)"""
    floating = True
    saves = (0,)

    def __init__(self, eps):
        self.eps = weak_scalar(eps)

    def forward(self, x):
        return self.backend.unary("log", self.backend.binary("add", x, self.eps))

    def backward(self, grad):
        return (grad / (self.inputs[0] + self.eps),)


class Sin(_Unary):
    """y = sin(x);  dx = dy · cos(x)"""
    floating = True
    saves = (0,)
    kernel = "sin"

    def backward(self, grad):
        return (grad * self.inputs[0].cos(),)


class Cos(_Unary):
    """y = cos(x);  dx = -dy · sin(x)"""
    floating = True
    saves = (0,)
    kernel = "cos"

    def backward(self, grad):
        return (-grad * self.inputs[0].sin(),)


class Sqrt(_Unary):
    """y = √x;  dx = dy / (2y)"""
    floating = True
    saves = ("output",)
    kernel = "sqrt"

    def backward(self, grad):
        return (grad / (2 * self.output),)


class Rsqrt(_Unary):
    """y = 1/√x;  dx = -dy · y³ / 2"""
    floating = True
    saves = ("output",)
    kernel = "rsqrt"

    def backward(self, grad):
        y = self.output
        return (grad * y * y * y * -0.5,)


class Abs(_Unary):
    """y = |x|;  dx = dy · sign(x)"""
    saves = (0,)
    kernel = "abs"

    def backward(self, grad):
        return (grad * self.constant(self.backend.unary("sign", self.inputs[0].data)),)


class ReLU(_Unary):
    """y = max(x, 0);  dx = dy · [x > 0]"""
    saves = ("output",)
    kernel = "relu"

    def forward(self, x):
        if x.dtype.kind == "b":  # max(True, 0) has no bool meaning; NumPy would say int64
            raise TypeError(f"{self.name}: bool tensors are not supported (as torch); convert "
                            "with .float() or .long()")
        return super().forward(x)

    def backward(self, grad):
        y = self.output  # y > 0 exactly where x > 0: reading y lets relu_ work in place
        bk = self.backend
        mask = bk.astype(bk.binary("gt", y.data, 0), y.dtype)
        if is_recording():  # create_graph: a product op, differentiable again
            return (grad * self.constant(mask),)
        return (self.constant(bk.binary("mul", grad.data, mask)),)


class Sigmoid(_Unary):
    """y = 1 / (1 + exp(-x));  dx = dy · y · (1 - y)  (SigmoidGrad, one fused kernel)"""
    floating = True
    saves = ("output",)
    kernel = "sigmoid"

    def backward(self, grad):
        return (SigmoidGrad()(self.output, grad),)


class Tanh(_Unary):
    """y = tanh(x);  dx = dy · (1 - y²)  (TanhGrad, one fused kernel)"""
    floating = True
    saves = ("output",)
    kernel = "tanh"

    def backward(self, grad):
        return (TanhGrad()(self.output, grad),)


class SiLU(_Unary):
    """y = x · σ(x);  dx = dy · σ(x) · (1 + x · (1 - σ(x)))  (SiLUGrad, one fused kernel)"""
    floating = True
    saves = (0,)
    kernel = "silu"

    def backward(self, grad):
        return (SiLUGrad()(self.inputs[0], grad),)


class _ActivationGrad(Operation):
    """g · f'(x) from what the activation saved (y, or x for SiLU) and the incoming
    gradient g, in one backend pass (backend.activation_grad); an op of its own, as
    torch's sigmoid_backward, so that second order works."""
    saves = (0, 1)
    kernel = None

    def forward(self, saved, grad):
        return self.backend.activation_grad(self.kernel, saved, grad)


class SigmoidGrad(_ActivationGrad):
    """z = g · y · (1 - y) for inputs y = sigmoid(x) and g (the incoming gradient);
    dy = dz · g · (1 - 2y),  dg = dz · y · (1 - y)"""
    kernel = "sigmoid"

    def backward(self, gz):
        y, grad = self.inputs
        return gz * grad * (1 - 2 * y), SigmoidGrad()(y, gz)


class TanhGrad(_ActivationGrad):
    """z = g · (1 - y²) for inputs y = tanh(x) and g (the incoming gradient);
    dy = -2 · dz · g · y,  dg = dz · (1 - y²)"""
    kernel = "tanh"

    def backward(self, gz):
        y, grad = self.inputs
        return -2 * gz * grad * y, TanhGrad()(y, gz)


class SiLUGrad(_ActivationGrad):
    """z = g · σ · (1 + x(1 - σ)) for inputs x and g (the incoming gradient), σ = sigmoid(x);
    dx = dz · g · σ(1 - σ)(2 + x(1 - 2σ)),  dg = dz · σ · (1 + x(1 - σ))"""
    kernel = "silu"

    def backward(self, gz):
        x, grad = self.inputs
        s = x.sigmoid()
        return gz * grad * s * (1 - s) * (2 + x * (1 - 2 * s)), SiLUGrad()(x, gz)


class Where(Operation):
    """z = cond ? a : b (cond a constant bool array, all three broadcast);
    da = where(cond, dz, 0), db = where(cond, 0, dz), each summed to its input's shape"""
    saves = ("cond",)  # the condition array may be a bool tensor's own data

    promote = True

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        self.out_shape = broadcast_shapes(self.name, self.cond.shape, a.shape, b.shape)
        return self.backend.where(self.cond, a, b)

    def backward(self, grad):
        a, b = self.inputs
        zero = self.constant(self.backend.zeros((), grad.dtype))
        return (sum_to_shape(Where(self.cond)(grad, zero), a.shape),
                sum_to_shape(Where(self.cond)(zero, grad), b.shape))


class AsType(Operation):
    """y = x converted to another float dtype;  dx = dy converted back"""
    saves = ()

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.in_dtype = x.dtype
        return self.backend.astype(x, self.dtype)

    def backward(self, grad):
        return (AsType(self.in_dtype)(grad),)


class ToBackend(Operation):
    """y = x copied to another backend;  dx = dy copied back"""
    saves = ()

    def __init__(self, target):
        self.target = target

    def __call__(self, x):
        self.source = x.backend
        out = super().__call__(x)
        out.backend = self.target
        return out

    def forward(self, x):
        return self.target.asarray(self.backend.to_numpy(x))

    def backward(self, grad):
        return (ToBackend(self.source)(grad),)
