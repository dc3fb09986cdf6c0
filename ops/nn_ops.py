"""Softmax family and the fused cross-entropy loss."""
from opgraph.operation import Operation

from .shape import normalize_axis

from opgraph.backends.base import check_index_dtype


class _SoftmaxFamily(Operation):
    """Softmax and LogSoftmax: the backend's row kernel `kernel` along dim; an empty
    input gives an empty result (nothing to normalise), as torch."""
    floating = True
    saves = ("output",)
    kernel = None

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        if 0 in x.shape:
            return self.backend.zeros(x.shape, x.dtype)
        return getattr(self.backend, self.kernel)(x, self.dim)


class Softmax(_SoftmaxFamily):
    """y = exp(x - max) / Σ exp(x - max) along dim;  dx = y · (dy - Σ(dy · y) along dim)"""
    kernel = "softmax"

    def backward(self, grad):
        y = self.output
        return (y * (grad - (grad * y).sum(self.dim, keepdim=True)),)


class LogSoftmax(_SoftmaxFamily):
    """y = x - max - log Σ exp(x - max) along dim;  dx = dy - exp(y) · Σ dy along dim"""
    kernel = "log_softmax"

    def backward(self, grad):
        y = self.output
        return (grad - y.exp() * grad.sum(self.dim, keepdim=True),)


class CrossEntropy(Operation):
    """loss = (1/N) Σ_n (m_n + log Σ_c exp(logits[n, c] - m_n) - logits[n, targets[n]]) for
    logits (N, C), int targets (N,), m_n = max_c logits[n, c]  (one fused kernel, stable;
    NaN for an empty batch, as torch);
    dlogits = dloss · (softmax(logits) - onehot(targets)) / N  (CrossEntropyGrad)"""
    saves = (0, 1)

    def forward(self, logits, targets):
        if len(logits.shape) != 2:
            raise ValueError(f"{self.name}: logits must be (N, C), got shape {tuple(logits.shape)}")
        if tuple(targets.shape) != (logits.shape[0],):
            raise ValueError(f"{self.name}: targets must have shape ({logits.shape[0]},) to match "
                             f"logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
        check_index_dtype(self.name, targets, "targets")
        b = self.backend
        loss, self.top, self.logsum = b.cross_entropy(logits, targets)
        self.targets = targets
        if logits.shape[0] == 0:  # the mean of no losses, as torch (and as mean())
            return b.full((), float("nan"), logits.dtype)
        return b.binary("mul", b.sum(loss), 1.0 / logits.shape[0])

    def backward(self, grad):
        return CrossEntropyGrad(self.targets, self.top, self.logsum)(self.inputs[0], grad), None


class CrossEntropyGrad(Operation):
    """The gradient of CrossEntropy as an op of its own, so that it is one fused kernel and
    still differentiable (second order): with p = softmax(logits), s = dloss / N,
    y = s · (p - onehot(targets));
    dlogits = s · p · (dy - Σ_c dy · p),  d(dloss) = Σ dy · (p - onehot) / N"""
    saves = (0, 1)

    def __init__(self, targets, top, logsum):
        self.targets, self.top, self.logsum = targets, top, logsum

    def forward(self, logits, grad):
        b = self.backend
        scale = b.binary("mul", grad, 1.0 / max(logits.shape[0], 1))
        return b.cross_entropy_grad(logits, self.targets, self.top, self.logsum, scale)

    def backward(self, ggrad):
        logits, grad = self.inputs
        n = max(logits.shape[0], 1)
        p = logits.softmax(1)
        dlogits = (grad / n) * p * (ggrad - (ggrad * p).sum(1, keepdim=True))
        b = self.backend
        c = logits.shape[1]
        hit = b.binary("eq", b.arange(c, self.targets.dtype), b.reshape(self.targets, (-1, 1)))
        onehot = self.constant(b.astype(hit, logits.dtype))
        dgrad = (ggrad * (p - onehot)).sum() / n
        return dlogits, dgrad
