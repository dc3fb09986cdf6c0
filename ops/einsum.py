"""Einsum: NumPy's full grammar, lowered to pairwise batched matmuls on the backend.

    opgraph.einsum("bij,bjk->bik", a, b)
    opgraph.einsum(a, [0, 1], b, [1, 2], [0, 2])        # sublist form, any number of labels
    opgraph.einsum_path("ij,jk,kl->il", a, b, c)         # -> (path, info)

How an einsum runs (the *lowering*; the same for every semiring, see ops/tropical.py):

1. parse: every operand gets a tuple of labels (``...`` expanded to fresh labels,
   right-aligned as in NumPy broadcasting), the output gets its labels, and every
   label its size. A size-1 dimension whose label has size n elsewhere broadcasts.
2. prepare each operand (one unary step): squeeze the broadcast size-1 dims, take the
   diagonal of repeated labels (``ii``), and reduce the labels that appear nowhere
   else (sum for einsum, ⊕ for a semiring).
3. contract pairwise along a path (numpy.einsum_path's greedy or optimal, our own
   port of its greedy for more than 52 labels, left-to-right, or an explicit list of
   pairs). A pairwise step never has a lone label left, so it is exactly:
   transpose both sides to (batch, free, contracted) / (batch, contracted, free),
   reshape to 3-D, one batched matmul, reshape back.
4. transpose the last intermediate into the output's label order.

Backward (the swap rule) reverses the recorded steps, reusing the forward's
intermediates: a pairwise step C = A·B gives dA = einsum(dC, B -> A) and
dB = einsum(A, dC -> B), each again one pairwise step; a prepare step is undone by
broadcasting over the reduced labels, placing the gradient on the diagonal of the
repeated labels (zeros elsewhere), and un-squeezing the broadcast dims (which sums
them back to size 1).
"""
import itertools
from collections import OrderedDict

import numpy as np

from opgraph import tape as _tape
from opgraph.operation import Operation

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# =========================================================================== parsing

class _Ellipsis:
    """The label of the j-th broadcast (``...``) dimension, counted from the left of the
    widest ellipsis. Distinct from every user label."""
    __slots__ = ("j",)

    def __init__(self, j):
        self.j = j

    def __eq__(self, other):
        return isinstance(other, _Ellipsis) and other.j == self.j

    def __hash__(self):
        return hash(("...", self.j))

    def __repr__(self):
        return f"...{self.j}"


def _label_str(label, letters):
    if isinstance(label, _Ellipsis):
        return "..."
    return label if letters else repr(label)


class Spec:
    """A parsed einsum: labels of each operand, of the output, and the size of each label.

    inputs: tuple of label tuples, one per operand (``...`` expanded);
    output: tuple of labels; sizes: {label: size}; text: the subscripts as the user wrote
    them (for messages)."""

    def __init__(self, inputs, output, sizes, text):
        self.inputs, self.output, self.sizes, self.text = inputs, output, sizes, text


def _err(name, text, msg):
    return ValueError(f"{name}({text!r}): {msg}")


def _parse_string(name, subscripts, shapes):
    text = subscripts
    s = subscripts.replace(" ", "")
    for c in s:
        if not (c in _LETTERS or c in ".,->"):
            raise _err(name, text, f"invalid character {c!r} in the subscripts; only letters "
                                   "a-z A-Z, '...', ',' and '->' are allowed")
    if s.count("->") > 1 or s.count("-") != s.count("->") or s.count(">") != s.count("->"):
        raise _err(name, text, "'->' must appear at most once, and '-' and '>' only as '->'")
    explicit = "->" in s
    lhs, rhs = s.split("->") if explicit else (s, None)
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise _err(name, text, f"{len(terms)} subscript term{'s' * (len(terms) != 1)} but "
                               f"{len(shapes)} operand{'s' * (len(shapes) != 1)}")
    parsed = [_split_ellipsis(name, text, t, letters=True) for t in terms]
    out = None if rhs is None else _split_ellipsis(name, text, rhs, letters=True)
    return _finish(name, text, parsed, out, shapes, letters=True)


def _split_ellipsis(name, text, term, letters):
    """'ab...c' -> ['a', 'b', Ellipsis, 'c'] (validating the dots)."""
    if letters:
        if term.replace("...", "").count("."):
            raise _err(name, text, f"term {term!r}: '.' may only appear as a full '...'")
        pieces = term.split("...")
        if len(pieces) > 2:
            raise _err(name, text, f"term {term!r} has more than one '...'")
        out = list(pieces[0])
        if len(pieces) == 2:
            out += [Ellipsis] + list(pieces[1])
        return out
    out = list(term)
    if out.count(Ellipsis) > 1:
        raise _err(name, text, f"sublist {term!r} has more than one Ellipsis")
    for label in out:
        if label is Ellipsis:
            continue
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise _err(name, text, f"sublist {term!r}: labels must be non-negative integers "
                                   f"(or Ellipsis), got {label!r}")
    return [label if label is Ellipsis else int(label) for label in out]


def _parse_sublists(name, sublists, out, shapes):
    pieces = []
    for sl in sublists + ([out] if out is not None else []):
        pieces.append("[" + ", ".join("..." if x is Ellipsis else repr(x) for x in sl) + "]")
    text = ",".join(pieces[:len(sublists)]) + ("->" + pieces[-1] if out is not None else "")
    parsed = [_split_ellipsis(name, text, list(t), letters=False) for t in sublists]
    out = None if out is None else _split_ellipsis(name, text, list(out), letters=False)
    return _finish(name, text, parsed, out, shapes, letters=False)


def _finish(name, text, parsed, out, shapes, letters):
    # expand '...' to fresh labels, right-aligned across operands
    ell_ndims = []
    for k, (term, shape) in enumerate(zip(parsed, shapes)):
        named = len(term) - term.count(Ellipsis)
        if Ellipsis in term:
            if named > len(shape):
                raise _err(name, text, f"operand {k} has {len(shape)} dims (shape "
                                       f"{tuple(shape)}) but its term names {named} plus '...'")
            ell_ndims.append(len(shape) - named)
        else:
            if named != len(shape):
                raise _err(name, text, f"operand {k} has {len(shape)} dims (shape "
                                       f"{tuple(shape)}) but its term "
                                       f"{_term_str(term, letters)!r} names {named}")
            ell_ndims.append(0)
    width = max(ell_ndims, default=0)
    inputs = []
    for term, e in zip(parsed, ell_ndims):
        labels = []
        for x in term:
            if x is Ellipsis:
                labels += [_Ellipsis(j) for j in range(width - e, width)]
            else:
                labels.append(x)
        inputs.append(tuple(labels))
    # sizes: equal, or 1 broadcasting against n (never within one operand)
    seen = {}
    for k, (labels, shape) in enumerate(zip(inputs, shapes)):
        mine = {}
        for label, n in zip(labels, shape):
            if label in mine and mine[label] != n:
                raise _err(name, text, f"operand {k} repeats index "
                                       f"{_label_str(label, letters)!r} over dims of different "
                                       f"sizes {mine[label]} and {n} (shape {tuple(shape)})")
            mine[label] = n
            seen.setdefault(label, []).append((k, n))
    sizes = {}
    for label, uses in seen.items():
        big = {n for _, n in uses if n != 1}
        if len(big) > 1:
            desc = ", ".join(f"{n} in operand {k}" for k, n in uses)
            what = ("the '...' dims" if isinstance(label, _Ellipsis)
                    else f"index {_label_str(label, letters)!r}")
            raise _err(name, text, f"operands disagree on the size of {what}: {desc}")
        sizes[label] = big.pop() if big else 1
    # output
    if out is None:
        counts = {}
        for labels in inputs:
            for label in labels:
                if not isinstance(label, _Ellipsis):
                    counts[label] = counts.get(label, 0) + 1
        once = [label for label, c in counts.items() if c == 1]
        output = tuple(_Ellipsis(j) for j in range(width)) + tuple(sorted(once, key=_sort_key))
    else:
        output = []
        for x in out:
            if x is Ellipsis:
                output += [_Ellipsis(j) for j in range(width)]
            else:
                if x not in sizes:
                    raise _err(name, text, f"output index {_label_str(x, letters)!r} appears "
                                           "in no input")
                if x in output:
                    raise _err(name, text, f"output index {_label_str(x, letters)!r} is "
                                           "repeated; each output index may appear once")
                output.append(x)
        output = tuple(output)
    return Spec(tuple(inputs), output, sizes, text)


def _sort_key(label):
    return (type(label).__name__, label)


def _term_str(term, letters):
    if letters:
        return "".join("..." if x is Ellipsis else x for x in term)
    return str(["..." if x is Ellipsis else x for x in term])


def parse(name, subscripts, shapes):
    """A Spec from string subscripts, or from (sublists, output-or-None)."""
    shapes = [tuple(int(n) for n in s) for s in shapes]
    if not shapes:
        raise ValueError(f"{name}: no operands given; expected at least one tensor")
    if isinstance(subscripts, str):
        return _parse_string(name, subscripts, shapes)
    sublists, out = subscripts
    sublists = [list(s) for s in sublists]
    if len(sublists) != len(shapes):
        raise ValueError(f"{name}: {len(sublists)} sublists but {len(shapes)} operands")
    return _parse_sublists(name, sublists, None if out is None else list(out), shapes)


def split_args(name, subscripts, operands):
    """(subscripts, operands) from either calling form:
    einsum("ij,jk->ik", a, b) or einsum(a, [0, 1], b, [1, 2], [0, 2])."""
    if isinstance(subscripts, str):
        if not operands:
            raise ValueError(f"{name}({subscripts!r}): no operands given")
        return subscripts, list(operands)
    args = [subscripts] + list(operands)
    out = args.pop() if len(args) % 2 else None
    if not args:
        raise ValueError(f"{name}: no operands given")
    ops, sublists = args[0::2], args[1::2]
    for k, sl in enumerate(sublists):
        if not _is_sublist(sl):
            raise ValueError(f"{name}: in the sublist form every operand must be followed by a "
                             f"list of integer labels; operand {k} is followed by "
                             f"{type(sl).__name__} (arguments: {_describe_args(args, out)})")
    if out is not None and not _is_sublist(out):
        raise ValueError(f"{name}: the output sublist must be a list of labels, got "
                         f"{type(out).__name__} (arguments: {_describe_args(args, out)}; "
                         "each operand needs its own sublist)")
    return (tuple(tuple(_labels(s)) for s in sublists),
            None if out is None else tuple(_labels(out))), ops


def _is_sublist(x):
    """A sequence of labels: list, tuple, range, 1-D NumPy int array (labels checked later)."""
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and (x.dtype.kind in "iu" or x.size == 0)
    return isinstance(x, (list, tuple, range))


def _labels(x):
    return x.tolist() if isinstance(x, np.ndarray) else list(x)


def _describe_args(args, out):
    parts = [f"tensor{tuple(a.shape)}" if hasattr(a, "shape") and not isinstance(a, (list, tuple))
             else repr(a) for a in args + ([out] if out is not None else [])]
    return ", ".join(parts)


# =========================================================================== contraction paths

def _size(labels, sizes):
    n = 1
    for label in labels:
        n *= sizes[label]
    return n


def _flops(labels, inner, num_terms, sizes):
    """numpy.einsum_path's FLOP count of one contraction over `labels`."""
    return _size(labels, sizes) * (max(1, num_terms - 1) + (1 if inner else 0))


def greedy_path(sets, output, sizes, memory_limit=None):
    """NumPy's greedy path (a port of numpy's _greedy_path, for any hashable labels).

    sets: list of label sets; output: set. memory_limit None means the largest of the
    inputs and the output, as numpy.einsum_path. Returns pairs in einsum_path's
    positional convention. Where NumPy would fall back to one n-ary step (no pair fits
    the memory limit), this continues greedily without the limit, so the path is
    always pairwise."""
    sets = [frozenset(s) for s in sets]
    output = frozenset(output)
    if len(sets) <= 1:
        return []
    if len(sets) == 2:
        return [(0, 1)]
    if memory_limit is None:
        memory_limit = max(_size(s, sizes) for s in sets + [output])
    counts = {}
    for s in sets:
        for label in s:
            counts[label] = counts.get(label, 0) + 1
    everything = frozenset(counts)
    naive = _flops(everything, bool(everything - output), len(sets), sizes)

    def candidate(x, y, limited):
        a, b = sets[x], sets[y]
        both = a | b
        keep = frozenset(l for l in both if l in output or
                         counts[l] - (l in a) - (l in b) > 0)
        new_size = _size(keep, sizes)
        if limited and new_size > memory_limit:
            return None
        removed_size = _size(a, sizes) + _size(b, sizes) - new_size
        cost = _flops(both, bool(both - keep), 2, sizes)
        if limited and path_cost + cost > naive:
            return None
        return [(-removed_size, cost), (x, y), keep]

    path, path_cost, known, limited = [], 0, [], True
    pairs = itertools.combinations(range(len(sets)), 2)
    while len(sets) > 1:
        for x, y in pairs:
            if sets[x].isdisjoint(sets[y]):
                continue  # outer products only when nothing else is left
            c = candidate(x, y, limited)
            if c is not None:
                known.append(c)
        if not known:
            for x, y in itertools.combinations(range(len(sets)), 2):
                c = candidate(x, y, limited)
                if c is not None:
                    known.append(c)
            if not known:
                # NumPy would do one n-ary einsum here; go on pairwise without the limits
                limited = False
                pairs = itertools.combinations(range(len(sets)), 2)
                continue
        best = min(known, key=lambda c: c[0])
        bx, by = best[1]
        # contract
        for label in sets[bx] | sets[by]:
            counts[label] -= (label in sets[bx]) + (label in sets[by])
        for label in best[2]:
            counts[label] += 1
        sets = [s for i, s in enumerate(sets) if i not in (bx, by)] + [best[2]]
        kept = []
        for c in known:
            x, y = c[1]
            if x in (bx, by) or y in (bx, by):
                continue
            c[1] = (x - (x > bx) - (x > by), y - (y > bx) - (y > by))
            kept.append(c)
        known = kept
        new = len(sets) - 1
        pairs = ((i, new) for i in range(new))
        path.append((bx, by))
        path_cost += best[0][1]
    return path


def optimal_path(sets, output, sizes, max_operands=14):
    """The pairwise path of least total FLOP count (dynamic programming over subsets).
    Exponential in the number of operands; refuses more than `max_operands`."""
    n = len(sets)
    if n <= 1:
        return []
    if n > max_operands:
        raise ValueError(f"optimize='optimal' searches all {n}-operand contraction orders, "
                         f"which is too many (limit {max_operands}); use optimize='greedy'")
    sets = [frozenset(s) for s in sets]
    output = frozenset(output)
    full = (1 << n) - 1
    union = {}
    for mask in range(1, full + 1):
        low = mask & -mask
        i = low.bit_length() - 1
        union[mask] = sets[i] | union.get(mask ^ low, frozenset())

    def kept(mask):
        if mask & (mask - 1) == 0:  # a single operand keeps all its labels
            return union[mask]
        return union[mask] & (output | union.get(full ^ mask, frozenset()))

    best = {1 << i: (0, None) for i in range(n)}
    for mask in sorted(range(1, full + 1), key=lambda m: bin(m).count("1")):
        if mask in best:
            continue
        result = kept(mask)
        top = None
        sub = (mask - 1) & mask
        while sub:
            other = mask ^ sub
            if sub < other:  # each split once
                c = best[sub][0] + best[other][0]
                if top is None or c < top[0]:
                    both = kept(sub) | kept(other)
                    c += _flops(both, bool(both - result), 2, sizes)
                    if top is None or c < top[0]:
                        top = (c, (sub, other))
            sub = (sub - 1) & mask
        best[mask] = top
    # tree -> positional path
    order = []

    def walk(mask):
        split = best[mask][1]
        if split is None:
            return
        walk(split[0])
        walk(split[1])
        order.append(split)

    walk(full)
    alive = [1 << i for i in range(n)]
    path = []
    for a, b in order:
        i, j = alive.index(a), alive.index(b)
        path.append((i, j))
        alive = [m for m in alive if m not in (a, b)] + [a | b]
    return path


def _numpy_path(sets, output, sizes, kind="greedy", memory_limit=None):
    """numpy.einsum_path's path of `kind`, on shapes only (zero-stride dummy operands)."""
    labels = sorted(set().union(*sets) | set(output), key=repr)
    letter = {label: _LETTERS[i] for i, label in enumerate(labels)}
    order = [sorted(s, key=repr) for s in sets]
    expr = ",".join("".join(letter[x] for x in s) for s in order)
    expr += "->" + "".join(letter[x] for x in sorted(output, key=repr))
    dummies = [np.broadcast_to(np.zeros(()), tuple(sizes[x] for x in s)) for s in order]
    opt = (kind, 1 << 62 if memory_limit is None else memory_limit) if kind == "optimal" \
        else kind if memory_limit is None else (kind, memory_limit)
    path = np.einsum_path(expr, *dummies, optimize=opt)[0][1:]
    steps = [tuple(int(i) for i in step) for step in path]
    if any(len(step) > 2 for step in steps):  # numpy gave up on pairs under the limit
        return greedy_path(sets, output, sizes, memory_limit)
    return steps


def find_path(sets, output, sizes, optimize):
    """A list of steps (tuples of positions, einsum_path convention) for `optimize`:
    "greedy" (or True), "optimal", False (left to right), ("greedy" | "optimal",
    memory_limit) as numpy.einsum, or an explicit list of pairs."""
    n = len(sets)
    if n <= 1:
        return []
    if optimize is False or optimize is None:
        # each result goes to the end of the list: pair the first operand with it
        return [(0, 1)] + [(0, n - 1 - s) for s in range(1, n - 1)]
    if optimize is True:
        optimize = "greedy"
    memory_limit = None
    if (isinstance(optimize, (tuple, list)) and len(optimize) == 2
            and isinstance(optimize[0], str) and optimize[0] != "einsum_path"):
        optimize, memory_limit = optimize
        if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, float)):
            raise ValueError(f"einsum: optimize=({optimize!r}, {memory_limit!r}): the memory "
                             "limit must be a number of elements")
    if isinstance(optimize, str):
        if optimize not in ("greedy", "optimal"):
            raise ValueError(f"einsum: unknown optimize={optimize!r}; expected 'greedy', "
                             "'optimal', False or a list of pairs")
        if n == 2:
            return [(0, 1)]
        if optimize == "optimal":  # exact, and far faster than numpy's brute force
            return optimal_path(sets, output, sizes)
        labels = set().union(*sets) | set(output)
        if len(labels) <= len(_LETTERS):
            return _numpy_path(sets, output, sizes, "greedy", memory_limit)
        return greedy_path(sets, output, sizes, memory_limit)
    steps = list(optimize)
    if steps and steps[0] == "einsum_path":
        steps = steps[1:]
    out = []
    for step in steps:
        try:
            out.append(tuple(int(i) for i in step))
        except (TypeError, ValueError):
            raise ValueError(f"einsum: explicit path step {step!r} is not a tuple of operand "
                             "positions") from None
    return out


# =========================================================================== the plan

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
        inv = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inv[p] = i
        return tuple(inv)


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


class PathInfo:
    """What numpy.einsum_path reports, as attributes: the path (pairs), naive and
    optimized FLOP counts, the largest intermediate (elements) and one line per step.
    str() gives NumPy's table."""

    def __init__(self, text, path, naive_cost, opt_cost, largest, scaling, lines):
        self.subscripts, self.path = text, path
        self.naive_cost, self.opt_cost = naive_cost, opt_cost
        self.largest_intermediate, self.scaling, self.steps = largest, scaling, lines

    @property
    def speedup(self):
        return self.naive_cost / max(self.opt_cost, 1)

    def __str__(self):
        head = [f"  Complete contraction:  {self.subscripts}",
                f"     Optimized scaling:  {self.scaling}",
                f"      Naive FLOP count:  {self.naive_cost:.3e}",
                f"  Optimized FLOP count:  {self.opt_cost:.3e}",
                f"   Theoretical speedup:  {self.speedup:.3f}",
                f"  Largest intermediate:  {self.largest_intermediate:.3e} elements",
                "-" * 60, f"{'scaling':>8s}  {'step':<40s}", "-" * 60]
        return "\n".join(head + [f"{s:>8d}  {line}" for s, line in self.steps])

    def __repr__(self):
        return (f"<einsum path {self.path}: largest intermediate {self.largest_intermediate} "
                f"elements, {self.opt_cost:.3g} flops>")


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
            self.info = PathInfo(spec.text, [], 0, 0, _size(spec.output, sizes), len(sizes), [])
            self._cost(name)
            return
        self.preps = []
        for k in range(n):
            elsewhere = set(out_set)
            for j in range(n):
                if j != k:
                    elsewhere |= present[j]
            self.preps.append(UnaryStep(spec.inputs[k], shapes[k], sizes, elsewhere))
        node_labels = [p.out_labels for p in self.preps]
        steps = find_path([set(l) for l in node_labels], out_set, sizes, optimize)
        self.pairs, self.path = [], []
        alive = list(range(n))
        lines = []

        def contract(i, j):
            a, b = node_labels[i], node_labels[j]
            others = set(out_set)
            for m in alive:
                if m not in (i, j):
                    others |= set(node_labels[m])
            bset = set(b)
            batch = [x for x in a if x in bset and x in others]
            left = [x for x in a if x not in bset and x in others]
            right = [x for x in b if x not in set(a) and x in others]
            step = PairStep(a, b, batch + left + right, sizes)
            k = len(node_labels)
            node_labels.append(step.c_labels)
            self.path.append((alive.index(i), alive.index(j)))
            self.pairs.append((i, j, step, k))
            alive.remove(i)
            alive.remove(j)
            alive.append(k)
            lines.append((len(set(a) | bset), f"{_labels_text(a)},{_labels_text(b)}->"
                                              f"{_labels_text(step.c_labels)}"))

        for step in steps:
            if any(not 0 <= p < len(alive) for p in step) or len(set(step)) != len(step):
                raise ValueError(f"{name}({spec.text!r}): path step {step} is not a set of "
                                 f"distinct positions in 0..{len(alive) - 1} (path {steps})")
            members = [alive[p] for p in step]
            if len(members) == 1:
                alive.remove(members[0])
                alive.append(members[0])
            elif len(members) == 2:
                contract(*members)
            else:
                # an n-ary step: contract its members greedily, pairwise
                sub = [set(node_labels[m]) for m in members]
                need = set(out_set)
                for m in alive:
                    if m not in members:
                        need |= set(node_labels[m])
                sub_out = set().union(*sub) & need
                for x, y in greedy_path(sub, sub_out, sizes, memory_limit=1 << 62):
                    a, b = members[x], members[y]
                    contract(a, b)
                    members = [m for m in members if m not in (a, b)] + [alive[-1]]
        if len(alive) != 1:
            raise ValueError(f"{name}({spec.text!r}): the contraction path {steps} leaves "
                             f"{len(alive)} operands uncontracted; a full path contracts "
                             f"{n} operands in {n - 1} pairwise steps")
        last = node_labels[alive[0]]
        final = UnaryStep(last, tuple(sizes[x] for x in last), sizes, out_set, spec.output)
        self.final = None if final.identity else final
        self.info = PathInfo(spec.text, list(self.path), 0, 0, 0, 0, lines)
        self._cost(name)

    def _cost(self, name):
        sizes = self.spec.sizes
        everything = set(sizes)
        n = len(self.in_shapes)
        self.info.naive_cost = _flops(everything, bool(everything - set(self.spec.output)),
                                      n, sizes)
        self.info.opt_cost = sum(step.flops for _, _, step, _ in self.pairs)
        if self.pairs:
            self.info.largest_intermediate = max(_size(step.c_labels, sizes)
                                                 for _, _, step, _ in self.pairs)
            self.info.scaling = max(s for s, _ in self.info.steps)
        else:
            self.info.largest_intermediate = _size(self.spec.output, sizes)
            self.info.scaling = len(sizes)
            self.info.opt_cost = _flops(everything, bool(everything - set(self.spec.output)),
                                        1, sizes)


def _labels_text(labels):
    if all(isinstance(x, str) for x in labels):
        return "".join(labels)
    return "[" + ",".join("..." if isinstance(x, _Ellipsis) else repr(x) for x in labels) + "]"


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


# =========================================================================== kernels (sum-product)

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
        g = backend.transpose(g, step.inverse_perm())
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


# =========================================================================== ops

class EinsumUnary(Operation):
    """One prepare step of an einsum: y = sum over reduced labels of diag(squeeze(x)),
    permuted;  dx = the adjoint: dy permuted back, broadcast over the reduced labels,
    placed on the diagonals (zeros elsewhere), un-squeezed (EinsumUnaryAdjoint)."""

    def __init__(self, step):
        self.step = step

    def forward(self, x):
        return run_unary(self.backend, self.step, x)

    def backward(self, grad):
        return (EinsumUnaryAdjoint(self.step)(grad),)


class EinsumUnaryAdjoint(Operation):
    """y = the adjoint of EinsumUnary applied to g (broadcast + diag_embed + reshape);
    dg = EinsumUnary(dy)."""

    def __init__(self, step):
        self.step = step

    def forward(self, g):
        return unary_adjoint(self.backend, self.step, g)

    def backward(self, grad):
        return (EinsumUnary(self.step)(grad),)


class EinsumPair(Operation):
    """One pairwise einsum step c = Σ_contracted a·b (no lone labels), lowered to
    transpose + reshape + batched matmul;
    swap rule: da = einsum(dc, b -> a's labels), db = einsum(a, dc -> b's labels),
    each again an EinsumPair."""

    def __init__(self, step):
        self.step = step

    def forward(self, a, b):
        return run_pair(self.backend, self.step, a, b)

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
        nodes = [run_unary(backend, step, a) for step, a in zip(plan.preps, arrays)]
        for i, j, step, _ in plan.pairs:
            nodes.append(run_pair(backend, step, nodes[i], nodes[j]))
        self._nodes = nodes
        out = nodes[-1]
        if plan.final is not None:
            out = run_unary(backend, plan.final, out)
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
                from .elementwise import AsType
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
