"""Combinatorial optimisation by tropical tensor networks.

A graph problem becomes a tensor network: one tensor per vertex (its weight
or field), one per edge (its constraint or coupling), a tensor index per
vertex. Contracting the network in a tropical semiring ("max_plus": ⊕ = max,
⊗ = +) gives the optimum over all configurations at once; backpropagating
through the contraction routes the gradient to the winning entries only, so
the gradient with respect to the vertex tensors is the optimal configuration.

    max_independent_set(graph, weights=None) -> (value, config)
    count_max_independent_sets(graph, weights=None) -> (size, count)
    spin_glass_ground_state(graph, J=None, h=None) -> (energy, spins)
    count_spin_glass_ground_states(graph, J=None, h=None) -> (energy, count)

The solvers return a `Solution` (a 2-tuple: unpack it as above) whose `.info`
describes the contraction: the order used, the largest intermediate tensor,
the slices, the estimated peak memory, the time taken. This module holds only
the problem encodings: the contraction order, the plan and the contraction
itself come from the einsum package (opgraph.ops.einsum: path.py, treesa.py,
lower.py), shared with einsum and tropical_einsum. See docs/tropical.md.
"""
import itertools
import math
import numbers
import time
from collections.abc import Mapping

import numpy as np

from opgraph.backends.semiring import Semiring
# the one path module (einsum, tropical einsum and these solvers share it)
from opgraph.ops.einsum.path import (ORDER_METHODS, PathInfo as ContractionPlan,  # noqa: F401
                                     PathTooLarge, contraction_plan, elimination_order,
                                     greedy_path, interaction_graph, path_from_elimination_order,
                                     simulate_path, slice_labels)

__all__ = ["max_independent_set", "count_max_independent_sets", "spin_glass_ground_state",
           "count_spin_glass_ground_states", "Solution", "Count", "ContractionPlan", "ContractionTooLarge",
           "CountingTropical", "contraction_plan", "elimination_order",
           "path_from_elimination_order", "greedy_path", "simulate_path", "spin_glass_energy",
           "brute_force_spin_glass", "ORDER_METHODS"]

MAX_INTERMEDIATE = 2 ** 27   # default bound on the largest tensor, entries (1 GiB of float64)
MAX_MEMORY = 4 * 2 ** 30     # default bound on the estimated peak memory, bytes
MAX_COST = 2 ** 39           # default time bound: tropical multiply-adds (minutes)
ORDER_SECONDS = 10.0         # the most time optimize="auto" spends on the order
_RATE = 3e8                  # multiply-adds per second the estimates assume


# --------------------------------------------------------------------------- results

class Solution(tuple):
    """`(value, config)`, unpackable as a 2-tuple, plus `.info` (a ContractionPlan
    with the contraction's timings filled in)."""

    def __new__(cls, value, config, info=None):
        self = super().__new__(cls, (value, config))
        self.info = info
        return self

    @property
    def value(self):
        return self[0]

    @property
    def config(self):
        return self[1]

    # spin-glass names for the same two fields
    energy = value
    spins = config

    def __repr__(self):
        return f"Solution(value={self[0]!r}, config={self[1]!r})"


class Count(tuple):
    """`(size, count)` of the counting solvers, unpackable as a 2-tuple, plus `.info`:
    the optimum (`.size`, also `.value` / `.energy`) and the exact number of
    configurations that attain it (`.count`, a Python int). No configuration: a count
    is never mistaken for one (no `.config` / `.spins`)."""

    def __new__(cls, size, count, info=None):
        self = super().__new__(cls, (size, count))
        self.info = info
        return self

    @property
    def size(self):
        return self[0]

    @property
    def count(self):
        return self[1]

    value = energy = size

    def __repr__(self):
        return f"Count(size={self[0]!r}, count={self[1]!r})"


class ContractionTooLarge(MemoryError):
    """The contraction would need more memory or time than allowed, even sliced.

    peak_bytes: the estimated peak memory of the best plan found; largest_intermediate
    (entries); cost: tropical multiply-adds over all slices (None when not reached);
    max_memory, max_cost: the limits. The message is one line."""

    def __init__(self, message, peak_bytes=None, largest_intermediate=None, cost=None,
                 max_memory=None, max_cost=None):
        super().__init__(message)
        self.peak_bytes, self.largest_intermediate, self.cost = peak_bytes, largest_intermediate, cost
        self.max_memory, self.max_cost = max_memory, max_cost


def _pow2(n):
    """'2^k' for a (possibly astronomically large) positive int or float."""
    if not n or n <= 0:
        return "0"
    return f"2^{math.log2(n):.4g}"


def _gb(nbytes):
    """Bytes as GB text, from a count of any size (no float overflow)."""
    if nbytes < 1e15:
        return f"{nbytes / 1e9:.3g} GB"
    return f"{_pow2(nbytes)} bytes"


# --------------------------------------------------------------------------- progress

def _progress_hook(progress):
    """A callable progress(stage, done, total, note="") from None, True (a tqdm bar per
    stage on stderr) or the user's callable."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    if progress is not True:
        raise TypeError(f"progress must be None, True or a callable progress(stage, done, "
                        f"total, note), got {type(progress).__name__}")
    import sys

    from tqdm import tqdm
    bars = {}

    def show(stage, done, total, note=""):
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False,
                                     mininterval=0.2, disable=None)
        if note:
            bar.set_postfix_str(note, refresh=False)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del bars[stage]
    return show


def _notify(hook, stage, done, total, note=""):
    if hook is not None:
        hook(stage, done, total, note)


# --------------------------------------------------------------------------- counting

class CountingTropical(Semiring):
    """The counting tropical semiring: an element is (value, count), two arrays.

    ⊕ keeps the better value (max, or min for plus="min") and adds the counts of
    equal values; ⊗ adds the values and multiplies the counts. Contracting a network
    of (value, 1) entries gives the optimum and the number of configurations that
    attain it. Counts are int64, exact; a product that could pass 2^63 switches to
    Python integers on host backends (exact, slower) and is an OverflowError on a
    device backend. Built only from the public Semiring extension point: arity 2,
    zero/one, add, mul (and sum, matmul, which have generic defaults, for speed and
    the overflow check)."""

    arity = 2

    def __init__(self, plus="max", name=None):
        if plus not in ("max", "min"):
            raise ValueError(f"CountingTropical: plus must be 'max' or 'min', got {plus!r}")
        self.order = plus
        super().__init__(name or f"counting_{plus}_plus",
                         zero=(-math.inf if plus == "max" else math.inf, 0), one=(0.0, 1))

    def dtypes(self, dtype):
        return (np.dtype(dtype), np.dtype(np.int64))

    def _best(self, backend, x, y):
        return backend.binary("maximum" if self.order == "max" else "minimum", x, y)

    def add(self, backend, x, y):
        best = self._best(backend, x[0], y[0])
        cx = backend.where(backend.binary("eq", x[0], best), x[1], 0)
        cy = backend.where(backend.binary("eq", y[0], best), y[1], 0)
        return best, backend.binary("add", cx, cy)

    def mul(self, backend, x, y):
        return backend.binary("add", x[0], y[0]), backend.binary("mul", x[1], y[1])

    def sum(self, backend, x, axis):
        value, count = x
        axis = axis % len(value.shape)
        count = _widen(backend, [count], value.shape[axis])[0]
        best = backend.max(value, axis=axis) if self.order == "max" else backend.min(value, axis=axis)
        shape = tuple(1 if d == axis else n for d, n in enumerate(value.shape))
        hit = backend.binary("eq", value, backend.reshape(best, shape))
        return best, backend.sum(backend.where(hit, count, 0), (axis,))

    def matmul(self, backend, a, b):
        from opgraph.backends.semiring import generic_compound_matmul
        ca, cb = _widen(backend, [a[1], b[1]], a[0].shape[2])
        return generic_compound_matmul(backend, (a[0], ca), (b[0], cb), self)


_COUNT_LIMIT = 2 ** 63 - 1


def _widen(backend, counts, length):
    """The counts, as Python integers (object arrays) when a reduction of `length`
    products of them could pass int64; on a device backend that is an OverflowError."""
    if any(getattr(c, "dtype", None) == object for c in counts):
        return [c if c.dtype == object else c.astype(object) for c in counts]
    bound = length
    for c in counts:
        if 0 in tuple(c.shape):
            return counts
        bound *= int(backend.to_numpy(backend.max(c)))
    if bound <= _COUNT_LIMIT:
        return counts
    if not all(isinstance(c, np.ndarray) for c in counts):
        raise OverflowError(f"counting: a count could pass 2^63 (bound {_pow2(bound)}) on the "
                            f"{backend.name} backend; the numpy and numba backends switch to "
                            "exact Python integers")
    return [c.astype(object) for c in counts]


# --------------------------------------------------------------------------- the network

def _network_sizes(labels):
    return {l: 2 for ls in labels for l in ls}


def _estimated_peak(info, itemsize):
    """Bytes a contraction along `info` holds at most: every operand and every
    intermediate (kept for reading the winners back), the largest step's two inputs
    again (a backend without a fused kernel transposes them), and NumPy's product
    blocks. A bound on the real peak as measured by tracemalloc (tests check it)."""
    block = 2 * min(info.largest_step, 1 << 22)
    return (info.operand_entries + info.result_entries + info.largest_pair + block) * itemsize


def _plan(labels, optimize, itemsize, limits, problem, hook, seed=0, time_limit=ORDER_SECONDS):
    """The PathInfo of a contraction order for the network, sliced (info.sliced_labels)
    until each slice's largest tensor fits max_intermediate and its estimated peak
    memory fits max_memory; ContractionTooLarge when the sliced contraction needs more
    than max_cost multiply-adds in all."""
    max_entries, max_memory, max_cost = limits
    start = time.perf_counter()
    sizes = _network_sizes(labels)

    def fits(i):
        return ((max_entries is None or i.largest_intermediate <= max_entries)
                and (max_memory is None or _estimated_peak(i, itemsize) <= max_memory))

    lower = _treewidth_lower_bound(labels)
    if max_cost is not None and lower + 1 > math.log2(max_cost):
        # slicing cannot help: each of 2^s slices still costs 2^(treewidth - s + 1)
        raise ContractionTooLarge(
            f"{problem}: the graph's treewidth is at least {lower} (its degeneracy), so any "
            f"exact contraction needs at least 2^{lower + 1} tropical multiply-adds, beyond "
            f"max_cost={_pow2(max_cost)} (tensor networks suit sparse graphs: a dense or "
            f"complete graph of n vertices has treewidth n - 1; pass a larger max_cost to try "
            f"anyway)", None, None, 2 ** (lower + 1), max_memory, max_cost)
    if isinstance(optimize, str) and optimize == "auto":
        info = _auto_order(labels, sizes, fits, limits, itemsize, problem, hook, start, seed,
                           time_limit)
    else:
        if (isinstance(optimize, str) and optimize == "treesa") or hasattr(optimize, "search"):
            _warm_treesa(hook)
        info = contraction_plan(labels, method=optimize, max_intermediate=max_entries)
    sliced, part = [], info
    if not fits(info):
        sliced, part = slice_labels(labels, (), sizes, info.path, fits)
        if not fits(part):
            raise _too_large(problem, part, itemsize, None, limits,
                             note="no slicing of this order fits")
        info.sliced_info = part
    info.sliced_labels = sliced
    info.slices = 1 << len(sliced)
    info.cost_with_slices = part.total_cost << len(sliced)
    info.peak_bytes = _estimated_peak(part, itemsize)
    info.order_seconds = time.perf_counter() - start
    if max_cost is not None and info.cost_with_slices > max_cost:
        raise _too_large(problem, part, itemsize, info.cost_with_slices, limits)
    return info


def _treewidth_lower_bound(labels):
    """The degeneracy of the network's label graph (the largest k with a subgraph of
    minimum degree k): a lower bound on its treewidth, in O(edges)."""
    import networkx as nx
    g = nx.Graph()
    for ls in labels:
        g.add_nodes_from(ls)
        if len(ls) == 2 and ls[0] != ls[1]:
            g.add_edge(*ls)
    return max(nx.core_number(g).values(), default=0)


def _too_large(problem, info, itemsize, cost, limits, note=None, size=None):
    """ContractionTooLarge for the plan `info` (or, from an aborted search, a tensor of
    `size` entries), naming its largest tensor, estimated peak in GB and cost."""
    max_entries, max_memory, max_cost = limits
    largest = size if info is None else info.largest_intermediate
    peak = largest * itemsize if info is None else _estimated_peak(info, itemsize)
    parts = [f"an intermediate of {'at least ' if info is None else ''}{_pow2(largest)} entries",
             f"an estimated peak of {'at least ' if info is None else ''}{_gb(peak)}"]
    if cost is not None:
        hours = cost / _RATE / 3600
        parts.append(f"{_pow2(cost)} tropical multiply-adds in all (about "
                     + (f"{hours:.3g} hours" if hours < 1e300 else f"{_pow2(hours)} hours") + ")")
    bounds = []
    if max_entries is not None:
        bounds.append(f"max_intermediate={_pow2(max_entries)} entries")
    if max_memory is not None:
        bounds.append(f"max_memory={_gb(max_memory)}")
    if max_cost is not None:
        bounds.append(f"max_cost={_pow2(max_cost)}")
    message = (f"{problem}: the best contraction order found needs " + ", ".join(parts)
               + (f" ({note})" if note else "") + f", beyond {', '.join(bounds)}; the graph's "
               "treewidth is too large for an exact contraction (tensor networks suit sparse "
               "graphs: a dense or complete graph of n vertices has treewidth n - 1; pass "
               "larger limits to try anyway)")
    return ContractionTooLarge(message, peak, largest, cost, max_memory, max_cost)


def _warm_treesa(hook):
    from opgraph.ops.einsum import treesa
    if not treesa.compiled_kernels_ready():
        _notify(hook, "compile", 0, 1, "Numba loads the order search (compiles it on the first "
                                       "run, a few seconds)")
        treesa._warm_up()
        _notify(hook, "compile", 1, 1)


def _auto_order(labels, sizes, fits, limits, itemsize, problem, hook, start, seed, time_limit):
    """greedy, then tree simulated annealing in rounds of growing effort while the
    contraction the best order so far promises would take longer than the search has
    (and at most time_limit seconds): a small network gets its order in milliseconds,
    a hard one the full search."""
    from opgraph.ops.einsum.treesa import TreeSA
    max_cost = limits[2]
    sets = [frozenset(l) for l in labels]
    # hopeless beyond what slicing could pay for: stop the greedy as soon as it passes it
    abort = None if max_cost is None else max_cost << 20
    _notify(hook, "order", 0, 4, "greedy")
    try:
        path = greedy_path(sets, (), sizes, memory_limit=1 << 62, abort_size=abort)
    except PathTooLarge as e:
        raise _too_large(problem, None, itemsize, None, limits, size=e.size,
                         note="the greedy order search stopped there: no better order can "
                              "bring that within max_cost") from None
    best = ContractionPlan(labels, (), sizes, path, "greedy")
    if max_cost is not None and best.total_cost > max_cost << 16:
        # annealing gains a few powers of two on the greedy order, never sixteen
        raise _too_large(problem, best, itemsize, best.total_cost, limits,
                         note="the greedy order; no better order can bring that within max_cost")
    rounds = [dict(ntrials=2, niters=1), dict(ntrials=4, niters=5), dict(ntrials=10, niters=20)]
    annealed = time.perf_counter()
    per_sweep = None
    for k, settings in enumerate(rounds):
        searched = time.perf_counter() - annealed   # the greedy's own time does not count
        if _promised_seconds(best, labels, sizes, fits) <= max(0.01, searched) \
                or time.perf_counter() - start >= time_limit:
            break
        _warm_treesa(hook)
        _notify(hook, "order", k + 1, 4, f"largest 2^{best.width:.4g}")
        remaining = time_limit - (time.perf_counter() - start)
        if k == len(rounds) - 1 and per_sweep:
            # fit the last round's schedule into the time left (a trial cut short by the
            # clock ends hot, far from its best): fewer sweeps per temperature, all trials
            fit = int(0.8 * remaining / (settings["ntrials"] * per_sweep))
            settings = dict(settings, niters=max(2, min(settings["niters"], fit)))
        began = time.perf_counter()
        opt = TreeSA(seed=seed, time_limit=remaining, **settings)
        found = ContractionPlan(labels, (), sizes, opt.search(sets, frozenset(), sizes), "treesa")
        if opt.stats.get("finished") == settings["ntrials"]:
            # wall seconds per trial per sweep-per-temperature, threads included
            per_sweep = (time.perf_counter() - began) / (settings["ntrials"] * settings["niters"])
        # the faster contraction wins (sliced to fit, if need be): a slightly smaller
        # largest tensor is not worth many more multiply-adds here
        if (_promised_seconds(found, labels, sizes, fits)
                < _promised_seconds(best, labels, sizes, fits)):
            best = found
    _notify(hook, "order", 4, 4, f"largest 2^{best.width:.4g}")
    return best


def _promised_seconds(info, labels, sizes, fits):
    """The contraction time an order promises, sliced as it would have to be."""
    if fits(info):
        return info.total_cost / _RATE
    sliced, part = slice_labels(labels, (), sizes, info.path, fits)
    return (part.total_cost << len(sliced)) / _RATE


def _sliced_network(labels, shapes, sliced):
    """Labels and shapes of the operands with the sliced labels removed, and for each
    operand the positions of its sliced axes."""
    cut = set(sliced)
    new_labels, new_shapes, axes = [], [], []
    for ls, shape in zip(labels, shapes):
        new_labels.append(tuple(l for l in ls if l not in cut))
        new_shapes.append(tuple(n for l, n in zip(ls, shape) if l not in cut))
        axes.append([(p, l) for p, l in enumerate(ls) if l in cut])
    return new_labels, new_shapes, axes


def _slice_operand(host, axes, assignment):
    if not axes:
        return host
    key = [slice(None)] * host.ndim
    for p, l in axes:
        key[p] = assignment[l]
    return host[tuple(key)]


def _contract(host, labels, info, semiring, backend, hook):
    """Contract the network (host operand arrays, labels) to a scalar along info's
    path, slice by slice, and read the winning assignment back: (value, {label: index}).

    The assignment is what the gradient of the value with respect to the operands
    selects (argmax routing, ties to the lowest index, the first best slice): the
    tracing walks the winners TropicalEinsum's backward would, without building
    gradient arrays (ops/einsum/lower.Contraction)."""
    from opgraph.backends import get as get_backend
    from opgraph.backends.semiring import get_semiring
    from opgraph.ops.einsum.lower import Contraction
    from opgraph.ops.einsum.plan import get_plan
    from opgraph.tensor import get_default_backend
    start = time.perf_counter()
    be = get_backend(backend) if backend is not None else get_default_backend()
    sr = get_semiring(semiring)
    _note_compiling(be, host[0].dtype, hook)
    sliced = info.sliced_labels
    sub_labels, shapes, axes = _sliced_network(labels, [a.shape for a in host], sliced)
    plan = get_plan("tropical_einsum", (tuple(sub_labels), ()), shapes,
                    ["einsum_path"] + list(info.path))
    engine = Contraction(plan, sr)
    steps = len(plan.pairs)

    def run(assignment, keep, report):
        arrays = [be.asarray(np.ascontiguousarray(_slice_operand(a, ax, assignment)))
                  for a, ax in zip(host, axes)]
        on_step = (lambda k: _notify(hook, "contract", k, steps)) if report else None
        out = engine.run(be, arrays, keep=keep, on_step=on_step)
        return float(np.asarray(be.to_numpy(out)).reshape(()))

    if not sliced:
        value = run({}, True, hook is not None)
        assignment = engine.trace()
    else:
        better = (lambda x, y: x > y) if sr.plus == "max" else (lambda x, y: x < y)
        best = None
        choices = list(itertools.product(range(2), repeat=len(sliced)))
        for k, values in enumerate(choices):
            assignment = dict(zip(sliced, values))
            v = run(assignment, False, False)
            if best is None or better(v, best[0]) or (v != v and best[0] == best[0]):
                best = (v, assignment)   # strict: the first best slice wins ties
            _notify(hook, "contract", k + 1, len(choices) + 1, f"slice {k + 1}")
        value = run(best[1], True, False)
        assignment = dict(engine.trace())
        assignment.update(best[1])
        _notify(hook, "contract", len(choices) + 1, len(choices) + 1)
    info.contraction_seconds = time.perf_counter() - start
    return value, assignment


def _note_compiling(backend, dtype, hook):
    if hook is None or backend.name != "numba":
        return
    from opgraph.backends import numba_cpu
    if not numba_cpu.contract_kernels_ready(dtype):
        _notify(hook, "compile", 0, 1, "Numba loads the contraction kernels (compiles them on "
                                       "the first run)")
        _notify(hook, "compile", 1, 1)


def _integral(values):
    """True when every value is an integer and their absolute sum is below 2^24: then
    every partial sum a contraction forms is an integer float32 holds exactly."""
    total = 0.0
    for x in values:
        if x != int(x):
            return False
        total += abs(x)
    return total < 2 ** 24


def _limits(max_intermediate, max_memory, max_cost, problem):
    def check(value, name):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 1:
            raise ValueError(f"{problem}: {name} must be a number >= 1 or None, got {value!r}")
        if value != value or value == math.inf:
            return None
        return int(value)
    return (check(max_intermediate, "max_intermediate"), check(max_memory, "max_memory"),
            check(max_cost, "max_cost"))


# --------------------------------------------------------------------------- checks

def _check_graph(graph, problem):
    if not (hasattr(graph, "nodes") and hasattr(graph, "edges") and hasattr(graph, "is_directed")):
        raise TypeError(f"{problem}: expected a networkx graph, got {type(graph).__name__}")


def _real(value, what, problem):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{problem}: {what} must be a finite real number, got {value!r}")
    return float(value)


def _per_node(values, nodes, default, what, problem):
    """{node: float} from None (default), a scalar, a mapping or a sequence in node order."""
    if values is None:
        return {v: default for v in nodes}
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        return {v: _real(values, what, problem) for v in nodes}
    if isinstance(values, Mapping):
        missing = [v for v in nodes if v not in values]
        if missing:
            raise ValueError(f"{problem}: {what} has no entry for vertex {missing[0]!r} "
                             f"({len(missing)} vertices missing)")
        node_set = set(nodes)
        extra = [k for k in values if k not in node_set]
        if extra:
            raise ValueError(f"{problem}: {what} has an entry for {extra[0]!r}, which is not a "
                             f"vertex of the graph")
        return {v: _real(values[v], f"{what}[{v!r}]", problem) for v in nodes}
    seq = list(np.asarray(values, dtype=object).reshape(-1)) if not isinstance(values, (list, tuple)) \
        else list(values)
    if len(seq) != len(nodes):
        raise ValueError(f"{problem}: {what} has {len(seq)} entries for {len(nodes)} vertices "
                         f"(a sequence is taken in graph.nodes order)")
    return {v: _real(float(x) if isinstance(x, np.generic) else x, f"{what}[{k}]", problem)
            for k, (v, x) in enumerate(zip(nodes, seq))}


def _per_edge(values, edges, default, what, problem):
    """[float per edge] from None, a scalar, a mapping keyed by edge tuples
    (either orientation) or a sequence in graph.edges order."""
    if values is None:
        return [default] * len(edges)
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        return [_real(values, what, problem)] * len(edges)
    if isinstance(values, Mapping):
        out = []
        used = set()
        edge_set = set(edges)
        for u, v in edges:
            # (v, u) names this edge too, unless it is an edge of its own (a directed graph)
            keys = [k for k in ((u, v), (v, u)) if k in values and (k == (u, v) or k not in edge_set)]
            if not keys:
                raise ValueError(f"{problem}: {what} has no entry for edge {(u, v)!r}")
            found = [_real(values[k], f"{what}[{k!r}]", problem) for k in keys]
            if len(set(found)) > 1:
                raise ValueError(f"{problem}: {what} gives edge {(u, v)!r} in both orientations "
                                 f"with different values ({found[0]!r} and {found[1]!r})")
            used.update(keys)
            out.append(found[0])
        extra = [k for k in values if k not in used]
        if extra:
            raise ValueError(f"{problem}: {what} has an entry for {extra[0]!r}, which is not an "
                             f"edge of the graph")
        return out
    seq = list(values)
    if len(seq) != len(edges):
        raise ValueError(f"{problem}: {what} has {len(seq)} entries for {len(edges)} edges "
                         f"(a sequence is taken in graph.edges order)")
    return [_real(float(x) if isinstance(x, np.generic) else x, f"{what}[{k}]", problem)
            for k, x in enumerate(seq)]


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _count(host, labels, info, semiring, backend, hook):
    """(best value, its count) of the compound contraction along info's path, slice by
    slice (⊕ of the slices' results: the better value, counts of equal values added)."""
    from opgraph.backends import get as get_backend
    from opgraph.ops.einsum import lower
    from opgraph.ops.einsum.plan import get_plan
    from opgraph.tensor import get_default_backend
    start = time.perf_counter()
    be = get_backend(backend) if backend is not None else get_default_backend()
    sliced = info.sliced_labels
    sub_labels, shapes, axes = _sliced_network(labels, [v.shape for v, _ in host], sliced)
    plan = get_plan("tropical_einsum", (tuple(sub_labels), ()), shapes,
                    ["einsum_path"] + list(info.path))
    better = (lambda x, y: x > y) if semiring.order == "max" else (lambda x, y: x < y)
    best_value, best_count = None, 0
    choices = list(itertools.product(range(2), repeat=len(sliced)))
    for k, values in enumerate(choices):
        assignment = dict(zip(sliced, values))
        nodes = []
        for step, (v, c), ax in zip(plan.preps, host, axes):
            x = (be.asarray(np.ascontiguousarray(_slice_operand(v, ax, assignment))),
                 be.asarray(np.ascontiguousarray(_slice_operand(c, ax, assignment))))
            nodes.append(lower.compound_unary(be, step, x, semiring))
        for i, j, step, _ in plan.pairs:
            nodes.append(lower.compound_pair(be, step, nodes[i], nodes[j], semiring))
            nodes[i] = nodes[j] = None
        out = nodes[-1]
        if plan.final is not None:
            out = tuple(be.transpose(c, plan.final.perm) for c in out)
        value = float(np.asarray(be.to_numpy(out[0])).reshape(()))
        count = int(np.asarray(be.to_numpy(out[1])).reshape(()).item())
        if best_value is None or better(value, best_value):
            best_value, best_count = value, count
        elif value == best_value:
            best_count += count
        _notify(hook, "contract", k + 1, len(choices))
    info.contraction_seconds = time.perf_counter() - start
    return best_value, best_count


# --------------------------------------------------------------------------- encodings

def _node_values(values, graph, nodes, default, what, problem):
    """{node: float} from None, a number, a mapping, a sequence in graph.nodes order,
    or the name of a node attribute (as networkx algorithms take weight=: vertices
    without it get the default)."""
    if isinstance(values, str):
        return {v: _real(graph.nodes[v].get(values, default),
                         f"{what} attribute {values!r} of vertex {v!r}", problem) for v in nodes}
    return _per_node(values, nodes, default, what, problem)


def _edge_values(values, graph, edges, default, what, problem):
    """[float per edge of graph.edges] from None, a number, a mapping keyed by edge
    tuples, a sequence, or the name of an edge attribute (default where missing)."""
    if isinstance(values, str):
        return [_real(d.get(values, default), f"{what} attribute {values!r} of edge {(u, v)!r}",
                      problem) for (u, v), d in zip(edges, (graph.edges[e] for e in edges))]
    return _per_edge(values, edges, default, what, problem)


def _mis_network(graph, nodes):
    """labels (vertex tensors first, then one per distinct edge or self-loop) and the
    edge tensors as (values, counts)."""
    index = {v: k for k, v in enumerate(nodes)}
    labels = [(index[v],) for v in nodes]
    edges, seen = [], set()
    for u, v in graph.edges():
        pair = (index[u], index[v]) if index[u] <= index[v] else (index[v], index[u])
        if pair in seen:
            continue
        seen.add(pair)
        if u == v:   # a self-loop forbids its vertex
            edges.append((np.array([0.0, -np.inf]), np.array([1, 0])))
            labels.append((pair[0],))
        else:
            edges.append((np.array([[0.0, 0.0], [0.0, -np.inf]]), np.array([[1, 1], [1, 0]])))
            labels.append(pair)
    return index, labels, edges


def _common(problem, max_intermediate, max_memory, max_cost, progress):
    return _limits(max_intermediate, max_memory, max_cost, problem), _progress_hook(progress)


def max_independent_set(graph, weights=None, *, optimize="auto", backend=None,
                        max_intermediate=MAX_INTERMEDIATE, max_memory=MAX_MEMORY,
                        max_cost=MAX_COST, progress=None, seed=0):
    """Maximum (weighted) independent set by a max_plus tensor network.

    graph: a networkx graph (direction ignored; a self-loop forbids its vertex).
    weights: None (every weight 1), {node: w}, a sequence in graph.nodes order, or
    the name of a node attribute (weights="weight"; vertices without it weigh 1).
    optimize: the contraction order: "auto" (greedy, then tree simulated annealing
    while the contraction it promises takes longer than the search so far, at most
    10 s), "treesa" or a TreeSA(...), "greedy", "min_fill", "min_degree", or an
    explicit path (NumPy's einsum_path convention).
    max_intermediate: the largest tensor, in entries (default 2^27); max_memory: the
    estimated real peak of the contraction in bytes (every tensor it keeps, see
    docs/tropical.md; default 4 GiB). A contraction over either is sliced (a few
    vertices fixed per slice, the slices combined by max) until each slice fits.
    max_cost: the time bound in tropical multiply-adds over all slices (default
    2^39). None: no bound. Beyond them: ContractionTooLarge (a MemoryError) naming
    the estimated peak in GB.
    progress: None, True (tqdm bars on stderr) or progress(stage, done, total, note)
    with stage "compile" (Numba), "order" or "contract". seed: of the order search.
    Returns Solution(value, config): value an int for an unweighted graph (the MIS
    size), else a float; config {node: 0 or 1} for every node; `.info` is the
    ContractionPlan (order, largest intermediate, slices, peak_bytes, timings).

    Network: vertex v has index x_v in {0, 1} and tensor [0, w_v]; edge (u, v)
    has [[0, 0], [0, -inf]]. The max_plus contraction is max over x of
    Σ w_v x_v subject to independence. Backpropagation routes the gradient to the
    winning entries only, so d value / d w_v = x_v: the gradient with respect to
    the weights is the configuration (read back from the kept intermediates by the
    same argmax routing). The result is checked (independent, weight equal to the
    value); a failed check raises RuntimeError."""
    problem = "max_independent_set"
    _check_graph(graph, problem)
    limits, hook = _common(problem, max_intermediate, max_memory, max_cost, progress)
    nodes = list(graph.nodes)
    w = _node_values(weights, graph, nodes, 1.0, "weights", problem)
    if not nodes:
        return Solution(0 if weights is None else 0.0, {}, contraction_plan([], method="greedy"))
    index, labels, edges = _mis_network(graph, nodes)
    dtype = np.float32 if _integral([w[v] for v in nodes]) else np.float64
    info = _plan(labels, optimize, np.dtype(dtype).itemsize, limits, problem, hook, seed)
    host = [np.array([0.0, w[v]], dtype) for v in nodes] + [e.astype(dtype) for e, _ in edges]
    value, assignment = _contract(host, labels, info, "max_plus", backend, hook)
    config = {v: assignment[index[v]] for v in nodes}
    # the answer must be feasible and attain the value: anything else is a bug
    for u, v in graph.edges():
        if config[u] and config[v]:
            raise RuntimeError(f"{problem}: the configuration picks both ends of edge {(u, v)!r} "
                               f"(a bug in the tropical contraction)")
    total = sum(w[v] for v in nodes if config[v])
    if not _close(total, value):
        raise RuntimeError(f"{problem}: the configuration weighs {total}, the contraction gave "
                           f"{value} (a bug in the tropical contraction)")
    return Solution(int(round(value)) if weights is None else value, config, info)


def count_max_independent_sets(graph, weights=None, *, optimize="auto", backend=None,
                               max_intermediate=MAX_INTERMEDIATE, max_memory=MAX_MEMORY,
                               max_cost=MAX_COST, progress=None, seed=0):
    """(size, count): the maximum (weighted) independent set size and the exact number
    of independent sets that attain it, by the counting tropical semiring
    (CountingTropical: (value, count) elements, ⊕ = better value with counts of
    equals added, ⊗ = values added, counts multiplied).

    Arguments as for max_independent_set. size is an int for an unweighted graph,
    else a float; count is a Python int, exact: int64 arithmetic while no count can
    pass 2^63, Python integers beyond (numpy and numba backends; an OverflowError on
    a device backend). Returns a Count (size, count) with `.info`."""
    problem = "count_max_independent_sets"
    _check_graph(graph, problem)
    limits, hook = _common(problem, max_intermediate, max_memory, max_cost, progress)
    nodes = list(graph.nodes)
    w = _node_values(weights, graph, nodes, 1.0, "weights", problem)
    if not nodes:
        return Count(0 if weights is None else 0.0, 1, contraction_plan([], method="greedy"))
    index, labels, edges = _mis_network(graph, nodes)
    dtype = np.float32 if _integral([w[v] for v in nodes]) else np.float64
    info = _plan(labels, optimize, np.dtype(dtype).itemsize + 8, limits, problem, hook, seed)
    host = [(np.array([0.0, w[v]], dtype), np.array([1, 1], np.int64)) for v in nodes]
    host += [(e.astype(dtype), c.astype(np.int64)) for e, c in edges]
    size, count = _count(host, labels, info, CountingTropical("max"), backend, hook)
    return Count(int(round(size)) if weights is None else size, count, info)


def spin_glass_energy(graph, spins, J=None, h=None):
    """E(s) = Σ_(u,v) J_uv s_u s_v + Σ_v h_v s_v for spins {node: ±1}."""
    problem = "spin_glass_energy"
    nodes, edges = list(graph.nodes), list(graph.edges())
    couplings = _edge_values(J, graph, edges, 1.0, "J", problem)
    fields = _node_values(h, graph, nodes, 0.0, "h", problem)
    return (sum(c * spins[u] * spins[v] for c, (u, v) in zip(couplings, edges))
            + sum(fields[v] * spins[v] for v in nodes))


def _spin_network(graph, J, h, problem):
    _check_graph(graph, problem)
    if graph.is_multigraph():
        raise ValueError(f"{problem}: multigraphs are not supported (J is keyed by edge "
                         f"tuples): merge parallel couplings into one edge")
    nodes, edges = list(graph.nodes), list(graph.edges())
    couplings = _edge_values(J, graph, edges, 1.0, "J", problem)
    fields = _node_values(h, graph, nodes, 0.0, "h", problem)
    index = {v: k for k, v in enumerate(nodes)}
    labels = [(index[v],) for v in nodes]
    constants = []
    for c, (u, v) in zip(couplings, edges):
        if u == v:  # s_v s_v = 1: a constant, kept as a uniform vertex factor
            constants.append(np.array([c, c]))
            labels.append((index[u],))
        else:
            constants.append(c * np.array([[1.0, -1.0], [-1.0, 1.0]]))
            labels.append((index[u], index[v]))
    exact = _integral([fields[v] for v in nodes] + couplings)
    return nodes, edges, couplings, fields, index, labels, constants, exact


def spin_glass_ground_state(graph, J=None, h=None, *, optimize="auto", backend=None,
                            max_intermediate=MAX_INTERMEDIATE, max_memory=MAX_MEMORY,
                            max_cost=MAX_COST, progress=None, seed=0):
    """Ground state of the Ising spin glass E(s) = Σ_(u,v) J_uv s_u s_v + Σ_v h_v s_v
    over s in {-1, +1}^n, by a min_plus tensor network.

    J: {(u, v): J_uv} keyed by the tuples of graph.edges (either orientation
    accepted), a number, a sequence in graph.edges order, or the name of an edge
    attribute (J="J"; edges without it get 1); default 1.
    h: {node: h_v}, a number, a sequence in graph.nodes order, or the name of a node
    attribute (missing: 0); default 0.
    optimize, backend, max_intermediate, max_cost, progress, seed: as for
    max_independent_set.
    Returns Solution(energy, spins): spins {node: -1 or +1} for every node.

    Network: vertex v has index x_v (x = 0 is s = -1, x = 1 is s = +1) and
    tensor h_v·[-1, +1]; edge (u, v) has J_uv·[[1, -1], [-1, 1]]. The gradient
    reaches only the winning entry of each vertex tensor, so dE/dh_v = s_v: the
    spins are the gradient of the ground-state energy with respect to h (also
    when h = 0). The spins are checked to attain the energy."""
    problem = "spin_glass_ground_state"
    limits, hook = _common(problem, max_intermediate, max_memory, max_cost, progress)
    nodes, edges, couplings, fields, index, labels, constants, exact = _spin_network(
        graph, J, h, problem)
    if not nodes:
        return Solution(0.0, {}, contraction_plan([], method="greedy"))
    dtype = np.float32 if exact else np.float64
    info = _plan(labels, optimize, np.dtype(dtype).itemsize, limits, problem, hook, seed)
    host = [np.array([-fields[v], fields[v]], dtype) for v in nodes]
    host += [c.astype(dtype) for c in constants]
    energy, assignment = _contract(host, labels, info, "min_plus", backend, hook)
    spins = {v: 2 * assignment[index[v]] - 1 for v in nodes}
    attained = (sum(c * spins[u] * spins[v] for c, (u, v) in zip(couplings, edges))
                + sum(fields[v] * spins[v] for v in nodes))
    if not _close(attained, energy):
        raise RuntimeError(f"{problem}: the spins have energy {attained}, the contraction gave "
                           f"{energy} (a bug in the tropical contraction)")
    return Solution(energy, spins, info)


def count_spin_glass_ground_states(graph, J=None, h=None, *, optimize="auto", backend=None,
                                   max_intermediate=MAX_INTERMEDIATE,
                                   max_memory=MAX_MEMORY, max_cost=MAX_COST, progress=None,
                                   seed=0):
    """(energy, count): the ground-state energy and its degeneracy, the exact number of
    spin configurations that attain it (CountingTropical with min). Arguments as for
    spin_glass_ground_state; count is a Python int (see count_max_independent_sets).
    Returns a Count."""
    problem = "count_spin_glass_ground_states"
    limits, hook = _common(problem, max_intermediate, max_memory, max_cost, progress)
    nodes, edges, couplings, fields, index, labels, constants, exact = _spin_network(
        graph, J, h, problem)
    if not nodes:
        return Count(0.0, 1, contraction_plan([], method="greedy"))
    dtype = np.float32 if exact else np.float64
    info = _plan(labels, optimize, np.dtype(dtype).itemsize + 8, limits, problem, hook, seed)
    host = [(np.array([-fields[v], fields[v]], dtype), np.ones(2, np.int64)) for v in nodes]
    host += [(c.astype(dtype), np.ones(c.shape, np.int64)) for c in constants]
    energy, count = _count(host, labels, info, CountingTropical("min"), backend, hook)
    return Count(energy, count, info)


# --------------------------------------------------------------------------- references

def brute_force_spin_glass(graph, J=None, h=None):
    """(energy, spins) by enumerating all 2^n states (n <= 24); a reference for tests."""
    nodes, edges = list(graph.nodes), list(graph.edges())
    n = len(nodes)
    if n > 24:
        raise ValueError(f"brute_force_spin_glass: {n} spins is too many to enumerate (max 24)")
    couplings = _edge_values(J, graph, edges, 1.0, "J", "brute_force_spin_glass")
    fields = _node_values(h, graph, nodes, 0.0, "h", "brute_force_spin_glass")
    index = {v: k for k, v in enumerate(nodes)}
    states = ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
    energy = states @ np.array([fields[v] for v in nodes], dtype=np.float64)
    for c, (u, v) in zip(couplings, edges):
        energy = energy + c * states[:, index[u]] * states[:, index[v]]
    best = int(np.argmin(energy))
    return float(energy[best]), {v: int(states[best, index[v]]) for v in nodes}
