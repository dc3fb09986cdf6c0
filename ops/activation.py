"""Activations beyond the elementwise basics: GELU (exact and tanh), LeakyReLU, ELU."""
import math

from opgraph.operation import Operation

from .elementwise import Where

_APPROXIMATIONS = ("none", "tanh")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_approximate(name, approximate):
    if approximate not in _APPROXIMATIONS:
        raise ValueError(f"{name}: approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


class GELU(Operation):
    """y = x · Φ(x) = x/2 · (1 + erf(x/√2)) (approximate='none'), or
    y = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))) (approximate='tanh');
    dx = dy · f'(x) with f' = Φ(x) + x · φ(x), φ(x) = exp(-x²/2)/√(2π)  (GELUGrad, fused)"""
    floating = True
    saves = (0,)

    def __init__(self, approximate="none"):
        self.approximate = _check_approximate(self.name, approximate)

    def forward(self, x):
        return self.backend.gelu(x, self.approximate)

    def backward(self, grad):
        return (GELUGrad(self.approximate)(self.inputs[0], grad),)


class GELUGrad(Operation):
    """z = g · f'(x) for inputs x and g (the incoming gradient), f the GELU of `approximate`;
    dx = dz · g · f''(x) with f'' = φ(x) · (2 - x²) (exact) or, for tanh with
    t = tanh(u), u = √(2/π)(x + 0.044715 x³), u' = √(2/π)(1 + 3 · 0.044715 x²):
    f'' = (1 - t²) · (u' - x · t · u'² + 3 · 0.044715 · √(2/π) · x²);  dg = dz · f'(x)"""
    saves = (0, 1)

    def __init__(self, approximate="none"):
        self.approximate = _check_approximate(self.name, approximate)

    def forward(self, x, grad):
        op = "gelu" if self.approximate == "none" else "gelu_tanh"
        return self.backend.activation_grad(op, x, grad)

    def backward(self, gz):
        x, grad = self.inputs
        if self.approximate == "none":
            second = (x * x * -0.5).exp() * _INV_SQRT_2PI * (2 - x * x)
        else:
            x2 = x * x
            t = ((x + x2 * x * _KAPPA) * _SQRT_2_OVER_PI).tanh()
            du = (x2 * (3 * _KAPPA) + 1) * _SQRT_2_OVER_PI
            second = (1 - t * t) * (du - x * t * du * du + x2 * (3 * _KAPPA * _SQRT_2_OVER_PI))
        return gz * grad * second, GELUGrad(self.approximate)(x, gz)


class LeakyReLU(Operation):
    """y = x if x > 0 else negative_slope · x;  dx = dy · (1 if x > 0 else negative_slope)"""
    saves = ()

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        b = self.backend
        self.positive = b.binary("gt", x, 0)
        return b.where(self.positive, x, b.binary("mul", x, self.negative_slope))

    def backward(self, grad):
        b = self.backend
        slope = self.constant(b.where(self.positive, b.full((), 1, grad.dtype),
                                      b.full((), self.negative_slope, grad.dtype)))
        return (grad * slope,)


class ELU(Operation):
    """y = x if x > 0 else alpha · (exp(x) - 1);  dx = dy if x > 0 else dy · (y + alpha)"""
    floating = True
    saves = ("output",)

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        b = self.backend
        self.positive = b.binary("gt", x, 0)
        # exp of min(x, 0): the branch not taken never overflows
        negative = b.binary("mul", b.binary("sub", b.unary("exp", b.binary("minimum", x, 0)), 1),
                            self.alpha)
        return b.where(self.positive, x, negative)

    def backward(self, grad):
        one = self.constant(self.backend.full((), 1, grad.dtype))
        return (grad * Where(self.positive)(one, self.output + self.alpha),)


def log1p(backend, u):
    """log(1 + u) accurate for small u, from backend kernels (Goldberg's trick:
    log(v) · u / (v - 1) with v = 1 + u rounded, and u itself where v rounds to 1)."""
    b = backend
    v = b.binary("add", u, 1.0)
    vm1 = b.binary("sub", v, 1.0)
    exact = b.binary("eq", vm1, 0)
    safe = b.where(exact, b.full((), 1.0, vm1.dtype), vm1)
    return b.where(exact, u, b.binary("mul", b.unary("log", v), b.binary("div", u, safe)))


def softplus_array(backend, z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), stable for every z."""
    b = backend
    return b.binary("add", b.unary("relu", z), log1p(b, b.unary("exp", b.unary(
        "neg", b.unary("abs", z)))))


class Softplus(Operation):
    """y = log(1 + exp(beta · x)) / beta, and y = x where beta · x > threshold (as torch);
    dx = dy · sigmoid(beta · x), dy where beta · x > threshold"""
    floating = True
    saves = (0,)

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        b = self.backend
        z = b.binary("mul", x, self.beta)
        self.linear = b.binary("gt", z, self.threshold)
        return b.where(self.linear, x, b.binary("div", softplus_array(b, z), self.beta))

    def backward(self, grad):
        (x,) = self.inputs
        one = self.constant(self.backend.full((), 1, grad.dtype))
        return (grad * Where(self.linear)(one, (x * self.beta).sigmoid()),)
