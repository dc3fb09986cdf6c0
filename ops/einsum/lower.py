"""Lowering a plan onto a backend: each step as backend kernel calls.

The same steps for every semiring: the sum-product kernels of einsum and their
adjoints; a selective semiring's ⊕-reductions and products, which keep the winning
index for the backward; a compound semiring's (several arrays per element).
"""
import math

import numpy as np

from ..shape import inverse_permutation


def run_unary_layout(backend, step, a):
    """Squeeze and diagonals of a UnaryStep (no reduction, no permutation)."""
    if step.squeeze_shape is not None:
        a = backend.reshape(a, step.squeeze_shape)
    for p, q in step.diags:
        a = backend.diagonal(a, p, q)
    return a


def run_unary(backend, step, a):
    if step.identity:
        return a
    a = run_unary_layout(backend, step, a)
    if step.reduce_axes:
        a = backend.sum(a, step.reduce_axes)
    if step.perm is not None:
        a = backend.transpose(a, step.perm)
    return a


def unary_adjoint(backend, step, g):
    """The adjoint of run_unary: permute back, broadcast over the reduced labels, place on
    the diagonals, un-squeeze."""
    if step.identity:
        return g
    if step.perm is not None:
        g = backend.transpose(g, inverse_permutation(step.perm))
    if step.reduce_axes:
        expanded = tuple(1 if i in step.reduce_axes else n for i, n in enumerate(step.diag_shape))
        g = backend.broadcast_to(backend.reshape(g, expanded), step.diag_shape)
    return unary_layout_adjoint(backend, step, g)


def unary_layout_adjoint(backend, step, g):
    for p, q in reversed(step.diags):
        g = backend.diag_embed(g, p, q)
    if step.squeeze_shape is not None:
        g = backend.reshape(g, step.in_shape)
    return g


def to_3d(backend, step, a, b):
    """Both sides of a PairStep as (B, L, K) and (B, K, R)."""
    if step.perm_a is not None:
        a = backend.transpose(a, step.perm_a)
    if step.perm_b is not None:
        b = backend.transpose(b, step.perm_b)
    return (_matrix_ready(backend, backend.reshape(a, step.shape_a3)),
            _matrix_ready(backend, backend.reshape(b, step.shape_b3)))


def _matrix_ready(backend, a):
    """`a` itself when its matrices are row- or column-major (BLAS takes them as they
    are), else a contiguous copy: a broadcast (zero-stride) gradient such as the one
    of .sum() would otherwise send numpy.matmul down its slow non-BLAS loop."""
    strides = getattr(a, "strides", None)
    if strides is None:
        return a
    item = a.dtype.itemsize
    rows, cols = a.shape[-2], a.shape[-1]
    s_row, s_col = strides[-2], strides[-1]
    row_major = (cols == 1 or s_col == item) and (rows == 1 or s_row >= cols * item)
    col_major = (rows == 1 or s_row == item) and (cols == 1 or s_col >= rows * item)
    if row_major or col_major or 0 in a.shape:
        return a
    return backend.copy(a)


def from_3d(backend, step, c):
    c = backend.reshape(c, step.natural_shape)
    if step.perm_c is not None:
        c = backend.transpose(c, step.perm_c)
    return c


def run_pair(backend, step, a, b):
    a3, b3 = to_3d(backend, step, a, b)
    return from_3d(backend, step, backend.matmul(a3, b3))



# =========================================================================== selective semirings
# Every step as in einsum, with the sum replaced by an ⊕-reduction that keeps the
# winning index (lowest on ties) and the batched matmul by semiring.matmul.

def semiring_unary(backend, step, a, semiring):
    """A prepare step in a selective semiring: layout, ⊕-reduce with argmax, permute.
    Returns (array, arg or None)."""
    if step.identity:
        return a, None
    a = run_unary_layout(backend, step, a)
    arg = None
    if step.reduce_axes:
        kept = [i for i in range(len(step.diag_shape)) if i not in step.reduce_axes]
        a = backend.transpose(a, tuple(kept) + step.reduce_axes)
        size = math.prod(step.reduce_shape)
        if size == 0:
            a = backend.full(step.kept_shape, semiring.zero, a.dtype)
        else:
            a, arg = semiring.reduce_last(backend, backend.reshape(a, step.kept_shape + (size,)))
    if step.perm is not None:
        a = backend.transpose(a, step.perm)
    return a, arg


def semiring_unary_backward(backend, step, g, arg):
    """Route g back through a prepare step: into the winning reduced position, onto the
    diagonals, un-squeezed."""
    if step.identity:
        return g
    if step.perm is not None:
        g = backend.transpose(g, inverse_permutation(step.perm))
    if step.reduce_axes:
        size = math.prod(step.reduce_shape)
        flat = step.kept_shape + (size,)
        if arg is None:  # empty reduction: no entry won
            g = backend.zeros(flat, g.dtype)
        else:
            idx = backend.reshape(arg, step.kept_shape + (1,))
            src = backend.reshape(g, step.kept_shape + (1,))
            g = backend.scatter_add(flat, len(flat) - 1, idx, src)
        g = backend.reshape(g, step.kept_shape + step.reduce_shape)
        kept = [i for i in range(len(step.diag_shape)) if i not in step.reduce_axes]
        g = backend.transpose(g, inverse_permutation(tuple(kept) + step.reduce_axes))
    return unary_layout_adjoint(backend, step, g)


def semiring_pair(backend, step, a, b, semiring):
    """A pairwise step in a selective semiring: (c, arg), arg (B, L, R) the winning
    contracted index of every entry of c."""
    a3, b3 = to_3d(backend, step, a, b)
    c3, arg = semiring.matmul(backend, a3, b3)
    return from_3d(backend, step, c3), arg


def semiring_pair_backward(backend, step, semiring, a, b, arg, g, need_a, need_b):
    """(da, db) of a pairwise step: g routed to the winning entries."""
    nb, nl, nk = step.shape_a3
    nr = step.shape_b3[2]
    if step.perm_c is not None:
        g = backend.transpose(g, inverse_permutation(step.perm_c))
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
            ga = backend.transpose(ga, inverse_permutation(step.perm_a))
    if need_b:
        natural = tuple(step.sizes[x] for x in step.batch + step.contract + step.right)
        gb = backend.reshape(gb3, natural)
        if step.perm_b is not None:
            gb = backend.transpose(gb, inverse_permutation(step.perm_b))
    return ga, gb


# =========================================================================== compound semirings
# An element is a tuple of arrays of one shape: every layout step applies to each.

def compound_unary(backend, step, x, semiring):
    if step.identity:
        return x
    x = tuple(run_unary_layout(backend, step, c) for c in x)
    if step.reduce_axes:
        kept = [i for i in range(len(step.diag_shape)) if i not in step.reduce_axes]
        order = tuple(kept) + step.reduce_axes
        size = math.prod(step.reduce_shape)
        x = tuple(backend.reshape(backend.transpose(c, order), step.kept_shape + (size,))
                  for c in x)
        x = semiring.sum(backend, x, len(step.kept_shape))
    if step.perm is not None:
        x = tuple(backend.transpose(c, step.perm) for c in x)
    return x


def compound_pair(backend, step, a, b, semiring):
    sides = [to_3d(backend, step, x, y) for x, y in zip(a, b)]
    c3 = semiring.matmul(backend, tuple(s[0] for s in sides), tuple(s[1] for s in sides))
    return tuple(from_3d(backend, step, c) for c in c3)


# =========================================================================== a whole contraction

class Contraction:
    """A selective-semiring contraction of one plan with as little per-step work as
    possible, for the tropical solvers (and any caller that wants the winners, not a
    gradient array).

        c = Contraction(plan, semiring)
        out = c.run(backend, arrays)          # the output (a backend array)
        assignment = c.trace()                # {label: index} of the winning terms

    run: each prepare step as in tropical_einsum, each pairwise step one
    backend.tropical_contract (values only: the permutations fused, no winners
    stored), every node kept (keep=False frees them as it goes: for a value only).
    trace(index): the winning assignment of every label for one output entry, read
    back from the kept values step by step, root first: at each step the contracted
    labels take the first (lowest flat index) value that attains the step's entry,
    exactly the routing of TropicalEinsum's backward for a one-hot output gradient,
    so the same tie rule on every backend. Costs O(sum of contracted sizes)."""

    def __init__(self, plan, semiring):
        if not semiring.selective:
            raise ValueError(f"Contraction: semiring {semiring.name!r} is compound; "
                             "only a selective semiring has winners to trace")
        self.plan, self.semiring = plan, semiring
        self.nodes = None

    def run(self, backend, arrays, keep=True, on_step=None):
        """The output; on_step(k) after the k-th pairwise step (progress)."""
        plan, sr = self.plan, self.semiring
        self.backend, self.inputs = backend, list(arrays)
        nodes = [semiring_unary(backend, step, a, sr)[0] for step, a in zip(plan.preps, arrays)]
        for count, (i, j, step, _) in enumerate(plan.pairs, 1):
            c = backend.tropical_contract(nodes[i], nodes[j], step.perm_a, step.shape_a3,
                                          step.perm_b, step.shape_b3, step.natural_shape, sr)
            if step.perm_c is not None:
                c = backend.transpose(c, step.perm_c)
            nodes.append(c)
            if not keep:
                nodes[i] = nodes[j] = None
            if on_step is not None:
                on_step(count)
        out = nodes[-1]
        if plan.final is not None:
            out = backend.transpose(out, plan.final.perm)
        self.nodes = nodes if keep else None
        return out

    def trace(self, index=()):
        """{label: index} of the winning assignment for output entry `index`."""
        if self.nodes is None:
            raise RuntimeError("Contraction.trace: run(..., keep=True) first")
        plan, backend = self.plan, self.backend
        index = tuple(int(i) for i in (index if isinstance(index, tuple) else (index,)))
        if len(index) != len(plan.spec.output):
            raise ValueError(f"Contraction.trace: index {index} for an output of "
                             f"{len(plan.spec.output)} dims")
        assign = dict(zip(plan.spec.output, index))
        for i, j, step, _ in reversed(plan.pairs):
            if not step.contract:
                continue
            digits = _digits(step.contract, step.sizes)
            va = _entries(backend, self.nodes[i], step.a_labels, assign, digits)
            vb = _entries(backend, self.nodes[j], step.b_labels, assign, digits)
            self._choose(_TIMES_HOST[self.semiring.times](va, vb), step.contract, digits,
                         assign)
        for step, labels, a in zip(plan.preps, plan.spec.inputs, self.inputs):
            reduced = [step.diag_labels[p] for p in step.reduce_axes]
            if not reduced:
                continue
            digits = _digits(reduced, plan.spec.sizes)
            squeezed = [n == 1 and plan.spec.sizes[l] != 1 for l, n in zip(labels, a.shape)]
            vals = _entries(backend, a, labels, assign, digits, squeezed)
            self._choose(vals, reduced, digits, assign)
        for labels in plan.spec.inputs:   # broadcast size-1 labels nothing constrains
            for l in labels:
                assign.setdefault(l, 0)
        return assign

    def _choose(self, cand, labels, digits, assign):
        # the first best: np.argmax / argmin return the first one, and a NaN first
        k = int(np.argmax(cand) if self.semiring.plus == "max" else np.argmin(cand))
        for l in labels:
            assign[l] = int(digits[l][k])

    def peak_bytes(self, itemsize):
        """Bytes held at the end of run(keep=True): the inputs, every node, and the
        largest step's transposed copies (the default tropical_contract makes them)."""
        plan = self.plan
        total = sum(math.prod(s) for s in plan.in_shapes)
        total += sum(math.prod(step.out_shape) for step in plan.preps if not step.identity)
        work = 0
        for _, _, step, _ in plan.pairs:
            total += math.prod(step.c_shape)
            work = max(work, math.prod(step.a_shape) + math.prod(step.b_shape))
        return (total + work) * itemsize


_TIMES_HOST = {"add": np.add, "mul": np.multiply, "minimum": np.minimum, "maximum": np.maximum}


def _digits(labels, sizes):
    """{label: its index in each term} over the row-major enumeration of `labels`."""
    grids = np.indices(tuple(sizes[l] for l in labels)).reshape(len(labels), -1)
    return {l: g for l, g in zip(labels, grids)}


def _entries(backend, array, labels, assign, digits, squeezed=None):
    """array's entries at the assigned labels, one per term of `digits` (host)."""
    key = []
    for p, l in enumerate(labels):
        if squeezed is not None and squeezed[p]:
            key.append(0)
        elif l in assign:
            key.append(assign[l])
        else:
            key.append(digits[l])
    if not any(isinstance(k, np.ndarray) for k in key):
        return np.asarray(backend.to_numpy(backend.getitem(array, tuple(key)))).reshape(1)
    return np.asarray(backend.to_numpy(backend.getitem(array, tuple(key)))).reshape(-1)
