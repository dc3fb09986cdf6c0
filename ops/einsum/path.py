"""Contraction paths: in which order to contract a network of tensors pairwise.

One module for einsum, tropical einsum and the tropical solver. A network is a list
of label sets (one per operand), the output labels and the size of every label; a
path is a list of pairs in numpy.einsum_path's positional convention (both operands
leave the list, the result is appended).

    find_path(sets, output, sizes, optimize)   -> path        (what einsum's optimize= takes)
    contraction_plan(labels, output, method)   -> PathInfo    (the path and what it costs)
    simulate_path(labels, path, sizes, output) -> (largest tensor, multiply-adds)

Methods: "greedy" (numpy's greedy), "optimal" (subset dynamic programming, few
operands), "min_fill" / "min_degree" (a tree decomposition of the label graph, then
bucket elimination), "treesa" (tree simulated annealing, see treesa.py: the best
orders for large networks), "auto", False (left to right) or an explicit path.
The cost of a pairwise step is the size of the joint index space of its two operands
(the number of ⊗ evaluated); the size of a path is its largest tensor.
"""
import bisect
import heapq
import itertools
import math
import random
import time

import numpy as np

from .parse import _LETTERS, _Ellipsis

# greedy pairs a tensor through a label with at most this many of the label's other
# holders (the newest): linear, not quadratic, on a graph with hub vertices
HUB_PARTNERS = 32

METHODS = ("auto", "greedy", "optimal", "treesa", "min_fill", "min_degree")
ORDER_METHODS = ("auto", "min_fill", "min_degree", "greedy", "treesa")


class PathTooLarge(MemoryError):
    """The path search stopped because an intermediate passed its size bound.

    size: entries of the tensor that passed it; bound: the bound (entries)."""

    def __init__(self, message, size, bound):
        super().__init__(message)
        self.size, self.bound = size, bound


# =========================================================================== sizes and costs

def _size(labels, sizes):
    n = 1
    for label in labels:
        n *= sizes[label]
    return n


def _flops(labels, inner, num_terms, sizes):
    """numpy.einsum_path's FLOP count of one contraction over `labels`."""
    return _size(labels, sizes) * (max(1, num_terms - 1) + (1 if inner else 0))


def simulate_path(labels, path, sizes, output=()):
    """(largest tensor, total cost) of contracting operands with `labels` (one tuple of
    labels each) along `path`: the largest tensor held (operands included), and the sum
    over steps of the entries of the joint index space of the two operands."""
    largest = max((_size(ls, sizes) for ls in labels), default=1)
    cost = 0
    for a, b, result in replay_path(labels, path, output):
        cost += _size(a | b, sizes)
        largest = max(largest, _size(result, sizes))
    return largest, cost


def replay_path(labels, path, output=()):
    """The label sets (a, b, result) of each step of contracting operands with `labels`
    along `path`, in order: the result keeps the labels that a later operand or the
    output still needs."""
    current = [frozenset(l) for l in labels]
    counts = {}
    for ls in current:
        for l in ls:
            counts[l] = counts.get(l, 0) + 1
    keep = frozenset(output)
    for i, j in path:
        a, b = current[i], current[j]
        for pos in sorted((i, j), reverse=True):
            current.pop(pos)
        joint = a | b
        for l in joint:
            counts[l] -= (l in a) + (l in b)
        result = frozenset(l for l in joint if counts[l] > 0 or l in keep)
        for l in result:
            counts[l] += 1
        current.append(result)
        yield a, b, result


def ssa_to_path(ssa, n):
    """Pairs of tensor ids (operands 0..n-1, the k-th result n+k) -> positional pairs."""
    # the list of live ids stays sorted (each result's id is the largest so far), so a
    # position is a bisection: O(n log n) in all, not O(n^2)
    alive = list(range(n))
    path = []
    for k, (x, y) in enumerate(ssa):
        i, j = bisect.bisect_left(alive, x), bisect.bisect_left(alive, y)
        path.append((i, j))
        for p in sorted((i, j), reverse=True):
            del alive[p]
        alive.append(n + k)
    return path


def path_to_ssa(path, n):
    alive = list(range(n))
    ssa = []
    for k, (i, j) in enumerate(path):
        x, y = alive[i], alive[j]
        ssa.append((x, y))
        for p in sorted((i, j), reverse=True):
            del alive[p]
        alive.append(n + k)
    return ssa


# =========================================================================== greedy

def greedy_path(sets, output, sizes, memory_limit=None, abort_size=None):
    """NumPy's greedy path (numpy.einsum_path's _greedy_path, for any hashable labels),
    with a heap of candidate pairs so that it scales to thousands of operands.

    sets: list of label sets; output: set. memory_limit None means the largest of the
    inputs and the output, as numpy.einsum_path. Returns pairs in einsum_path's
    positional convention. Where NumPy would fall back to one n-ary step (no pair fits
    the memory limit), this continues greedily without the limit, so the path is
    always pairwise. abort_size (entries): raise PathTooLarge as soon as a step
    creates a larger tensor (the size bound checked while the path is built)."""
    sets = [frozenset(s) for s in sets]
    output = frozenset(output)
    n = len(sets)
    if n <= 1:
        return []
    if n == 2:
        _check_abort(sets[0] | sets[1], sets, output, sizes, abort_size)
        return [(0, 1)]
    if memory_limit is None:
        memory_limit = max(_size(s, sizes) for s in sets + [output])
    counts, holders = {}, {}
    for t, s in enumerate(sets):
        for label in s:
            counts[label] = counts.get(label, 0) + 1
            holders.setdefault(label, {})[t] = None   # a dict: insertion (id) order
    everything = frozenset(counts)
    naive = _flops(everything, bool(everything - output), n, sizes)
    alive = dict(enumerate(sets))          # id -> labels; ids grow, so id order = position order
    heap, serial = [], itertools.count()   # (key, serial, x, y, keep): serial = numpy's list order
    state = {"cost": 0, "limited": True}

    def candidate(x, y):
        a, b = alive[x], alive[y]
        both = a | b
        keep = frozenset(l for l in both if l in output or
                         counts[l] - (l in a) - (l in b) > 0)
        new_size = _size(keep, sizes)
        if state["limited"] and new_size > memory_limit:
            return
        removed = _size(a, sizes) + _size(b, sizes) - new_size
        cost = _flops(both, bool(both - keep), 2, sizes)
        if state["limited"] and state["cost"] + cost > naive:
            return
        heapq.heappush(heap, ((-removed, cost), next(serial), x, y, keep))

    def overlapping(x):
        # a label held by many tensors (a hub vertex) would make the candidate pairs
        # quadratic: pair through it only with its HUB_PARTNERS newest holders
        partners = set()
        for label in alive[x]:
            held = holders[label]
            if len(held) <= HUB_PARTNERS:
                partners.update(held)
            else:
                partners.update(itertools.islice(reversed(held), HUB_PARTNERS + 1))
        partners.discard(x)
        return sorted(partners)

    for x in sorted(alive):
        for y in overlapping(x):
            if y > x:
                candidate(x, y)
    ssa = []
    next_id = n
    while len(alive) > 1:
        while heap and (heap[0][2] not in alive or heap[0][3] not in alive):
            heapq.heappop(heap)
        if not heap:
            ids = sorted(alive)
            if len(ids) <= 64:   # numpy's rescan, outer products included
                for x, y in itertools.combinations(ids, 2):
                    candidate(x, y)
            if not heap and state["limited"]:
                # NumPy would do one n-ary einsum here; go on pairwise without the limits
                state["limited"] = False
                for x in ids:
                    for y in overlapping(x):
                        if y > x:
                            candidate(x, y)
                continue
            if not heap:
                # only disjoint tensors left, many of them: outer products, smallest first
                small = sorted(ids, key=lambda t: (_size(alive[t], sizes), t))[:2]
                x, y = sorted(small)
                heapq.heappush(heap, ((0, 0), next(serial), x, y, alive[x] | alive[y]))
        key, _, x, y, keep = heapq.heappop(heap)
        _check_abort(keep, None, None, sizes, abort_size)
        a, b = alive.pop(x), alive.pop(y)
        for label in a | b:
            counts[label] -= (label in a) + (label in b)
            holders[label].pop(x, None)
            holders[label].pop(y, None)
        for label in keep:
            counts[label] += 1
            holders[label][next_id] = None
        alive[next_id] = keep
        ssa.append((x, y))
        state["cost"] += key[1]
        for z in overlapping(next_id):
            candidate(z, next_id)
        next_id += 1
    return ssa_to_path(ssa, n)


def _check_abort(labels, sets, output, sizes, abort_size):
    if abort_size is None:
        return
    if sets is not None:  # two operands: their result
        labels = frozenset(l for l in labels if l in output)
    size = _size(labels, sizes)
    if size > abort_size:
        raise PathTooLarge(f"the contraction path needs an intermediate of at least "
                           f"{_entries_text(size)} entries, above the bound of "
                           f"{_entries_text(abort_size)}", size, abort_size)


def _entries_text(n):
    return f"2^{math.log2(n):.4g}" if n > 1 else str(n)


# =========================================================================== optimal

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


# =========================================================================== elimination orders

def interaction_graph(labels):
    """The graph on labels with an edge between two labels that share an operand."""
    import networkx as nx
    g = nx.Graph()
    for ls in labels:
        ls = list(dict.fromkeys(ls))
        g.add_nodes_from(ls)
        for x in range(len(ls)):
            for y in range(x + 1, len(ls)):
                g.add_edge(ls[x], ls[y])
    return g


def elimination_order(graph, method="min_fill"):
    """An elimination order of the vertices of `graph` from a tree decomposition by
    networkx's `treewidth_min_fill_in` or `treewidth_min_degree`: root the tree,
    visit bags children first, and eliminate the vertices a bag does not share
    with its parent. Returns (order, treewidth bound)."""
    from networkx.algorithms import approximation
    if graph.number_of_nodes() == 0:
        return [], 0
    heuristic = {"min_fill": approximation.treewidth_min_fill_in,
                 "min_degree": approximation.treewidth_min_degree}.get(method)
    if heuristic is None:
        raise ValueError(f"elimination_order: unknown method {method!r}; expected 'min_fill' or "
                         f"'min_degree'")
    simple = graph
    if graph.is_multigraph() or graph.is_directed() or any(u == v for u, v in graph.edges()):
        import networkx as nx
        simple = nx.Graph()
        simple.add_nodes_from(graph)
        simple.add_edges_from((u, v) for u, v in graph.edges() if u != v)
    width, tree = heuristic(simple)
    order, done = [], set()
    for component in _components(tree):
        root = component[0]
        parent = {root: None}
        stack, visit = [root], []
        while stack:  # iterative DFS: visit lists parents before children
            bag = stack.pop()
            visit.append(bag)
            for nb in tree[bag]:
                if nb not in parent:
                    parent[nb] = bag
                    stack.append(nb)
        for bag in reversed(visit):  # children before parents
            above = parent[bag] if parent[bag] is not None else frozenset()
            for v in sorted(bag - above, key=_sort_key):
                if v not in done:
                    done.add(v)
                    order.append(v)
    order.extend(v for v in graph if v not in done)  # (none expected)
    return order, width


def _components(tree):
    """The bags of each component of the tree, in the tree's node order (deterministic)."""
    import networkx as nx
    position = {bag: k for k, bag in enumerate(tree)}
    return sorted((sorted(c, key=position.__getitem__) for c in nx.connected_components(tree)),
                  key=lambda c: position[c[0]])


def _sort_key(v):
    return (type(v).__name__, v) if isinstance(v, (int, float, str)) else (type(v).__name__, repr(v))


def path_from_elimination_order(labels, order, sizes=None, output=(), abort_size=None):
    """Bucket elimination: for each label in `order`, contract every tensor that
    carries it into one (greedily), which sums the label away; finally contract what
    is left. Returns the list of (i, j) pairs."""
    sizes = sizes or binary_sizes(labels)
    output = frozenset(output)
    alive = {t: frozenset(ls) for t, ls in enumerate(labels)}
    holders = {}
    for t, ls in alive.items():
        for l in ls:
            holders.setdefault(l, set()).add(t)
    ssa = []
    next_id = len(labels)

    def merge(bucket):
        nonlocal next_id
        bucket = sorted(bucket)
        if len(bucket) < 2:
            return
        inside = {}   # label -> how many of the bucket's tensors hold it (counts: linear)
        for t in bucket:
            for l in alive[t]:
                inside[l] = inside.get(l, 0) + 1
        needed = set(output) | {l for l, k in inside.items() if len(holders[l]) > k}
        sub = greedy_path([alive[t] for t in bucket], needed, sizes, memory_limit=1 << 62,
                          abort_size=abort_size)
        ids = list(bucket)
        for i, j in sub:
            x, y = ids[i], ids[j]
            a, b = alive.pop(x), alive.pop(y)
            # kept: needed outside the bucket, or by another of its tensors
            keep = frozenset(l for l in a | b
                             if l in needed or inside[l] > (l in a) + (l in b))
            for l in a | b:
                inside[l] -= (l in a) + (l in b)
                holders[l].discard(x)
                holders[l].discard(y)
            for l in keep:
                inside[l] += 1
                holders[l].add(next_id)
            alive[next_id] = keep
            ssa.append((x, y))
            for p in sorted((i, j), reverse=True):
                del ids[p]
            ids.append(next_id)
            next_id += 1

    for label in order:
        merge(holders.get(label, ()))
    merge(list(alive))
    return ssa_to_path(ssa, len(labels))


def binary_sizes(labels):
    return {l: 2 for ls in labels for l in ls}


# =========================================================================== dispatch

def find_path(sets, output, sizes, optimize, name="einsum"):
    """A list of steps (tuples of positions, einsum_path convention) for `optimize`:
    "greedy" (or True), "optimal", "treesa" (or a TreeSA instance), "min_fill",
    "min_degree", "auto", False (left to right), ("greedy" | "optimal", memory_limit)
    as numpy.einsum, or an explicit list of pairs."""
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
            raise ValueError(f"{name}: optimize=({optimize!r}, {memory_limit!r}): the memory "
                             "limit must be a number of elements")
    if isinstance(optimize, str) or _is_optimizer(optimize):
        if isinstance(optimize, str) and optimize not in METHODS:
            raise ValueError(f"{name}: unknown optimize={optimize!r}; expected one of "
                             f"{list(METHODS)}, False or a list of pairs")
        if n == 2:
            return [(0, 1)]
        if optimize == "optimal":  # exact, and far faster than numpy's brute force
            return optimal_path(sets, output, sizes)
        if optimize == "greedy":
            labels = set().union(*sets) | set(output)
            if len(labels) <= len(_LETTERS) and n <= 32:
                return _numpy_path(sets, output, sizes, "greedy", memory_limit)
            return greedy_path(sets, output, sizes, memory_limit)
        labels = [tuple(sorted(s, key=_sort_key)) for s in sets]
        return contraction_plan(labels, tuple(output), method=optimize, sizes=sizes).path
    steps = list(optimize)
    if steps and steps[0] == "einsum_path":
        steps = steps[1:]
    out = []
    for step in steps:
        try:
            out.append(tuple(int(i) for i in step))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: explicit path step {step!r} is not a tuple of operand "
                             "positions") from None
    return out


def _is_optimizer(x):
    return hasattr(x, "search") and callable(x.search)


# =========================================================================== path info

class PathInfo:
    """A pairwise contraction path and what it costs.

    path: (i, j) pairs, einsum_path convention; method: what chose it;
    largest_intermediate: entries of the largest tensor the contraction holds,
    operands included (count_operands=False: only the tensors the steps create, as
    numpy.einsum_path reports it; einsum's plans count so); total_cost: multiply-adds (the sum over steps of the joint
    index space of the two operands); width: log2 of largest_intermediate;
    opt_cost / naive_cost / scaling / steps: numpy.einsum_path's report (str() prints
    its table); labels, output, num_tensors; order (an elimination order, if one was
    used); order_seconds (time spent choosing the path), contraction_seconds (filled in
    by whoever runs it)."""

    def __init__(self, labels, output, sizes, path, method="explicit", text=None,
                 count_operands=True, step_labels=None):
        self.count_operands = count_operands
        self._step_labels = step_labels
        self.labels = [tuple(l) for l in labels]
        self.output = tuple(output)
        self.sizes = sizes
        self.path = [tuple(step) for step in path]
        self.method = method
        self.subscripts = text if text is not None else _network_text(self.labels, self.output)
        self.num_tensors = len(self.labels)
        self.order = None
        self.order_seconds = 0.0
        self.contraction_seconds = 0.0
        self._simulate()
        # slicing (the tropical solvers): labels fixed per slice, the sliced network's
        # PathInfo, the number of slices, multiply-adds over all of them, estimated peak
        self.sliced_labels, self.sliced_info, self.slices = [], None, 1
        self.cost_with_slices = self.total_cost
        self.peak_bytes = None

    def _simulate(self):
        sizes, labels = self.sizes, self.labels
        keep = frozenset(self.output)
        operand_sizes = [_size(ls, sizes) for ls in labels]
        largest = max(operand_sizes, default=1) if self.count_operands else 0
        cost = flops = results = pair = step = 0
        lines = []
        for a, b, result in replay_path(labels, self.path, self.output):
            joint = a | b
            joint_size = _size(joint, sizes)
            cost += joint_size
            step = max(step, joint_size)
            flops += _flops(joint, bool(joint - result), 2, sizes)
            size = _size(result, sizes)
            largest = max(largest, size)
            results += size
            pair = max(pair, _size(a, sizes) + _size(b, sizes))
            lines.append((len(joint), a, b, result))
        everything = set(sizes)
        if not self.path and not self.count_operands:
            largest = _size(self.output, sizes)
        self.largest_intermediate = largest
        self.operand_entries = sum(operand_sizes)   # entries of all operands
        self.result_entries = results               # entries of all the steps' results
        self.largest_pair = pair                    # entries of the largest step's two inputs
        self.largest_step = step                    # the largest joint index space of a step
        self.total_cost = cost
        self.width = math.log2(largest) if largest else 0.0
        self._lines = lines
        self.naive_cost = _flops(everything, bool(everything - keep), max(1, len(labels)), sizes)
        if self.path:
            self.opt_cost = flops
            self.scaling = max(line[0] for line in lines)
        else:
            self.opt_cost = _flops(everything, bool(everything - keep), 1, sizes)
            self.scaling = len(sizes)

    @property
    def steps(self):
        """(scaling, "a,b->c") per step, as numpy.einsum_path's table lists them."""
        out = []
        for k, (scaling, a, b, result) in enumerate(self._lines):
            if self._step_labels is not None:  # the labels in the order the plan keeps them
                a, b, result = self._step_labels[k]
            out.append((scaling, f"{_labels_text(a)},{_labels_text(b)}->{_labels_text(result)}"))
        return out

    @property
    def speedup(self):
        return self.naive_cost / max(self.opt_cost, 1)

    def summary(self):
        """One line: operands, method, largest intermediate, cost (and slices)."""
        if self.slices > 1:
            part = self.sliced_info
            return (f"{self.num_tensors} tensors, order {self.method}, {self.slices} slices "
                    f"({len(self.sliced_labels)} label{'s' * (len(self.sliced_labels) > 1)} fixed), largest intermediate "
                    f"{part.largest_intermediate} entries (2^{part.width:.4g}) per slice, "
                    f"{float(self.cost_with_slices):.3g} tropical multiply-adds")
        return (f"{self.num_tensors} tensors, order {self.method}, largest intermediate "
                f"{self.largest_intermediate} entries (2^{self.width:.4g}), "
                f"{float(self.total_cost):.3g} tropical multiply-adds")

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
        return (f"<contraction path of {self.num_tensors} tensors ({self.method}): largest "
                f"intermediate {self.largest_intermediate} entries, {self.total_cost:.3g} "
                f"multiply-adds>")


def _labels_text(labels):
    labels = sorted(labels, key=_sort_key) if isinstance(labels, frozenset) else labels
    if all(isinstance(x, str) for x in labels):
        return "".join(labels)
    return "[" + ",".join("..." if isinstance(x, _Ellipsis) else repr(x) for x in labels) + "]"


def _network_text(labels, output):
    return ",".join(_labels_text(l) for l in labels) + "->" + _labels_text(output)


# =========================================================================== contraction_plan

def contraction_plan(labels, output=(), method="auto", sizes=None, max_intermediate=None):
    """A PathInfo for operands with these labels (tuples of hashable labels).

    method: "greedy" (numpy's greedy), "min_fill" / "min_degree" (tree
    decomposition of the label interaction graph, then bucket elimination),
    "treesa" or a TreeSA instance (tree simulated annealing from a greedy start),
    "optimal" (few operands), "auto" (the best of min_fill and min_degree: the lower
    total cost, or the smaller largest intermediate once that exceeds 2^24 entries;
    plus up to 24 min_fill runs with shuffled tie-breaking when the largest
    intermediate reaches 2^18), or an explicit path: a list of (i, j) pairs in NumPy's
    einsum_path convention. max_intermediate (entries), if given, skips the reruns
    when even the best order is more than twice over it."""
    labels = [tuple(l) for l in labels]
    sizes = sizes or binary_sizes(labels)
    output = tuple(output)
    start = time.perf_counter()
    order = None
    sets = [frozenset(l) for l in labels]
    if _is_optimizer(method):
        path, name = method.search(sets, frozenset(output), sizes), method.name
    elif not isinstance(method, str):
        path = [tuple(step) for step in method]
        if path and path[0] == "einsum_path":
            path = path[1:]
        path = [tuple(int(k) for k in step) for step in path]
        _check_path(path, len(labels))
        name = "explicit"
    elif method == "greedy":
        path, name = greedy_path(sets, output, sizes, memory_limit=1 << 62), "greedy"
    elif method == "optimal":
        path, name = optimal_path(sets, output, sizes), "optimal"
    elif method == "treesa":
        from .treesa import TreeSA
        optimizer = TreeSA()
        path, name = optimizer.search(sets, frozenset(output), sizes), optimizer.name
    elif method in ("min_fill", "min_degree", "auto"):
        path, order, name = _elimination_path(labels, output, sizes, method, max_intermediate)
    else:
        raise ValueError(f"contraction_plan: unknown method {method!r}; expected one of "
                         f"{ORDER_METHODS} or a list of (i, j) pairs")
    info = PathInfo(labels, output, sizes, path, name)
    info.order = order
    info.order_seconds = time.perf_counter() - start
    return info


def _elimination_path(labels, output, sizes, method, max_intermediate):
    graph = interaction_graph(labels)
    graph.remove_nodes_from(list(output))
    best = None

    def candidate(g, m, name):
        order_m, _ = elimination_order(g, m)
        path_m = path_from_elimination_order(labels, order_m, sizes, output)
        largest, cost = simulate_path(labels, path_m, sizes, output)
        # cheapest wins (time goes with the cost); above 2^24 entries memory decides
        return (max(largest, 2 ** 24), cost), path_m, order_m, name, largest

    def consider(found):
        nonlocal best
        if best is None or found[0] < best[0]:  # ties keep the earlier candidate
            best = found[:4]

    if method == "auto":
        # min-degree is fast; min-fill is quadratic (minutes on 10^4 vertices): skip it
        # when min-degree's order is so far over the limit (twice its bits) that no
        # heuristic rescues the contraction, and refuse quickly
        by_degree = candidate(graph, "min_degree", "min_degree")
        if max_intermediate is None or by_degree[4] <= max_intermediate ** 2:
            consider(candidate(graph, "min_fill", "min_fill"))
        consider(by_degree)
    else:
        consider(candidate(graph, method, method))
    if method == "auto":
        # the heuristics break ties by vertex order: when the contraction will be
        # expensive, rerun min-fill on a few shuffled copies (seeded: deterministic)
        largest = simulate_path(labels, best[1], sizes, output)[0]
        hopeless = max_intermediate is not None and largest > 2 * max_intermediate
        trials = 0 if largest < 2 ** 18 or hopeless else 8 if largest < 2 ** 21 else 24
        for trial in range(trials):
            nodes = list(graph)
            random.Random(trial).shuffle(nodes)
            shuffled = graph.__class__()
            shuffled.add_nodes_from(nodes)
            shuffled.add_edges_from(graph.edges())
            consider(candidate(shuffled, "min_fill", "min_fill (shuffled)"))
    _, path, order, name = best
    return path, order, name


def slice_labels(labels, output, sizes, path, fits, max_labels=64):
    """Labels to slice (fix to one value per slice) so that the contraction of each slice
    fits: greedily, the label whose fixing shrinks the tensors the path creates the most
    (the sum of the entries of every tensor that carries it), until fits(info) is True
    for the PathInfo of the sliced network (sliced labels of size 1). Output labels are
    never sliced. Returns (labels, info); labels empty when the path fits as it is."""
    sliced = []
    sliced_sizes = dict(sizes)
    info = PathInfo(labels, output, sliced_sizes, path, "sliced")
    keep = set(output)
    while not fits(info):
        weight = {}
        tensors = [frozenset(l) for l in labels] + [
            result for _, _, result in replay_path(labels, path, output)]
        for ls in tensors:
            size = _size(ls, sliced_sizes)
            for l in ls:
                weight[l] = weight.get(l, 0) + size
        candidates = [(w, l) for l, w in weight.items() if l not in keep and sliced_sizes[l] > 1]
        if not candidates or len(sliced) >= max_labels:
            break
        label = max(candidates, key=lambda c: c[0])[1]   # ties: the first label met
        sliced.append(label)
        sliced_sizes[label] = 1
        info = PathInfo(labels, output, sliced_sizes, path, "sliced")
    return sliced, info


def _check_path(path, n):
    remaining = n
    for step in path:
        if len(step) != 2 or not all(0 <= k < remaining for k in step) or step[0] == step[1]:
            raise ValueError(f"contraction path: step {step} is not a pair of distinct positions "
                             f"among the {remaining} operands left")
        remaining -= 1
    if remaining > 1:
        raise ValueError(f"contraction path: {remaining} operands are left after the path; "
                         f"a full path has {n - 1} steps")
