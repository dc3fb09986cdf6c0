"""Tropical (semiring) einsum: the einsum lowering with ⊕ = max/min and ⊗ = + or ×.

    opgraph.tropical_einsum("ij,jk->ik", a, b)                      # max_plus
    opgraph.tropical_einsum("ij,jk->ik", a, b, semiring="min_plus")
    opgraph.tropical_einsum(a, [0, 1], b, [1, 2], [], semiring="max_mul", optimize=path)

It reuses ops/einsum.py's parser, path and plan unchanged: every prepare step and
every pairwise step is the same as in einsum, with the sum replaced by an
⊕-reduction that also records the winning index (the lowest one on ties), and the
batched matmul replaced by `backend.tropical_matmul(a, b, semiring)`.

Backward routes each output gradient to exactly the entries that won: in a
pairwise step c[b,l,r] = ⊕_k a[b,l,k] ⊗ b[b,k,r] with winner k* = arg[b,l,r],
    da[b,l,k*] += dc[b,l,r] · ∂⊗/∂a      (1 for +, b[b,k*,r] for ×)
    db[b,k*,r] += dc[b,l,r] · ∂⊗/∂b      (1 for +, a[b,l,k*] for ×)
chained step by step through the contraction tree, and through an ⊕-reduction of
a lone index to its winning position.

A semiring of your own (no library edit needed):

    from opgraph.ops.tropical import Semiring, register_semiring
    register_semiring(Semiring("max_min", plus="max", times="minimum", zero=-inf, one=inf))
    opgraph.tropical_einsum("ij,jk->ik", a, b, semiring="max_min")   # widest paths

`plus` must be "max" or "min" (argmax routing needs a selective ⊕); `times` is a
backend binary op: "add", "mul", "minimum" or "maximum". User semirings run on a
blocked kernel built from backend primitives, so they work on every backend.
"""
import math

import numpy as np

from opgraph.backends.base import SEMIRINGS as _BUILTIN_KERNELS
from opgraph.operation import Operation

from .einsum import get_plan, run_unary_layout, split_args, to_3d, unary_layout_adjoint


class Semiring:
    """A selective semiring: ⊕ is "max" or "min", ⊗ a backend binary op.

    name: the string passed as semiring=; zero: ⊕'s identity (−inf for max);
    one: ⊗'s identity; nonnegative: inputs must be >= 0 (checked, ValueError)."""

    TIMES = ("add", "mul", "minimum", "maximum")

    def __init__(self, name, plus, times, zero, one, nonnegative=False):
        if plus not in ("max", "min"):
            raise ValueError(f"Semiring {name!r}: plus must be 'max' or 'min', got {plus!r}")
        if times not in self.TIMES:
            raise ValueError(f"Semiring {name!r}: times must be one of {self.TIMES}, got {times!r}")
        self.name, self.plus, self.times = name, plus, times
        self.zero, self.one, self.nonnegative = float(zero), float(one), nonnegative

    def __repr__(self):
        return (f"Semiring({self.name!r}, plus={self.plus!r}, times={self.times!r}, "
                f"zero={self.zero}, one={self.one})")

    # ---- kernels on backend arrays
    def matmul(self, backend, a, b):
        """(c, arg) of the batched product (B, n, k) ⊗ (B, k, m); ties -> lowest k."""
        if self.name in _BUILTIN_KERNELS:
            return backend.tropical_matmul(a, b, self.name)
        return generic_matmul(backend, a, b, self)

    def reduce_last(self, backend, a):
        """(⊕ over the last axis, index of the winner (lowest on ties))."""
        if self.plus == "max":
            return backend.max(a, axis=-1), backend.argmax(a, axis=-1)
        return backend.min(a, axis=-1), backend.argmax(backend.unary("neg", a), axis=-1)

    def times_grads(self, backend, x, y, g):
        """(g·∂(x⊗y)/∂x, g·∂(x⊗y)/∂y) at the winning factors x, y."""
        if self.times == "add":
            return g, g
        if self.times == "mul":
            return backend.binary("mul", g, y), backend.binary("mul", g, x)
        # minimum / maximum: the factor that is the result gets it (x on ties)
        x_wins = backend.binary("le" if self.times == "minimum" else "ge", x, y)
        zero = backend.full((), 0, g.dtype)
        return backend.where(x_wins, g, zero), backend.where(x_wins, zero, g)


_SEMIRINGS = {
    "max_plus": Semiring("max_plus", "max", "add", -math.inf, 0.0),
    "min_plus": Semiring("min_plus", "min", "add", math.inf, 0.0),
    "max_mul": Semiring("max_mul", "max", "mul", 0.0, 1.0, nonnegative=True),
}
_BUILTIN = tuple(_SEMIRINGS)


def register_semiring(semiring):
    """Make `semiring` (a Semiring) available as tropical_einsum(..., semiring=name).
    Built-in names cannot be replaced; registering the same name again replaces it."""
    if not isinstance(semiring, Semiring):
        raise TypeError(f"register_semiring: expected a Semiring, got {type(semiring).__name__}")
    if semiring.name in _BUILTIN:
        raise ValueError(f"register_semiring: {semiring.name!r} is built in and cannot be "
                         "replaced; choose another name")
    _SEMIRINGS[semiring.name] = semiring
    return semiring


def semirings():
    """Names of the semirings tropical_einsum accepts."""
    return tuple(_SEMIRINGS)


def get_semiring(name):
    if isinstance(name, Semiring):
        return name
    if name not in _SEMIRINGS:
        raise ValueError(f"tropical_einsum: unknown semiring {name!r}; expected one of "
                         f"{list(_SEMIRINGS)} (or register one with register_semiring)")
    return _SEMIRINGS[name]


def generic_matmul(backend, a, b, semiring, block_elements=1 << 22):
    """Tropical batched matmul from backend primitives, blocked over k so that memory
    stays O(B·n·m + block): for semirings without a dedicated backend kernel."""
    nb, n, k = a.shape
    m = b.shape[2]
    best = backend.full((nb, n, m), semiring.zero, a.dtype)
    arg = backend.full((nb, n, m), 0, np.dtype(np.int64))
    block = max(1, min(k, block_elements // max(1, nb * n * m)))
    better = "gt" if semiring.plus == "max" else "lt"
    for start in range(0, k, block):
        stop = min(k, start + block)
        left = backend.getitem(a, (slice(None), slice(None), slice(start, stop), None))
        right = backend.getitem(b, (slice(None), None, slice(start, stop), slice(None)))
        cand = backend.binary(semiring.times, left, right)            # (B, n, block, m)
        cand = backend.transpose(cand, (0, 1, 3, 2))                  # (B, n, m, block)
        value, pick = semiring.reduce_last(backend, cand)
        if start == 0:
            best, arg = value, pick
            continue
        won = backend.binary(better, value, best)  # strict: earlier blocks keep ties
        best = backend.where(won, value, best)
        arg = backend.where(won, backend.binary("add", pick, start), arg)
    return best, arg


# =========================================================================== steps

def _unary_forward(backend, step, a, semiring):
    """A prepare step in the semiring: layout, ⊕-reduce with argmax, permute.
    Returns (array, arg or None)."""
    if step.identity:
        return a, None
    a = run_unary_layout(backend, step, a)
    arg = None
    if step.reduce_axes:
        kept = [i for i in range(len(step.diag_shape)) if i not in step.reduce_axes]
        a = backend.transpose(a, tuple(kept) + step.reduce_axes)
        size = 1
        for n in step.reduce_shape:
            size *= n
        if size == 0:
            a = backend.full(step.kept_shape, semiring.zero, a.dtype)
        else:
            a, arg = semiring.reduce_last(backend, backend.reshape(a, step.kept_shape + (size,)))
    if step.perm is not None:
        a = backend.transpose(a, step.perm)
    return a, arg


def _unary_backward(backend, step, g, arg):
    """Route g back through a prepare step: into the winning reduced position, onto the
    diagonals, un-squeezed."""
    if step.identity:
        return g
    if step.perm is not None:
        g = backend.transpose(g, step.inverse_perm())
    if step.reduce_axes:
        size = 1
        for n in step.reduce_shape:
            size *= n
        flat = step.kept_shape + (size,)
        if arg is None:  # empty reduction: no entry won
            g = backend.zeros(flat, g.dtype)
        else:
            idx = backend.reshape(arg, step.kept_shape + (1,))
            src = backend.reshape(g, step.kept_shape + (1,))
            g = backend.scatter_add(flat, len(flat) - 1, idx, src)
        g = backend.reshape(g, step.kept_shape + step.reduce_shape)
        kept = [i for i in range(len(step.diag_shape)) if i not in step.reduce_axes]
        order = tuple(kept) + step.reduce_axes
        inv = [0] * len(order)
        for i, p in enumerate(order):
            inv[p] = i
        g = backend.transpose(g, tuple(inv))
    return unary_layout_adjoint(backend, step, g)


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _pair_backward(backend, step, semiring, a, b, arg, g, need_a, need_b):
    nb, nl, nk = step.shape_a3
    nr = step.shape_b3[2]
    if step.perm_c is not None:
        g = backend.transpose(g, _inverse(step.perm_c))
    g3 = backend.reshape(g, (nb, nl, nr))
    a3, b3 = to_3d(backend, step, a, b)
    ga = gb = None
    if nk == 0:
        ga3 = backend.zeros((nb, nl, nk), g.dtype)
        gb3 = backend.zeros((nb, nk, nr), g.dtype)
    else:
        if semiring.times == "add":
            src_a = src_b = g3
        else:
            xa = backend.gather(a3, 2, arg)   # a[b, l, k*]
            xb = backend.gather(b3, 1, arg)   # b[b, k*, r]
            src_a, src_b = semiring.times_grads(backend, xa, xb, g3)
        ga3 = backend.scatter_add((nb, nl, nk), 2, arg, src_a) if need_a else None
        gb3 = backend.scatter_add((nb, nk, nr), 1, arg, src_b) if need_b else None
    if need_a:
        natural = tuple(step.sizes[x] for x in step.batch + step.left + step.contract)
        ga = backend.reshape(ga3, natural)
        if step.perm_a is not None:
            ga = backend.transpose(ga, _inverse(step.perm_a))
    if need_b:
        natural = tuple(step.sizes[x] for x in step.batch + step.contract + step.right)
        gb = backend.reshape(gb3, natural)
        if step.perm_b is not None:
            gb = backend.transpose(gb, _inverse(step.perm_b))
    return ga, gb


# =========================================================================== the op

class TropicalEinsum(Operation):
    """y[out] = ⊕ over the summed indices of ⊗_k x_k[subscripts_k];
    dx_k = dy routed to the winning entries (max_mul: times the other factors).

    A tropical einsum over a selective semiring (⊕ = max/min, ⊗ = + or ×).

    Forward: einsum's lowering (ops/einsum.py) with ⊕-reductions (keeping the argmax)
    and backend.tropical_matmul (keeping the winning index, lowest on ties).
    Backward: dx_k = dy routed to the winning entries only, chained through the
    pairwise steps: for max_plus/min_plus each winning entry gets dy, for max_mul
    dy times the other factor. Deterministic (ties -> lowest index); the backward
    calls the scatter kernel directly, so the op is once-differentiable.

    After forward: `path`, `info`, `largest_intermediate` as on Einsum."""

    once_differentiable = True

    def __init__(self, subscripts, semiring="max_plus", optimize="greedy"):
        self.subscripts = subscripts
        self.semiring = get_semiring(semiring)
        self.optimize = optimize

    def forward(self, *arrays):
        backend = self.backend
        sr = self.semiring
        plan = get_plan("tropical_einsum", self.subscripts, [a.shape for a in arrays],
                        self.optimize)
        self.plan, self.path, self.info = plan, plan.path, plan.info
        self.largest_intermediate = plan.info.largest_intermediate
        arrays = [a if a.dtype.kind == "f" else backend.astype(a, np.float64) for a in arrays]
        if sr.nonnegative:
            for k, a in enumerate(arrays):
                low = float(backend.to_numpy(backend.min(a))) if 0 not in a.shape else 0.0
                if not low >= 0:  # NaN fails this too (min propagates NaN)
                    raise ValueError(
                        f"tropical_einsum({plan.spec.text!r}, semiring={sr.name!r}): operand "
                        f"{k} (shape {tuple(a.shape)}) has negative or NaN entries (minimum "
                        f"{low}); {sr.name} needs inputs >= 0")
        nodes, args = [], []
        for step, a in zip(plan.preps, arrays):
            value, arg = _unary_forward(backend, step, a, sr)
            nodes.append(value)
            args.append(arg)
        for i, j, step, _ in plan.pairs:
            a3, b3 = to_3d(backend, step, nodes[i], nodes[j])
            c3, arg = sr.matmul(backend, a3, b3)
            c = backend.reshape(c3, step.natural_shape)
            if step.perm_c is not None:
                c = backend.transpose(c, step.perm_c)
            nodes.append(c)
            args.append(arg)
        out = nodes[-1]
        if plan.final is not None:
            out = backend.transpose(out, plan.final.perm)
        self._nodes, self._args = nodes, args
        return out

    def backward(self, grad):
        backend, plan, sr = self.backend, self.plan, self.semiring
        inputs = self.inputs
        needs = [t.requires_grad for t in inputs]
        for i, j, _, _ in plan.pairs:
            needs.append(needs[i] or needs[j])
        g = grad.data
        if plan.final is not None:
            g = backend.transpose(g, plan.final.inverse_perm())
        grads = {len(self._nodes) - 1: g}
        for (i, j, step, k) in reversed(plan.pairs):
            g = grads.pop(k, None)
            if g is None:
                continue
            ga, gb = _pair_backward(backend, step, sr, self._nodes[i], self._nodes[j],
                                    self._args[k], g, needs[i], needs[j])
            if ga is not None:
                grads[i] = ga
            if gb is not None:
                grads[j] = gb
        result = []
        for k, t in enumerate(inputs):
            if not needs[k]:
                result.append(None)
                continue
            g = _unary_backward(backend, plan.preps[k], grads[k], self._args[k])
            if g.dtype != t.dtype:
                g = backend.astype(g, t.dtype)
            result.append(self.constant(g))
        return tuple(result)


def tropical_einsum(subscripts, *operands, semiring="max_plus", optimize="greedy"):
    """Einsum over a tropical semiring: "max_plus" (max, +), "min_plus" (min, +),
    "max_mul" (max, ×; inputs >= 0), or one added with register_semiring.

    Same grammar as einsum (string or sublist form, '...', repeated and lone indices)
    and the same optimize= (including an explicit list of pairs). The gradient w.r.t.
    each operand is 1 (max_mul: the product of the other factors) at the entries of the
    winning assignment and 0 elsewhere; ties go to the lowest index."""
    subscripts, ops = split_args("tropical_einsum", subscripts, operands)
    return TropicalEinsum(subscripts, semiring, optimize)(*ops)
