"""The einsum ops and public functions: Einsum (one recorded op), its pairwise and
unary steps as ops of their own (for create_graph), einsum and einsum_path."""
import numpy as np

from opgraph import tape as _tape
from opgraph.operation import Operation

from ..elementwise import crossed_saves

from . import lower
from .parse import split_args
from .plan import get_plan

class EinsumUnary(Operation):
    """One prepare step of an einsum: y = sum over reduced labels of diag(squeeze(x)),
    permuted;  dx = the adjoint: dy permuted back, broadcast over the reduced labels,
    placed on the diagonals (zeros elsewhere), un-squeezed (EinsumUnaryAdjoint)."""
    saves = ()

    def __init__(self, step):
        self.step = step

    def forward(self, x):
        return lower.run_unary(self.backend, self.step, x)

    def backward(self, grad):
        return (EinsumUnaryAdjoint(self.step)(grad),)


class EinsumUnaryAdjoint(Operation):
    """y = the adjoint of EinsumUnary applied to g (broadcast + diag_embed + reshape);
    dg = EinsumUnary(dy)."""
    saves = ()

    def __init__(self, step):
        self.step = step

    def forward(self, g):
        return lower.unary_adjoint(self.backend, self.step, g)

    def backward(self, grad):
        return (EinsumUnary(self.step)(grad),)


class EinsumPair(Operation):
    """One pairwise einsum step c = Σ_contracted a·b (no lone labels), lowered to
    transpose + reshape + batched matmul;
    swap rule: da = einsum(dc, b -> a's labels), db = einsum(a, dc -> b's labels),
    each again an EinsumPair."""
    saves = property(crossed_saves)

    def __init__(self, step):
        self.step = step

    def forward(self, a, b):
        return lower.run_pair(self.backend, self.step, a, b)

    def backward(self, grad):
        a, b = self.inputs
        ga_step, gb_step = self.step.grad_steps()
        ga = EinsumPair(ga_step)(grad, b) if a.requires_grad else None
        gb = EinsumPair(gb_step)(a, grad) if b.requires_grad else None
        return ga, gb


class Einsum(Operation):
    """y = einsum(subscripts, x_1, ..., x_n);  dx_k = einsum(dy, x_j for j != k -> subscripts_k)

    NumPy's einsum (string or sublist form).

    Forward: prepare each operand (squeeze broadcast size-1 dims, diagonals of repeated
    indices, sum of lone indices), contract pairwise along the path (each step one
    transpose + reshape + batched matmul), permute into the output order.
    Backward (swap rule): dx_k = einsum(dy, x_1..x_n without x_k -> subscripts of x_k),
    computed by reversing the recorded pairwise steps with the forward's intermediates
    (dA = dC·B, dB = A·dC per step), broadcast over lone indices, placed on the diagonal
    for repeated indices, summed back over broadcast size-1 dims.

    After forward: `path` (pairs, einsum_path convention), `info` (PathInfo) and
    `largest_intermediate` (elements)."""
    saves = property(lambda op: tuple(range(len(op._inputs))))  # every input, not the output

    promote = True  # an integer operand takes the float operands' dtype, as with * and @

    def __init__(self, subscripts, optimize="greedy"):
        self.subscripts = subscripts
        self.optimize = optimize

    def forward(self, *arrays):
        plan = get_plan(self.name.lower(), self.subscripts, [a.shape for a in arrays],
                        self.optimize)
        self.plan = plan
        self.path, self.info = plan.path, plan.info
        self.largest_intermediate = plan.info.largest_intermediate
        backend = self.backend
        nodes = [lower.run_unary(backend, step, a) for step, a in zip(plan.preps, arrays)]
        for i, j, step, _ in plan.pairs:
            nodes.append(lower.run_pair(backend, step, nodes[i], nodes[j]))
        self._nodes = nodes
        out = nodes[-1]
        if plan.final is not None:
            out = lower.run_unary(backend, plan.final, out)
        return out

    def backward(self, grad):
        plan = self.plan
        inputs = self.inputs
        n = len(inputs)
        needs = [t.requires_grad for t in inputs]
        for i, j, _, k in plan.pairs:
            needs.append(needs[i] or needs[j])
        if _tape.is_recording():
            # create_graph: recompute the intermediates as recorded functions of the inputs
            nodes = [t if step.identity else EinsumUnary(step)(t)
                     for step, t in zip(plan.preps, inputs)]
            for i, j, step, _ in plan.pairs:
                nodes.append(EinsumPair(step)(nodes[i], nodes[j]))
        else:
            nodes = [inputs[k] if plan.preps[k].identity else self.constant(a)
                     for k, a in enumerate(self._nodes[:n])]
            nodes += [self.constant(a) for a in self._nodes[n:]]
        g = grad
        if plan.final is not None:
            g = EinsumUnaryAdjoint(plan.final)(g)
        grads = {len(nodes) - 1: g}
        for i, j, step, k in reversed(plan.pairs):
            g = grads.pop(k, None)
            if g is None:
                continue
            ga_step, gb_step = step.grad_steps()
            if needs[i]:
                grads[i] = EinsumPair(ga_step)(g, nodes[j])
            if needs[j]:
                grads[j] = EinsumPair(gb_step)(nodes[i], g)
        result = []
        for k, t in enumerate(inputs):
            if not needs[k]:
                result.append(None)
                continue
            g = grads[k]
            step = plan.preps[k]
            g = g if step.identity else EinsumUnaryAdjoint(step)(g)
            if g.dtype != t.dtype:  # mixed float32/float64 operands: each keeps its dtype
                from ..elementwise import AsType
                g = AsType(t.dtype)(g)
            result.append(g)
        return tuple(result)


# =========================================================================== public functions

def einsum(subscripts, *operands, optimize="greedy"):
    """Einstein summation, as numpy.einsum (string or sublist form), differentiable.

    optimize: "greedy" (default), "optimal", False (left to right), or an explicit
    path: a list of pairs as returned by einsum_path (with or without the leading
    "einsum_path")."""
    subscripts, ops = split_args("einsum", subscripts, operands)
    return Einsum(subscripts, optimize)(*ops)


def einsum_path(subscripts, *operands, optimize="greedy"):
    """(path, info) for einsum(subscripts, *operands): path is NumPy's format
    ["einsum_path", (i, j), ...] (pass it back as optimize=), info a PathInfo with
    `largest_intermediate`, `opt_cost`, `naive_cost`, and NumPy's table as str(info).
    Operands may be tensors, arrays, or anything with a `.shape`."""
    subscripts, ops = split_args("einsum_path", subscripts, operands)
    shapes = [tuple(op.shape) if hasattr(op, "shape") else np.shape(op) for op in ops]
    plan = get_plan("einsum", subscripts, shapes, optimize)
    return ["einsum_path"] + list(plan.path), plan.info
