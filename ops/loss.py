"""Elementwise losses with their own gradients: binary cross-entropy on probabilities and
on logits (torch's formulas, clamps included)."""
from opgraph.operation import Operation

from .activation import Softplus, softplus_array
from .elementwise import Where
from .shape import broadcast_shapes, sum_to_shape

# torch clamps the logs of binary_cross_entropy at -100, so log(0) gives a finite loss
_LOG_FLOOR = -100.0
_TINY = 1e-45  # below e^-100 in float64 and float32 (a subnormal): log() then clamps
_GRAD_EPS = 1e-12  # torch's EPSILON in binary_cross_entropy_backward


class BinaryCrossEntropy(Operation):
    """loss = -(t · max(log x, -100) + (1 - t) · max(log(1 - x), -100)) elementwise,
    x in [0, 1] (probabilities), t the target;
    dx = dloss · (x - t) / max(x · (1 - x), 1e-12),
    dt = dloss · (log(1 - x) - log x)  (±inf at x = 0 or 1, as torch)"""
    saves = (0, 1)

    def forward(self, x, t):
        if tuple(x.shape) != tuple(t.shape):
            raise ValueError(f"{self.name}: target of shape {tuple(t.shape)} differs from "
                             f"input of shape {tuple(x.shape)}")
        b = self.backend
        log_x = self._log(x)
        log_1mx = self._log(b.binary("sub", 1.0, x))
        return b.unary("neg", b.binary("add", b.binary("mul", t, log_x), b.binary(
            "mul", b.binary("sub", 1.0, t), log_1mx)))

    def _log(self, p):
        b = self.backend
        return b.binary("maximum", b.unary("log", b.binary("maximum", p, _TINY)), _LOG_FLOOR)

    def backward(self, grad):
        x, t = self.inputs
        b = self.backend
        spread = x * (1 - x)
        big = b.binary("gt", spread.data, _GRAD_EPS)
        floor = self.constant(b.full((), _GRAD_EPS, x.dtype))
        dx = grad * (x - t) / Where(big)(spread, floor)
        return dx, grad * ((1 - x).log() - x.log())  # -logit(x), unclamped as torch


class BinaryCrossEntropyWithLogits(Operation):
    """loss = (1 - t) · x + l · softplus(-x), l = 1 + (pos_weight - 1) · t (l = 1 without
    pos_weight; softplus(z) = log(1 + exp(z)), stable), elementwise, broadcasting;
    dx = dloss · (l · sigmoid(x) - pos_weight · t),  dt = dloss · ((pos_weight - 1) ·
    softplus(-x) - x),  dpos_weight = dloss · t · softplus(-x)"""
    saves = property(lambda op: tuple(range(len(op._inputs))))  # every input, not the output

    def forward(self, x, t, pos_weight=None):
        shapes = [x.shape, t.shape] + ([pos_weight.shape] if pos_weight is not None else [])
        self.out_shape = broadcast_shapes(self.name, *shapes)
        b = self.backend
        sp = softplus_array(b, b.unary("neg", x))
        if pos_weight is not None:
            sp = b.binary("mul", b.binary("add", b.binary(
                "mul", b.binary("sub", pos_weight, 1.0), t), 1.0), sp)
        return b.binary("add", b.binary("mul", b.binary("sub", 1.0, t), x), sp)

    def backward(self, grad):
        x, t = self.inputs[0], self.inputs[1]
        if len(self.inputs) == 2:
            dx = grad * (x.sigmoid() - t)
            dt = -grad * x
            return sum_to_shape(dx, x.shape), sum_to_shape(dt, t.shape)
        pw = self.inputs[2]
        sp = Softplus()(-x)
        weight = (pw - 1) * t + 1
        dx = grad * (weight * x.sigmoid() - pw * t)
        dt = grad * ((pw - 1) * sp - x)
        dpw = grad * t * sp
        return (sum_to_shape(dx, x.shape), sum_to_shape(dt, t.shape),
                sum_to_shape(dpw, pw.shape))
