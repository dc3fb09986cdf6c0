"""Softmax family and the fused cross-entropy loss."""
from opgraph.operation import Operation, normalize_axis

from .indexing import check_indices


class Softmax(Operation):
    """y = exp(x - max) / Σ exp(x - max) along dim;  dx = y · (dy - Σ(dy · y) along dim)"""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        return self.backend.softmax(x, self.dim)

    def backward(self, grad):
        y = self.output
        return (y * (grad - (grad * y).sum(self.dim, keepdim=True)),)


class LogSoftmax(Operation):
    """y = x - max - log Σ exp(x - max) along dim;  dx = dy - exp(y) · Σ dy along dim"""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        self.dim = normalize_axis(self.name, self.dim, len(x.shape))
        return self.backend.log_softmax(x, self.dim)

    def backward(self, grad):
        y = self.output
        return (grad - y.exp() * grad.sum(self.dim, keepdim=True),)


class CrossEntropy(Operation):
    """loss = -(1/N) Σ_n log_softmax(logits)[n, targets[n]] for logits (N, C), int targets (N,);
    dlogits = dloss · (softmax(logits) - onehot(targets)) / N   (stable for any logit size)"""

    def forward(self, logits, targets):
        if len(logits.shape) != 2:
            raise ValueError(f"{self.name}: logits must be (N, C), got shape {tuple(logits.shape)}")
        if tuple(targets.shape) != (logits.shape[0],):
            raise ValueError(f"{self.name}: targets must have shape ({logits.shape[0]},) to match "
                             f"logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
        check_indices(self.name, self.backend, targets, logits.shape[1], "targets")
        b = self.backend
        self.column = b.reshape(targets, (logits.shape[0], 1))
        picked = b.gather(b.log_softmax(logits, 1), 1, self.column)
        return b.binary("mul", b.sum(picked), -1.0 / max(logits.shape[0], 1))

    def backward(self, grad):
        logits = self.inputs[0]
        n, c = logits.shape
        b = self.backend
        onehot = b.astype(b.binary("eq", b.arange(c, self.column.dtype), self.column), logits.dtype)
        return (logits.softmax(1) - self.constant(onehot)) * (grad / max(n, 1)), None
