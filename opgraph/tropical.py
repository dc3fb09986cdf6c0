"""Combinatorial optimisation by tropical tensor networks.

A graph problem becomes a tensor network: one tensor per vertex (its weight
or field), one per edge (its constraint or coupling), a tensor index per
vertex. Contracting the network in a tropical semiring ("max_plus": ⊕ = max,
⊗ = +) gives the optimum over all configurations at once; backpropagating
through the contraction routes the gradient to the winning entries only, so
the gradient with respect to the vertex tensors is the optimal configuration.

    max_independent_set(graph, weights=None) -> (value, config)
    spin_glass_ground_state(graph, J=None, h=None) -> (energy, spins)

Both return a `Solution` (a 2-tuple: unpack it as above) whose `.info`
describes the contraction: the order used, the largest intermediate tensor,
the time taken. The contraction order for a graph comes from a tree
decomposition (networkx's min-fill-in / min-degree heuristics) turned into a
pairwise path by bucket elimination, so the largest intermediate has about
2^(treewidth + 1) entries instead of 2^n; `contraction_plan` exposes it.
See docs/tropical.md.
"""
import math
import numbers
import time
from collections.abc import Mapping

import numpy as np

# the one path module (einsum, tropical einsum and these solvers share it)
from opgraph.ops.einsum.path import (ORDER_METHODS, PathInfo as ContractionPlan,  # noqa: F401
                                     contraction_plan, elimination_order, greedy_path,
                                     interaction_graph, path_from_elimination_order,
                                     simulate_path)

__all__ = ["max_independent_set", "spin_glass_ground_state", "Solution", "ContractionPlan",
           "contraction_plan", "elimination_order", "path_from_elimination_order",
           "greedy_path", "simulate_path", "spin_glass_energy", "brute_force_spin_glass",
           "ORDER_METHODS"]


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


# --------------------------------------------------------------------------- running the network

MAX_INTERMEDIATE = 2 ** 27   # entries (1 GiB of float64): refuse larger contractions by default


def _check_size(plan, limit, problem):
    if limit is not None and plan.largest_intermediate > limit:
        gib = plan.largest_intermediate * 8 / 2 ** 30
        gib = f"{gib:.1f} GiB" if gib < 1e6 else f"2^{math.log2(gib):.0f} GiB"
        raise MemoryError(f"{problem}: the best contraction order found ({plan.method}) needs an "
                          f"intermediate of 2^{plan.width:g} entries ({gib} of float64), "
                          f"above max_intermediate=2^{math.log2(limit):g}; the graph's treewidth "
                          f"is too large (tensor networks suit sparse graphs: a dense or complete "
                          f"graph of n vertices has treewidth n - 1; pass a larger "
                          f"max_intermediate to try anyway)")


def _contract(params, pattern, constants, labels, plan, semiring, backend, exact_float32=False):
    """Contract the network to a scalar along the plan's path and read the winning
    configuration back (ops/einsum/lower.Contraction).

    params: one float per vertex (weights or fields); vertex k's tensor is
    params[k] * pattern (labels[k] = (k,)); constants are the remaining operands
    (edge tensors). Returns (value, state of every vertex (0 or 1)).

    The state is what the gradient of the value with respect to the vertex tensors
    selects (argmax routing, ties to the lowest index): the tracing walks the
    same winners as TropicalEinsum's backward, without building gradient arrays.
    exact_float32: every sum the contraction can form is an integer below 2^24, so
    float32 is exact (half the memory and traffic of float64)."""
    from opgraph.backends import get as get_backend
    from opgraph.backends.semiring import get_semiring
    from opgraph.ops.einsum.lower import Contraction
    from opgraph.ops.einsum.plan import get_plan
    from opgraph.tensor import get_default_backend
    start = time.perf_counter()
    be = get_backend(backend) if backend is not None else get_default_backend()
    dtype = np.float32 if exact_float32 else np.float64
    n = len(params)
    pattern = np.asarray(pattern, dtype=np.float64)
    host = [np.asarray(params[k] * pattern, dtype=dtype) for k in range(n)]
    host += [np.asarray(c, dtype=dtype) for c in constants]
    shapes = [a.shape for a in host]
    subscripts = (tuple(tuple(ls) for ls in labels), ())
    network = get_plan("tropical_einsum", subscripts, shapes, _optimize_arg(plan.path))
    engine = Contraction(network, get_semiring(semiring))
    out = engine.run(be, [be.asarray(a) for a in host])
    value = float(np.asarray(be.to_numpy(out)).reshape(()))
    assignment = engine.trace()
    plan.contraction_seconds = time.perf_counter() - start
    return value, [assignment[k] for k in range(n)]


def _optimize_arg(path):
    return ["einsum_path"] + [tuple(step) for step in path]


def _integral(values):
    """True when every value is an integer and their absolute sum is below 2^24: then
    every partial sum a contraction forms is an integer float32 holds exactly."""
    total = 0.0
    for x in values:
        if x != int(x):
            return False
        total += abs(x)
    return total < 2 ** 24


def _state(grad, allowed, node, problem):
    """The state a vertex's gradient selects: it must be one of `allowed` exactly."""
    g = float(grad)
    if g in allowed:
        return int(g)
    raise RuntimeError(f"{problem}: the gradient for vertex {node!r} is {g}, not one of "
                       f"{sorted(allowed)} (a bug in the tropical einsum backward)")


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


# --------------------------------------------------------------------------- the solvers

def max_independent_set(graph, weights=None, *, optimize="auto", backend=None,
                        max_intermediate=MAX_INTERMEDIATE):
    """Maximum (weighted) independent set by a max_plus tensor network.

    graph: a networkx graph (direction ignored; a self-loop forbids its vertex).
    weights: {node: w} (default 1 each), or a sequence in graph.nodes order.
    optimize: contraction order, see `contraction_plan`.
    max_intermediate: refuse (MemoryError) a contraction whose largest
    intermediate would exceed this many entries (default 2^27); None: no limit.
    Returns Solution(value, config): value a float, config {node: 0 or 1} for
    every node; `.info` is the ContractionPlan with its timings.

    Network: vertex v has index x_v in {0, 1} and tensor [0, w_v]; edge (u, v)
    has [[0, 0], [0, -inf]]. The max_plus contraction is max over x of
    Σ w_v x_v subject to independence. Backpropagation routes the gradient to the
    winning entries only, so d value / d w_v = x_v: the gradient with respect to
    the weights is the configuration. The result is checked (independent,
    weight equal to the value); a failed check raises RuntimeError."""
    problem = "max_independent_set"
    _check_graph(graph, problem)
    nodes = list(graph.nodes)
    w = _per_node(weights, nodes, 1.0, "weights", problem)
    index = {v: k for k, v in enumerate(nodes)}
    labels = [(index[v],) for v in nodes]
    constants, seen = [], set()
    for u, v in graph.edges():
        pair = (index[u], index[v]) if index[u] <= index[v] else (index[v], index[u])
        if pair in seen:
            continue
        seen.add(pair)
        if u == v:
            constants.append(np.array([0.0, -np.inf]))
            labels.append((pair[0],))
        else:
            constants.append(np.array([[0.0, 0.0], [0.0, -np.inf]]))
            labels.append(pair)
    if not nodes:
        return Solution(0.0, {}, contraction_plan([], method="greedy"))
    plan = contraction_plan(labels, method=optimize, max_intermediate=max_intermediate)
    _check_size(plan, max_intermediate, problem)
    exact = _integral([w[v] for v in nodes])
    value, states = _contract([w[v] for v in nodes], [0.0, 1.0], constants, labels, plan,
                              "max_plus", backend, exact)
    config = {v: states[index[v]] for v in nodes}
    # the answer must be feasible and attain the value: anything else is a bug
    for u, v in graph.edges():
        if config[u] and config[v]:
            raise RuntimeError(f"{problem}: the configuration picks both ends of edge {(u, v)!r} "
                               f"(a bug in the tropical contraction)")
    total = sum(w[v] for v in nodes if config[v])
    if not _close(total, value):
        raise RuntimeError(f"{problem}: the configuration weighs {total}, the contraction gave "
                           f"{value} (a bug in the tropical contraction)")
    return Solution(value, config, plan)


def spin_glass_energy(graph, spins, J=None, h=None):
    """E(s) = Σ_(u,v) J_uv s_u s_v + Σ_v h_v s_v for spins {node: ±1}."""
    problem = "spin_glass_energy"
    nodes, edges = list(graph.nodes), list(graph.edges())
    couplings = _per_edge(J, edges, 1.0, "J", problem)
    fields = _per_node(h, nodes, 0.0, "h", problem)
    return (sum(c * spins[u] * spins[v] for c, (u, v) in zip(couplings, edges))
            + sum(fields[v] * spins[v] for v in nodes))


def spin_glass_ground_state(graph, J=None, h=None, *, optimize="auto", backend=None,
                            max_intermediate=MAX_INTERMEDIATE):
    """Ground state of the Ising spin glass E(s) = Σ_(u,v) J_uv s_u s_v + Σ_v h_v s_v
    over s in {-1, +1}^n, by a min_plus tensor network.

    J: {(u, v): J_uv} keyed by the tuples of graph.edges (either orientation
    accepted), a number, or a sequence in graph.edges order; default 1.
    h: {node: h_v}, a number, or a sequence in graph.nodes order; default 0.
    optimize, max_intermediate, backend: as for max_independent_set.
    Returns Solution(energy, spins): spins {node: -1 or +1} for every node.

    Network: vertex v has index x_v (x = 0 is s = -1, x = 1 is s = +1) and
    tensor h_v·[-1, +1]; edge (u, v) has J_uv·[[1, -1], [-1, 1]]. The gradient
    reaches only the winning entry of each vertex tensor, so dE/dh_v = s_v: the
    spins are the gradient of the ground-state energy with respect to h (also
    when h = 0). The spins are checked to attain the energy."""
    problem = "spin_glass_ground_state"
    _check_graph(graph, problem)
    if graph.is_multigraph():
        raise ValueError(f"{problem}: multigraphs are not supported (J is keyed by edge "
                         f"tuples): merge parallel couplings into one edge")
    nodes, edges = list(graph.nodes), list(graph.edges())
    couplings = _per_edge(J, edges, 1.0, "J", problem)
    fields = _per_node(h, nodes, 0.0, "h", problem)
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
    if not nodes:
        return Solution(0.0, {}, contraction_plan([], method="greedy"))
    plan = contraction_plan(labels, method=optimize, max_intermediate=max_intermediate)
    _check_size(plan, max_intermediate, problem)
    exact = _integral([fields[v] for v in nodes] + couplings)
    energy, states = _contract([fields[v] for v in nodes], [-1.0, 1.0], constants, labels, plan,
                               "min_plus", backend, exact)
    spins = {v: 2 * states[index[v]] - 1 for v in nodes}
    attained = (sum(c * spins[u] * spins[v] for c, (u, v) in zip(couplings, edges))
                + sum(fields[v] * spins[v] for v in nodes))
    if not _close(attained, energy):
        raise RuntimeError(f"{problem}: the spins have energy {attained}, the contraction gave "
                           f"{energy} (a bug in the tropical contraction)")
    return Solution(energy, spins, plan)


# --------------------------------------------------------------------------- references

def brute_force_spin_glass(graph, J=None, h=None):
    """(energy, spins) by enumerating all 2^n states (n <= 24); a reference for tests."""
    nodes, edges = list(graph.nodes), list(graph.edges())
    n = len(nodes)
    if n > 24:
        raise ValueError(f"brute_force_spin_glass: {n} spins is too many to enumerate (max 24)")
    couplings = _per_edge(J, edges, 1.0, "J", "brute_force_spin_glass")
    fields = _per_node(h, nodes, 0.0, "h", "brute_force_spin_glass")
    index = {v: k for k, v in enumerate(nodes)}
    states = ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
    energy = states @ np.array([fields[v] for v in nodes], dtype=np.float64)
    for c, (u, v) in zip(couplings, edges):
        energy = energy + c * states[:, index[u]] * states[:, index[v]]
    best = int(np.argmin(energy))
    return float(energy[best]), {v: int(states[best, index[v]]) for v in nodes}
