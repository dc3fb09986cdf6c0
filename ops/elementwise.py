"""Elementwise ops. Binary ops broadcast like NumPy and sum the gradient back
to each input's shape."""
from opgraph.operation import Operation
from opgraph.tensor import weak_scalar

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
    kernel = "add"

    def backward(self, grad):
        a, b = self.inputs
        return sum_to_shape(grad, a.shape), sum_to_shape(grad, b.shape)


class Sub(_Binary):
    """z = a - b;  da = dz, db = -dz"""
    kernel = "sub"

    def forward(self, a, b):
        if a.dtype.kind == "b" and b.dtype.kind == "b":
            raise TypeError(f"{self.name}: subtracting two bool tensors is not supported (as "
                            "torch and NumPy); use where() or convert with .long()/.float()")
        return super().forward(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return sum_to_shape(grad, a.shape), sum_to_shape(-grad, b.shape)


class Mul(_Binary):
    """z = a · b;  da = dz · b, db = dz · a"""
    kernel = "mul"

    def backward(self, grad):
        a, b = self.inputs
        return sum_to_shape(grad * b, a.shape), sum_to_shape(grad * a, b.shape)


class Div(_Binary):
    """z = a / b;  da = dz / b, db = -dz · a / b²"""
    kernel = "div"

    def backward(self, grad):
        a, b = self.inputs
        return sum_to_shape(grad / b, a.shape), sum_to_shape(-grad * a / (b * b), b.shape)


class Pow(Operation):
    """y = x^p for a scalar p;  dx = dy · p · x^(p-1)"""

    def __init__(self, exponent):
        self.exponent = weak_scalar(exponent)

    def forward(self, x):
        p = self.exponent
        if x.dtype.kind in "iub" and hasattr(p, "__index__") and p < 0:  # an integer power
            raise ValueError(f"{self.name}: an integer tensor ({x.dtype}) to the negative integer "
                             f"power {p!r} is not allowed (as NumPy and torch); use a float "
                             "tensor or exponent")
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
    kernel = "pow"

    def forward(self, a, b):
        bk = self.backend
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


class _Unary(Operation):
    kernel = None

    def forward(self, x):
        return self.backend.unary(self.kernel, x)


class Neg(_Unary):
    """y = -x;  dx = -dy"""
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
    kernel = "exp"

    def backward(self, grad):
        return (grad * self.output,)


class Log(_Unary):
    """y = log(x);  dx = dy / x"""
    kernel = "log"

    def backward(self, grad):
        return (grad / self.inputs[0],)


class LogWithEpsilon(Operation):
    """y = log(x + eps);  dx = dy / (x + eps)"""

    def __init__(self, eps):
        self.eps = weak_scalar(eps)

    def forward(self, x):
        return self.backend.unary("log", self.backend.binary("add", x, self.eps))

    def backward(self, grad):
        return (grad / (self.inputs[0] + self.eps),)


class Sin(_Unary):
    """y = sin(x);  dx = dy · cos(x)"""
    kernel = "sin"

    def backward(self, grad):
        return (grad * self.inputs[0].cos(),)


class Cos(_Unary):
    """y = cos(x);  dx = -dy · sin(x)"""
    kernel = "cos"

    def backward(self, grad):
        return (-grad * self.inputs[0].sin(),)


class Sqrt(_Unary):
    """y = √x;  dx = dy / (2y)"""
    kernel = "sqrt"

    def backward(self, grad):
        return (grad / (2 * self.output),)


class Rsqrt(_Unary):
    """y = 1/√x;  dx = -dy · y³ / 2"""
    kernel = "rsqrt"

    def backward(self, grad):
        y = self.output
        return (grad * y * y * y * -0.5,)


class Abs(_Unary):
    """y = |x|;  dx = dy · sign(x)"""
    kernel = "abs"

    def backward(self, grad):
        return (grad * self.constant(self.backend.unary("sign", self.inputs[0].data)),)


class ReLU(_Unary):
    """y = max(x, 0);  dx = dy · [x > 0]"""
    kernel = "relu"

    def backward(self, grad):
        x = self.inputs[0]
        mask = self.backend.astype(self.backend.binary("gt", x.data, 0), x.dtype)
        return (grad * self.constant(mask),)


class Sigmoid(_Unary):
    """y = 1 / (1 + exp(-x));  dx = dy · y · (1 - y)  (SigmoidGrad, one fused kernel)"""
    kernel = "sigmoid"

    def backward(self, grad):
        return (SigmoidGrad()(self.output, grad),)


class Tanh(_Unary):
    """y = tanh(x);  dx = dy · (1 - y²)  (TanhGrad, one fused kernel)"""
    kernel = "tanh"

    def backward(self, grad):
        return (TanhGrad()(self.output, grad),)


class SiLU(_Unary):
    """y = x · σ(x);  dx = dy · σ(x) · (1 + x · (1 - σ(x)))  (SiLUGrad, one fused kernel)"""
    kernel = "silu"

    def backward(self, grad):
        return (SiLUGrad()(self.inputs[0], grad),)


class _ActivationGrad(Operation):
    """g · f'(x) from what the activation saved (y, or x for SiLU) and the incoming
    gradient g, in one backend pass (backend.activation_grad); an op of its own, as
    torch's sigmoid_backward, so that second order works."""
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

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.in_dtype = x.dtype
        return self.backend.astype(x, self.dtype)

    def backward(self, grad):
        return (AsType(self.in_dtype)(grad),)


class ToBackend(Operation):
    """y = x copied to another backend;  dx = dy copied back"""

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
