"""Finite-difference checks of the analytic gradients (first and second order)."""
import numpy as np

from .tape import grad
from .tensor import Tensor


class GradcheckError(AssertionError, RuntimeError):
    """Analytic and numeric gradients disagree (a RuntimeError as in torch, and an
    AssertionError so that test runners report it as a failed check)."""


def _outputs(fn, inputs, name="gradcheck"):
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for k, o in enumerate(outs):
        if o is not None and not isinstance(o, Tensor):
            raise TypeError(f"{name}: fn returned {type(o).__name__} (output {k}); expected a "
                            "Tensor or a tuple of Tensors")
    return outs


def _arguments(name, fn, inputs):
    if not callable(fn):
        raise TypeError(f"{name}: fn must be callable, got {type(fn).__name__}")
    if isinstance(inputs, Tensor):
        return [inputs]
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"{name}: inputs must be a list or tuple of tensors, got "
                        f"{type(inputs).__name__}")
    return list(inputs)


def _projected(fn, inputs, vs):
    """<v, fn(inputs)>: one scalar, so one backward pass gives the whole vector-Jacobian product."""
    total = None
    for out, v in zip(_outputs(fn, inputs), vs):
        if out is None or out.dtype.kind != "f":
            continue
        term = (out * v).sum()
        total = term if total is None else total + term
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Compare the gradients of `fn` w.r.t. every input that requires grad with central
    differences; raise GradcheckError naming the input, the index and both values
    (return False instead with raise_exception=False, as torch).

    `fn(*inputs)` may return a tensor or a tuple of tensors of any shape: the check is on
    <v, fn(inputs)> for a fixed random v, which exercises the full vector-Jacobian product.
    Use float64 inputs."""
    inputs = _arguments("gradcheck", fn, inputs)
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    vs = [None if o is None else Tensor._make(
        o.backend.asarray(rng.standard_normal(o.shape).astype(o.dtype)), o.backend) for o in outs]
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 for "
                            "finite differences")
    if not any(o is not None and o.dtype.kind == "f" for o in outs):
        raise ValueError("gradcheck: fn has no floating-point output to differentiate (got "
                         + ", ".join("None" if o is None else str(o.dtype) for o in outs) + ")")
    target = _projected(fn, inputs, vs)
    if target is not None and target.requires_grad:
        analytic = grad(target, [inputs[i] for i in wrt])
    else:  # fn does not depend on its inputs through the graph (the gradient of a linear op, say)
        analytic = [Tensor._make(inputs[i].backend.zeros(inputs[i].shape, inputs[i].dtype),
                                 inputs[i].backend) for i in wrt]
    for i, g in zip(wrt, analytic):
        x = inputs[i]
        host = np.array(x.numpy(), dtype=np.float64, order="C")  # flat is a view of it
        ga = g.numpy().reshape(host.shape)
        flat = host.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            values = []
            for delta in (eps, -eps):
                flat[j] = old + delta
                x.data = x.backend.asarray(host.copy())
                # recorded like any forward (fn may itself take gradients); dropped right away
                values.append(_projected(fn, inputs, vs).item())
            flat[j] = old
            numeric = (values[0] - values[1]) / (2 * eps)
            got = ga.reshape(-1)[j]
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                x.data = x.backend.asarray(host.copy())
                if not raise_exception:
                    return False
                where = np.unravel_index(j, host.shape) if host.shape else ()
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {host.shape}) at index {tuple(map(int, where))}: "
                    f"analytic {float(got)!r} != numeric {float(numeric)!r}")
        x.data = x.backend.asarray(host.copy())
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """gradcheck of the gradient itself: checks that the backward of `fn` is differentiable
    (built with create_graph=True) and correct to second order."""
    inputs = _arguments("gradgradcheck", fn, inputs)
    rng = np.random.default_rng(seed + 1)
    outs = _outputs(fn, inputs, "gradgradcheck")
    vs = [None if o is None else Tensor._make(
        o.backend.asarray(rng.standard_normal(o.shape).astype(o.dtype)), o.backend) for o in outs]
    wrt = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]

    def first_order(*xs):
        target = _projected(fn, xs, vs)
        chosen = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        return tuple(grad(target, chosen, create_graph=True))

    if not wrt:
        raise ValueError("gradgradcheck: no input requires grad")
    try:
        return gradcheck(first_order, inputs, eps, atol, rtol, seed, raise_exception)
    except GradcheckError as e:
        raise GradcheckError(f"gradgradcheck (second order, the gradient of the gradient): "
                             f"{str(e).removeprefix('gradcheck: ')}") from None
