"""Tropical (semiring) einsum: the einsum lowering with ⊕ = max/min and ⊗ = + or ×.

    opgraph.tropical_einsum("ij,jk->ik", a, b)                      # max_plus
    opgraph.tropical_einsum("ij,jk->ik", a, b, semiring="min_plus")
    opgraph.tropical_einsum(a, [0, 1], b, [1, 2], [], semiring="max_mul", optimize=path)

It reuses ops/einsum's parser, path, plan and lowering unchanged: every prepare step
and every pairwise step is the same as in einsum, with the sum replaced by an
⊕-reduction that also records the winning index (the lowest one on ties), and the
batched matmul replaced by the semiring's product (`backend.tropical_matmul`).

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
backend binary op: "add", "mul", "minimum" or "maximum". A compound semiring (an
element is several arrays, say a value and a count) subclasses Semiring
(backends/semiring.py); tropical_einsum then takes one tuple of arrays per operand and
returns a tuple of tensors (not differentiable).
"""
import numpy as np

from opgraph.backends.semiring import (Semiring, generic_matmul, get_semiring,  # noqa: F401
                                       register_semiring, semirings)
from opgraph.operation import Operation

from .einsum import lower
from .einsum.parse import split_args
from .einsum.plan import get_plan


class TropicalEinsum(Operation):
    """y[out] = ⊕ over the summed indices of ⊗_k x_k[subscripts_k];
    dx_k = dy routed to the winning entries (max_mul: times the other factors).

    A tropical einsum over a selective semiring (⊕ = max/min, ⊗ = + or ×).

    Forward: einsum's lowering (ops/einsum) with ⊕-reductions (keeping the argmax)
    and backend.tropical_matmul (keeping the winning index, lowest on ties).
    Backward: dx_k = dy routed to the winning entries only, chained through the
    pairwise steps: for max_plus/min_plus each winning entry gets dy, for max_mul
    dy times the other factor. Deterministic (ties -> lowest index); the backward
    calls the scatter kernel directly, so the op is once-differentiable.

    After forward: `path`, `info`, `largest_intermediate` as on Einsum."""
    saves = property(lambda op: tuple(range(len(op._inputs))))  # every input, not the output

    once_differentiable = True
    promote = True  # an integer operand takes the float operands' dtype, as with * and @

    def __init__(self, subscripts, semiring="max_plus", optimize="greedy"):
        self.subscripts = subscripts
        self.semiring = get_semiring(semiring)
        if not self.semiring.selective:
            raise ValueError(f"TropicalEinsum: semiring {self.semiring.name!r} is compound; "
                             "tropical_einsum contracts it without gradients")
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
            _check_nonnegative(backend, plan, sr, arrays)
        nodes, args = [], []
        for step, a in zip(plan.preps, arrays):
            value, arg = lower.semiring_unary(backend, step, a, sr)
            nodes.append(value)
            args.append(arg)
        for i, j, step, _ in plan.pairs:
            c, arg = lower.semiring_pair(backend, step, nodes[i], nodes[j], sr)
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
            g = backend.transpose(g, lower.inverse_permutation(plan.final.perm))
        grads = {len(self._nodes) - 1: g}
        for (i, j, step, k) in reversed(plan.pairs):
            g = grads.pop(k, None)
            if g is None:
                continue
            ga, gb = lower.semiring_pair_backward(backend, step, sr, self._nodes[i],
                                                  self._nodes[j], self._args[k], g,
                                                  needs[i], needs[j])
            if ga is not None:
                grads[i] = ga
            if gb is not None:
                grads[j] = gb
        result = []
        for k, t in enumerate(inputs):
            if not needs[k]:
                result.append(None)
                continue
            g = lower.semiring_unary_backward(backend, plan.preps[k], grads[k], self._args[k])
            if g.dtype != t.dtype:
                g = backend.astype(g, t.dtype)
            result.append(self.constant(g))
        return tuple(result)


def _check_nonnegative(backend, plan, sr, arrays):
    for k, a in enumerate(arrays):
        low = float(backend.to_numpy(backend.min(a))) if 0 not in a.shape else 0.0
        if not low >= 0:  # NaN fails this too (min propagates NaN)
            raise ValueError(
                f"tropical_einsum({plan.spec.text!r}, semiring={sr.name!r}): operand "
                f"{k} (shape {tuple(a.shape)}) has negative or NaN entries (minimum "
                f"{low}); {sr.name} needs inputs >= 0")


def tropical_einsum(subscripts, *operands, semiring="max_plus", optimize="greedy"):
    """Einsum over a tropical semiring: "max_plus" (max, +), "min_plus" (min, +),
    "max_mul" (max, ×; inputs >= 0), or one added with register_semiring.

    Same grammar as einsum (string or sublist form, '...', repeated and lone indices)
    and the same optimize= (including an explicit list of pairs and "treesa"). The
    gradient w.r.t. each operand is 1 (max_mul: the product of the other factors) at
    the entries of the winning assignment and 0 elsewhere; ties go to the lowest index.

    A compound semiring (Semiring with arity > 1) takes one tuple of `arity` arrays or
    tensors per operand and returns a tuple of tensors, without gradients."""
    sr = get_semiring(semiring)
    if not sr.selective:
        return _compound_einsum(subscripts, operands, sr, optimize)
    subscripts, ops = split_args("tropical_einsum", subscripts, operands)
    return TropicalEinsum(subscripts, sr, optimize)(*ops)


def _compound_einsum(subscripts, operands, sr, optimize):
    import opgraph.backends as backends
    from opgraph.tensor import Tensor
    subscripts, elements = split_args("tropical_einsum", subscripts, operands)

    def raw(c):
        return c.data if isinstance(c, Tensor) else c

    for k, e in enumerate(elements):
        if not isinstance(e, (tuple, list)) or len(e) != sr.arity:
            raise ValueError(f"tropical_einsum(semiring={sr.name!r}): operand {k} must be a "
                             f"tuple of {sr.arity} arrays (one element of the compound "
                             f"semiring), got {type(e).__name__}")
        got = [tuple(np.shape(raw(c))) for c in e]
        if len(set(got)) != 1:
            raise ValueError(f"tropical_einsum(semiring={sr.name!r}): the arrays of operand "
                             f"{k} have different shapes {got}; an element's arrays share one")
    backend = next((c.backend for e in elements for c in e if isinstance(c, Tensor)), None)
    backend = backends.get(backend or "numpy")
    shapes = [tuple(np.shape(raw(e[0]))) for e in elements]
    plan = get_plan("tropical_einsum", subscripts, shapes, optimize)
    nodes = []
    for step, e in zip(plan.preps, elements):
        x = tuple(backend.asarray(raw(c)) for c in e)
        nodes.append(lower.compound_unary(backend, step, x, sr))
    for i, j, step, _ in plan.pairs:
        nodes.append(lower.compound_pair(backend, step, nodes[i], nodes[j], sr))
    out = nodes[-1]
    if plan.final is not None:
        out = tuple(backend.transpose(c, plan.final.perm) for c in out)
    return tuple(Tensor(c, backend=backend) for c in out)
