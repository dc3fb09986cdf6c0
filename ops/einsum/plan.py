"""The plan of an einsum: everything forward and backward need, computed once per
(subscripts, shapes, path) and cached.

prepare each operand (one UnaryStep: squeeze the broadcast size-1 dims, take the
diagonal of repeated labels, reduce the labels that appear nowhere else), contract
pairwise along the path (one PairStep each: transpose both sides to (batch, free,
contracted) / (batch, contracted, free), reshape to 3-D, one batched product,
reshape back), and permute the last intermediate into the output's label order.
"""
from collections import OrderedDict

from ..shape import inverse_permutation
from .parse import parse
from .path import PathInfo, _flops, _size, find_path, greedy_path  # noqa: F401


# =========================================================================== steps

class UnaryStep:
    """One operand -> unique labels: squeeze broadcast dims, diagonals, reduce, permute.

    Attributes (all static, from shapes): in_shape; squeeze_shape (None when nothing is
    squeezed); diags [(p, q)] applied in order (each moves the diagonal to the end);
    diag_shape; reduce_axes (in the post-diagonal layout); kept_shape (after the
    reduction); perm (None for identity); out_labels; out_shape."""

    def __init__(self, labels, in_shape, sizes, keep, out_order=None):
        self.in_shape = tuple(in_shape)
        labels = list(labels)
        shape = list(in_shape)
        # 1. squeeze size-1 dims that broadcast against a bigger size elsewhere
        drop = [i for i, (label, n) in enumerate(zip(labels, shape)) if n == 1 and sizes[label] != 1]
        labels = [x for i, x in enumerate(labels) if i not in drop]
        shape = [n for i, n in enumerate(shape) if i not in drop]
        self.squeeze_shape = tuple(shape) if drop else None
        # 2. diagonals
        self.diags = []
        while True:
            rep = next((x for x in labels if labels.count(x) > 1), None)
            if rep is None:
                break
            p = labels.index(rep)
            q = labels.index(rep, p + 1)
            self.diags.append((p, q))
            n = shape[p]
            labels = [x for i, x in enumerate(labels) if i not in (p, q)] + [rep]
            shape = [m for i, m in enumerate(shape) if i not in (p, q)] + [n]
        self.diag_shape = tuple(shape)
        self.diag_labels = tuple(labels)
        # 3. reduce the labels not kept
        self.reduce_axes = tuple(i for i, x in enumerate(labels) if x not in keep)
        kept = [x for x in labels if x in keep]
        self.kept_labels = tuple(kept)
        self.kept_shape = tuple(sizes_of(kept, labels, shape))
        self.reduce_shape = tuple(shape[i] for i in self.reduce_axes)
        # 4. permute
        if out_order is None:
            out_order = kept
        out_order = list(out_order)
        perm = tuple(kept.index(x) for x in out_order)
        self.perm = None if perm == tuple(range(len(perm))) else perm
        self.out_labels = tuple(out_order)
        self.out_shape = tuple(self.kept_shape[i] for i in perm)
        self.identity = (not drop and not self.diags and not self.reduce_axes
                         and self.perm is None)

    def inverse_perm(self):
        return inverse_permutation(self.perm)


def sizes_of(which, labels, shape):
    return [shape[labels.index(x)] for x in which]


class PairStep:
    """C = A·B over unique labels with no lone label: transpose + reshape + batched matmul.

    a_labels, b_labels, c_labels, sizes. The result comes out in (batch, left, right)
    order and is permuted into c_labels when that differs."""

    def __init__(self, a_labels, b_labels, c_labels, sizes):
        a_labels, b_labels, c_labels = tuple(a_labels), tuple(b_labels), tuple(c_labels)
        self.a_labels, self.b_labels, self.c_labels = a_labels, b_labels, c_labels
        self.sizes = sizes
        bset, cset = set(b_labels), set(c_labels)
        batch = [x for x in a_labels if x in bset and x in cset]
        left = [x for x in a_labels if x not in bset]
        contract = [x for x in a_labels if x in bset and x not in cset]
        right = [x for x in b_labels if x not in set(a_labels)]
        self.batch, self.left, self.contract, self.right = batch, left, contract, right
        self.perm_a = _perm(a_labels, batch + left + contract)
        self.perm_b = _perm(b_labels, batch + contract + right)
        nb, nl = _size(batch, sizes), _size(left, sizes)
        nk, nr = _size(contract, sizes), _size(right, sizes)
        self.shape_a3, self.shape_b3 = (nb, nl, nk), (nb, nk, nr)
        natural = batch + left + right
        self.natural_shape = tuple(sizes[x] for x in natural)
        self.perm_c = _perm(natural, c_labels)
        self.c_shape = tuple(sizes[x] for x in c_labels)
        self.a_shape = tuple(sizes[x] for x in a_labels)
        self.b_shape = tuple(sizes[x] for x in b_labels)
        self.flops = _flops(set(a_labels) | bset, bool(contract), 2, sizes)
        self._grads = None

    def grad_steps(self):
        """(step for dA = dC·B -> A, step for dB = A·dC -> B), built once."""
        if self._grads is None:
            self._grads = (PairStep(self.c_labels, self.b_labels, self.a_labels, self.sizes),
                           PairStep(self.a_labels, self.c_labels, self.b_labels, self.sizes))
        return self._grads


def _perm(have, want):
    perm = tuple(have.index(x) for x in want)
    return None if perm == tuple(range(len(perm))) else perm


class Plan:
    """Everything forward and backward need, computed once per (subscripts, shapes, path).

    preps: one UnaryStep per operand; pairs: [(i, j, PairStep, k)] contracting nodes i, j
    into node k (nodes 0..n-1 are the prepared operands); final: UnaryStep (a pure
    permutation) from the last node to the output, or None; path, info."""

    def __init__(self, spec, shapes, optimize, name):
        self.spec = spec
        self.in_shapes = [tuple(s) for s in shapes]
        sizes = spec.sizes
        n = len(shapes)
        out_set = set(spec.output)
        self.out_shape = tuple(sizes[x] for x in spec.output)
        self.out_labels = spec.output
        # labels each operand keeps after squeezing broadcast size-1 dims
        present = []
        for labels, shape in zip(spec.inputs, shapes):
            present.append({x for x, m in zip(labels, shape) if not (m == 1 and sizes[x] != 1)})
        if n == 1:
            self.preps = [UnaryStep(spec.inputs[0], shapes[0], sizes, out_set, spec.output)]
            self.pairs, self.final, self.path = [], None, []
            self.info = PathInfo([spec.output], spec.output, sizes, [], _method(optimize),
                                 text=spec.text, count_operands=False)
            return
        # how many operands (later: live nodes) hold each label: "needed elsewhere" is a
        # count above the node's own, so planning is linear in the network, not quadratic
        held = {}
        for labels in present:
            for x in labels:
                held[x] = held.get(x, 0) + 1
        self.preps = []
        for k in range(n):
            elsewhere = out_set | {x for x in present[k] if held[x] > 1}
            self.preps.append(UnaryStep(spec.inputs[k], shapes[k], sizes, elsewhere))
        node_labels = [p.out_labels for p in self.preps]
        held = {}
        for labels in node_labels:
            for x in labels:
                held[x] = held.get(x, 0) + 1
        steps = find_path([set(l) for l in node_labels], out_set, sizes, optimize, name)
        self.pairs, self.path = [], []
        alive = list(range(n))   # node ids in path order; a new node goes to the end

        def contract(p, q):
            i, j = alive[p], alive[q]
            a, b = node_labels[i], node_labels[j]
            aset, bset = set(a), set(b)

            def needed(x):   # by a node other than i and j, or the output
                return x in out_set or held[x] > (x in aset) + (x in bset)

            batch = [x for x in a if x in bset and needed(x)]
            left = [x for x in a if x not in bset and needed(x)]
            right = [x for x in b if x not in aset and needed(x)]
            step = PairStep(a, b, batch + left + right, sizes)
            k = len(node_labels)
            node_labels.append(step.c_labels)
            for x in aset | bset:
                held[x] -= (x in aset) + (x in bset)
            for x in step.c_labels:
                held[x] += 1
            self.path.append((p, q))
            self.pairs.append((i, j, step, k))
            for r in sorted((p, q), reverse=True):
                del alive[r]
            alive.append(k)

        for step in steps:
            if any(not 0 <= p < len(alive) for p in step) or len(set(step)) != len(step):
                raise ValueError(f"{name}({spec.text!r}): path step {step} is not a set of "
                                 f"distinct positions in 0..{len(alive) - 1} (path {steps})")
            members = [alive[p] for p in step]
            if len(members) == 1:
                alive.remove(members[0])
                alive.append(members[0])
            elif len(members) == 2:
                contract(*step)
            else:
                # an n-ary step: contract its members greedily, pairwise
                sub = [set(node_labels[m]) for m in members]
                inside = {}
                for labels in sub:
                    for x in labels:
                        inside[x] = inside.get(x, 0) + 1
                sub_out = {x for x in inside if x in out_set or held[x] > inside[x]}
                for x, y in greedy_path(sub, sub_out, sizes, memory_limit=1 << 62):
                    a, b = members[x], members[y]
                    contract(alive.index(a), alive.index(b))
                    members = [m for m in members if m not in (a, b)] + [alive[-1]]
        if len(alive) != 1:
            raise ValueError(f"{name}({spec.text!r}): the contraction path {steps} leaves "
                             f"{len(alive)} operands uncontracted; a full path contracts "
                             f"{n} operands in {n - 1} pairwise steps")
        last = node_labels[alive[0]]
        final = UnaryStep(last, tuple(sizes[x] for x in last), sizes, out_set, spec.output)
        self.final = None if final.identity else final
        self.info = PathInfo(node_labels[:n], spec.output, sizes, self.path, _method(optimize),
                             text=spec.text, count_operands=False,
                             step_labels=[(s.a_labels, s.b_labels, s.c_labels)
                                          for _, _, s, _ in self.pairs])


def _method(optimize):
    if isinstance(optimize, str):
        return optimize
    if optimize is True:
        return "greedy"
    if optimize is False or optimize is None:
        return "left to right"
    if hasattr(optimize, "name") and hasattr(optimize, "search"):
        return optimize.name
    if (isinstance(optimize, (tuple, list)) and len(optimize) == 2
            and isinstance(optimize[0], str) and optimize[0] != "einsum_path"):
        return optimize[0]
    return "explicit"


_PLANS = OrderedDict()
_PLAN_CACHE_SIZE = 512


def _freeze(optimize):
    if isinstance(optimize, (list, tuple)):
        return ("path",) + tuple(s if isinstance(s, str) else tuple(int(i) for i in s)
                                 for s in optimize)
    return optimize


def get_plan(name, subscripts, shapes, optimize="greedy"):
    """The cached Plan for these subscripts, operand shapes and optimize setting."""
    shapes = tuple(tuple(int(n) for n in s) for s in shapes)
    try:
        key = (name, subscripts, shapes, _freeze(optimize))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key]
    spec = parse(name, subscripts, shapes)
    plan = Plan(spec, shapes, optimize, name)
    if key is not None:
        _PLANS[key] = plan
        if len(_PLANS) > _PLAN_CACHE_SIZE:
            _PLANS.popitem(last=False)
    return plan

