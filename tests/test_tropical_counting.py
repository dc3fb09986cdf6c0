"""The tropical solvers beyond one configuration: slicing (exact, configurations still
recovered), counting (CountingTropical: exact integer counts, big integers), the
memory estimate against the measured peak, the tie rule of the traced winners (equal
to TropicalEinsum's gradient, equal on every backend), networkx attribute names,
progress hooks; checked against brute-force enumeration, networkx and scipy's MILP."""
import itertools
import math
import tracemalloc

import networkx as nx
import numpy as np
import pytest

import opgraph as og
from opgraph import tropical
from opgraph.ops.tropical import Semiring


def brute_mis(graph, weights=None):
    """(best weight, number of independent sets attaining it) by enumeration."""
    nodes = list(graph.nodes)
    w = weights or {v: 1.0 for v in nodes}
    best, count = -math.inf, 0
    for bits in itertools.product((0, 1), repeat=len(nodes)):
        chosen = {v for v, b in zip(nodes, bits) if b}
        if any(u in chosen and v in chosen for u, v in graph.edges()):
            continue
        total = sum(w[v] for v in chosen)
        if total > best + 1e-9:
            best, count = total, 1
        elif abs(total - best) <= 1e-9:
            count += 1
    return best, count


def brute_spin_glass(graph, J, h):
    nodes = list(graph.nodes)
    best, count = math.inf, 0
    for bits in itertools.product((-1, 1), repeat=len(nodes)):
        s = dict(zip(nodes, bits))
        e = sum(J[(u, v)] * s[u] * s[v] for u, v in graph.edges()) + sum(h[v] * s[v] for v in nodes)
        if e < best - 1e-9:
            best, count = e, 1
        elif abs(e - best) <= 1e-9:
            count += 1
    return best, count


def check_mis(graph, solution, weights=None):
    value, config = solution
    assert not any(config[u] and config[v] for u, v in graph.edges())
    w = weights or {v: 1 for v in graph}
    assert math.isclose(sum(w[v] for v in graph if config[v]), value, abs_tol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_sliced_contraction_is_exact_and_recovers_a_configuration(seed):
    g = nx.gnp_random_graph(14, 0.3, seed=seed)
    rng = np.random.default_rng(seed)
    weights = {v: float(rng.integers(1, 6)) for v in g}
    want, want_count = brute_mis(g, weights)
    sliced = tropical.max_independent_set(g, weights, max_intermediate=2 ** 2)
    assert sliced.info.slices > 1 and sliced.info.sliced_info.largest_intermediate <= 2 ** 2
    assert math.isclose(sliced.value, want)
    check_mis(g, sliced, weights)
    size, count = tropical.count_max_independent_sets(g, weights, max_intermediate=2 ** 2)
    assert math.isclose(size, want) and count == want_count
    J = {e: float(rng.choice([-1.0, 1.0])) for e in g.edges()}
    h = {v: float(rng.choice([-0.5, 0.0, 0.5])) for v in g}
    energy, degeneracy = brute_spin_glass(g, J, h)
    solution = tropical.spin_glass_ground_state(g, J, h, max_intermediate=2 ** 2)
    assert solution.info.slices > 1 and math.isclose(solution.energy, energy)
    assert math.isclose(tropical.spin_glass_energy(g, solution.spins, J, h), energy)
    e2, n2 = tropical.count_spin_glass_ground_states(g, J, h, max_intermediate=2 ** 2)
    assert math.isclose(e2, energy) and n2 == degeneracy


@pytest.mark.parametrize("seed", range(6))
def test_counts_match_enumeration(seed):
    g = nx.gnp_random_graph(12 + seed % 3, 0.25, seed=10 + seed)
    size, count = tropical.count_max_independent_sets(g)
    want, want_count = brute_mis(g)
    assert size == want and count == want_count
    assert isinstance(size, int) and isinstance(count, int)
    J = {e: float((-1) ** k) for k, e in enumerate(g.edges())}
    h = {v: 0.0 for v in g}
    energy, degeneracy = tropical.count_spin_glass_ground_states(g, J)
    assert (energy, degeneracy) == brute_spin_glass(g, J, h)


def test_counts_are_not_configurations_and_configurations_are_0_1_ints():
    g = nx.gnp_random_graph(13, 0.3, seed=3)
    rng = np.random.default_rng(3)
    weights = {v: float(rng.integers(-2, 6)) for v in g}
    want = {None: brute_mis(g), "w": brute_mis(g, weights)}
    counted = tropical.count_max_independent_sets(g, weights, max_intermediate=2 ** 3)
    assert isinstance(counted, tropical.Count) and counted == want["w"]
    assert counted == (counted.size, counted.count)
    assert counted.value == counted.size and isinstance(counted.count, int)
    assert not hasattr(counted, "config") and not hasattr(counted, "spins")
    assert repr(counted).startswith("Count(size=")
    degenerate = tropical.count_spin_glass_ground_states(g)
    assert isinstance(degenerate, tropical.Count) and degenerate.energy == degenerate[0]
    for kw in ({}, dict(max_intermediate=2 ** 3), dict(optimize="min_fill")):
        for w in (None, weights):
            value, config = tropical.max_independent_set(g, w, **kw)
            assert list(config) == list(g.nodes)
            assert all(type(x) is int and x in (0, 1) for x in config.values())
            check_mis(g, (value, config), w)
            assert math.isclose(value, want[None if w is None else "w"][0]), (kw, w)
        energy, spins = tropical.spin_glass_ground_state(g, h=0.25, **kw)
        assert list(spins) == list(g.nodes)
        assert all(type(x) is int and x in (-1, 1) for x in spins.values())
        assert math.isclose(tropical.spin_glass_energy(g, spins, h=0.25), energy)
        assert math.isclose(energy, tropical.brute_force_spin_glass(g, h=0.25)[0])


def test_counts_of_known_graphs_and_exact_big_integers():
    assert tropical.count_max_independent_sets(nx.petersen_graph()) == (4, 5)
    assert tropical.count_max_independent_sets(nx.cycle_graph(6)) == (3, 2)
    assert tropical.count_max_independent_sets(nx.empty_graph(0)) == (0, 1)
    # 70 isolated vertices of weight 0: every one of the 2^70 subsets is optimal, a count
    # past int64: exact as a Python integer
    g = nx.empty_graph(70)
    size, count = tropical.count_max_independent_sets(g, {v: 0.0 for v in g})
    assert size == 0.0 and count == 2 ** 70 and isinstance(count, int)
    # the antiferromagnetic ring of 8 spins: two ground states (the two Neel states)
    assert tropical.count_spin_glass_ground_states(nx.cycle_graph(8)) == (-8.0, 2)


def test_counting_tropical_is_a_public_compound_semiring():
    sr = tropical.CountingTropical("max")
    assert isinstance(sr, Semiring) and sr.arity == 2 and not sr.selective
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, (3, 5)).astype(float), rng.integers(0, 3, (5, 4)).astype(float)
    ones_a, ones_b = np.ones((3, 5), np.int64), np.ones((5, 4), np.int64)
    value, count = og.tropical_einsum("ij,jk->ik", (a, ones_a), (b, ones_b), semiring=sr)
    cand = a[:, :, None] + b[None]
    np.testing.assert_array_equal(value.numpy(), cand.max(axis=1))
    np.testing.assert_array_equal(count.numpy(), (cand == cand.max(axis=1, keepdims=True)).sum(1))
    with pytest.raises(ValueError, match="tuple of 2 arrays"):
        og.tropical_einsum("ij,jk->ik", a, b, semiring=sr)


def test_a_user_compound_semiring():
    """(max, second max) pairs: a semiring nobody registered, through tropical_einsum."""

    class TopTwo(Semiring):
        arity = 2

        def __init__(self):
            super().__init__("top_two_test", zero=(-math.inf, -math.inf), one=(0.0, -math.inf))

        def add(self, b, x, y):
            hi = b.binary("maximum", x[0], y[0])
            lo = b.binary("maximum", b.binary("minimum", x[0], y[0]),
                          b.binary("maximum", x[1], y[1]))
            return hi, lo

        def mul(self, b, x, y):
            return (b.binary("add", x[0], y[0]),
                    b.binary("maximum", b.binary("add", x[0], y[1]), b.binary("add", x[1], y[0])))

    sr = TopTwo()
    v = np.array([3.0, 1.0, 2.0, 5.0])
    best, second = og.tropical_einsum("i->", (v, np.full(4, -np.inf)), semiring=sr)
    assert best.item() == 5.0 and second.item() == 3.0
    with pytest.raises(TypeError, match="must define add"):
        type("Half", (Semiring,), {"arity": 2})("half", zero=(0, 0), one=(1, 1))


def test_larger_weighted_graph_against_an_integer_program():
    scipy = pytest.importorskip("scipy")
    from scipy.optimize import Bounds, LinearConstraint, milp
    g = nx.random_regular_graph(3, 70, seed=4)
    rng = np.random.default_rng(4)
    nodes = list(g)
    w = {v: float(rng.integers(1, 10)) for v in nodes}
    index = {v: k for k, v in enumerate(nodes)}
    rows = np.zeros((g.number_of_edges(), len(nodes)))
    for r, (u, v) in enumerate(g.edges()):
        rows[r, index[u]] = rows[r, index[v]] = 1
    res = milp(-np.array([w[v] for v in nodes]), integrality=np.ones(len(nodes)),
               bounds=Bounds(0, 1), constraints=LinearConstraint(rows, -np.inf, 1))
    assert res.success
    solution = tropical.max_independent_set(g, w)
    assert math.isclose(solution.value, -res.fun)
    check_mis(g, solution, w)
    del scipy


def test_traced_winners_are_the_tropical_einsum_gradient_on_every_backend(backend):
    """Many ties (all weights 1 on a cycle): the configuration the solver reads back is
    the one TropicalEinsum's gradient selects (lowest index on ties), on every backend."""
    g = nx.cycle_graph(8)
    path = tropical.contraction_plan([(v,) for v in g] + [tuple(e) for e in g.edges()],
                                     method="greedy").path
    solution = tropical.max_independent_set(g, optimize=path, backend=backend)
    vertex = [og.tensor(np.array([0.0, 1.0]), requires_grad=True, backend=backend) for _ in g]
    args = []
    for v, t in zip(g, vertex):
        args += [t, [v]]
    for u, v in g.edges():
        args += [og.tensor(np.array([[0.0, 0.0], [0.0, -np.inf]]), backend=backend), [u, v]]
    best = og.tropical_einsum(*args, [], optimize=["einsum_path"] + path)
    grads = og.grad(best, vertex)
    assert best.item() == solution.value == 4
    assert {v: int(gr.numpy()[1]) for v, gr in zip(g, grads)} == solution.config


def test_networkx_attribute_names_for_weights_couplings_and_fields():
    g = nx.path_graph(4)
    nx.set_node_attributes(g, {0: 1.0, 1: 5.0, 2: 1.0}, "weight")   # vertex 3: weight 1
    value, config = tropical.max_independent_set(g, weights="weight")
    assert value == 6.0 and config == {0: 0, 1: 1, 2: 0, 3: 1}
    assert isinstance(value, float)
    assert isinstance(tropical.max_independent_set(g).value, int)
    h = nx.cycle_graph(4)
    nx.set_edge_attributes(h, {(0, 1): -1.0, (1, 2): -1.0, (2, 3): -1.0}, "J")   # (3, 0): 1
    nx.set_node_attributes(h, {0: 0.5}, "h")
    energy, spins = tropical.spin_glass_ground_state(h, J="J", h="h")
    J = {(0, 1): -1.0, (1, 2): -1.0, (2, 3): -1.0, (0, 3): 1.0}
    want = tropical.brute_force_spin_glass(h, J, {0: 0.5, 1: 0.0, 2: 0.0, 3: 0.0})
    assert math.isclose(energy, want[0])
    with pytest.raises(ValueError, match="weights attribute 'weight' of vertex 0"):
        g.nodes[0]["weight"] = "heavy"
        tropical.max_independent_set(g, weights="weight")


def test_progress_hooks_report_order_and_contraction():
    events = []
    g = nx.random_regular_graph(3, 40, seed=3)
    tropical.max_independent_set(g, progress=lambda *e: events.append(e))
    stages = [e[0] for e in events]
    assert "order" in stages and "contract" in stages
    done = [e[1] for e in events if e[0] == "contract"]
    assert done == sorted(done) and done[-1] == [e[2] for e in events if e[0] == "contract"][-1]
    tropical.count_max_independent_sets(g, progress=True)   # tqdm on stderr
    with pytest.raises(TypeError, match="progress must be"):
        tropical.max_independent_set(g, progress="yes")


def test_estimated_peak_bounds_the_measured_peak():
    g = nx.random_regular_graph(3, 70, seed=2)
    tropical.max_independent_set(g)   # warm caches
    tracemalloc.start()
    solution = tropical.max_independent_set(g, backend="numpy")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    info = solution.info
    assert info.peak_bytes >= info.largest_intermediate * 4
    assert peak <= 1.5 * info.peak_bytes + 2 ** 21   # 2 MB of Python objects besides


def test_bad_limits_are_clear_errors():
    g = nx.petersen_graph()
    for kwargs, match in [(dict(max_intermediate=0), "max_intermediate must be"),
                          (dict(max_memory="1GB"), "max_memory must be"),
                          (dict(max_cost=-1), "max_cost must be")]:
        with pytest.raises(ValueError, match=match):
            tropical.max_independent_set(g, **kwargs)
