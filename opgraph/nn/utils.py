"""Gradient clipping and parameter vectors, as torch.nn.utils.

    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()

The gradients are rescaled on their own backend (`.grad.data` is replaced, nothing is
recorded on the tape).
"""
import math

import numpy as np

from .. import _checks
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _tensors(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _norm_type(name, norm_type):
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: norm_type must be a number or 'inf', got {norm_type!r}") \
            from None
    if math.isnan(p):
        raise ValueError(f"{name}: norm_type must not be NaN")
    return p


def _vector_norm(backend, g, p):
    """‖g‖_p as a Python float (computed in float64 on the backend)."""
    if g.size == 0:
        return 0.0
    a = backend.unary("abs", backend.astype(g, np.float64))
    if math.isinf(p):
        flat = backend.reshape(a, (-1,))
        return float(backend.to_numpy(backend.max(flat) if p > 0 else backend.min(flat)))
    if p == 0:
        return float(backend.to_numpy(backend.sum(backend.astype(backend.binary("ne", a, 0),
                                                                 np.float64))))
    total = float(backend.to_numpy(backend.sum(backend.binary("pow", a, p))))
    return total ** (1.0 / p)


def _combine(norms, p):
    if not norms:
        return 0.0
    if math.isinf(p):
        return max(norms) if p > 0 else min(norms)
    if p == 0:
        return float(sum(norms))
    return float(sum(n ** p for n in norms) ** (1.0 / p))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients of `parameters` (Tensors, or one Tensor) together so that their
    total norm (the norm of the vector of every gradient entry) is at most max_norm:
    g ← g · min(1, max_norm / (total + 1e-6)). norm_type is p (float('inf') or 'inf' for
    the largest |g|). Returns the total norm before clipping, as a 0-d tensor (as torch)."""
    name = "clip_grad_norm_"
    max_norm = _checks.number(name, "max_norm", max_norm, 0.0)
    p = _norm_type(name, norm_type)
    grads = [t.grad for t in _tensors(parameters) if t.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, np.float32))
    total = _combine([_vector_norm(g.backend, g.data, p) for g in grads], p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{name}: the total norm of order {p} of the gradients is "
                           f"non-finite ({total}), so it cannot be clipped; pass "
                           "error_if_nonfinite=False to scale them by it anyway")
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else float("nan")
    for g in grads:
        b = g.backend
        g.data = b.binary("mul", g.data, b.full((), coef, g.dtype))
    first = grads[0]
    return Tensor._make(first.backend.full((), total, first.dtype), first.backend)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient entry of `parameters` into [-clip_value, clip_value]."""
    clip_value = _checks.number("clip_grad_value_", "clip_value", clip_value, 0.0)
    for t in _tensors(parameters):
        if t.grad is None:
            continue
        g, b = t.grad, t.grad.backend
        lo, hi = b.full((), -clip_value, g.dtype), b.full((), clip_value, g.dtype)
        g.data = b.binary("minimum", b.binary("maximum", g.data, lo), hi)


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated into one 1-D tensor (not differentiable
    back into the parameters' storage; a copy)."""
    from .. import functions
    tensors = _tensors(parameters)
    return functions.cat([t.detach().reshape(-1) for t in tensors], 0)


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D `vec` into the parameters' data."""
    tensors = _tensors(parameters)
    total = sum(int(np.prod(t.shape, dtype=np.int64)) for t in tensors)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold "
                         f"the {total} entries of the parameters")
    host = vec.numpy()
    start = 0
    for t in tensors:
        n = int(np.prod(t.shape, dtype=np.int64))
        t.data = t.backend.asarray(host[start:start + n].reshape(t.shape).astype(t.dtype))
        start += n
