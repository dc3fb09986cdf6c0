"""The one path module (ops/einsum/path.py, treesa.py): greedy with a size bound, tree
simulated annealing (valid, deterministic per seed, never worse than its greedy
start, far better than greedy on graph networks), and optimize= in einsum and
tropical_einsum."""
import math

import networkx as nx
import numpy as np
import pytest

import opgraph as og
from opgraph.ops.einsum import path as P
from opgraph.ops.einsum.treesa import TreeSA

QUICK = dict(ntrials=2, niters=3, time_limit=None)


def graph_network(g):
    idx = {v: k for k, v in enumerate(g)}
    return [(idx[v],) for v in g] + [(idx[u], idx[v]) for u, v in g.edges()]


def test_treesa_path_contracts_like_numpy_einsum():
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4, 5), (5, 2), (2, 3), (3, 6)]
    arrays = [rng.standard_normal(s) for s in shapes]
    expr = "ab,bc,cd,da,ae->e"
    want = np.einsum(expr, *arrays)
    for optimize in ("treesa", TreeSA(seed=3, **QUICK)):
        got = og.einsum(expr, *[og.tensor(a) for a in arrays], optimize=optimize)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
        path, info = og.einsum_path(expr, *arrays, optimize=optimize)
        np.testing.assert_allclose(np.einsum(expr, *arrays, optimize=path), want, rtol=1e-10)
    brute = (arrays[0][:, :, None, None, None] + arrays[1][None, :, :, None, None]
             + arrays[2][None, None, :, :, None] + arrays[3].T[:, None, None, :, None]
             + arrays[4][:, None, None, None, :]).max(axis=(0, 1, 2, 3))
    got = og.tropical_einsum(expr, *[og.tensor(a) for a in arrays], optimize=TreeSA(**QUICK))
    np.testing.assert_allclose(got.numpy(), brute, rtol=1e-12)


def test_treesa_is_deterministic_per_seed_and_no_worse_than_greedy():
    labels = graph_network(nx.random_regular_graph(3, 40, seed=2))
    sets = [set(l) for l in labels]
    sizes = P.binary_sizes(labels)
    a = TreeSA(seed=5, **QUICK).search(sets, set(), sizes)
    b = TreeSA(seed=5, **QUICK).search(sets, set(), sizes)
    assert a == b
    assert len(a) == len(labels) - 1
    greedy = P.greedy_path(sets, set(), sizes, memory_limit=1 << 62)
    assert P.simulate_path(labels, a, sizes)[0] <= P.simulate_path(labels, greedy, sizes)[0]


def test_treesa_beats_greedy_and_elimination_orders_on_a_cubic_graph():
    labels = graph_network(nx.random_regular_graph(3, 80, seed=1))
    annealed = P.contraction_plan(labels, method=TreeSA(seed=0, ntrials=2, niters=5,
                                                        time_limit=None))
    greedy = P.contraction_plan(labels, method="greedy")
    min_fill = P.contraction_plan(labels, method="min_fill")
    assert annealed.method == "treesa"
    assert annealed.largest_intermediate <= min(greedy.largest_intermediate,
                                                min_fill.largest_intermediate)
    assert annealed.width <= greedy.width - 2   # 2^12 against greedy's 2^16 here


def test_treesa_handles_outputs_scalars_disconnected_parts_and_other_sizes():
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in [(2, 3), (3,), (4, 5), (5, 4), ()]]
    expr = "ab,b,cd,dc,->a"
    got = og.einsum(expr, *[og.tensor(a) for a in arrays], optimize=TreeSA(**QUICK))
    np.testing.assert_allclose(got.numpy(), np.einsum(expr, *arrays), rtol=1e-10)


def test_treesa_settings_are_checked():
    with pytest.raises(ValueError, match="ntrials"):
        TreeSA(ntrials=0)
    with pytest.raises(ValueError, match="unknown optimize"):
        og.einsum("ij,jk->ik", og.zeros(2, 2), og.zeros(2, 2), optimize="annealing")


def test_greedy_stops_at_the_size_bound():
    # K_12's network: any order holds a tensor of 2^11 entries
    labels = graph_network(nx.complete_graph(12))
    sets = [set(l) for l in labels]
    with pytest.raises(P.PathTooLarge) as info:
        P.greedy_path(sets, set(), P.binary_sizes(labels), memory_limit=1 << 62,
                      abort_size=2 ** 6)
    assert info.value.size > 2 ** 6 and info.value.bound == 2 ** 6
    assert isinstance(info.value, MemoryError)


def test_greedy_scales_to_thousands_of_operands():
    labels = graph_network(nx.random_regular_graph(3, 2000, seed=0))
    sets, sizes = [set(l) for l in labels], P.binary_sizes(labels)
    path = P.greedy_path(sets, set(), sizes, memory_limit=1 << 62)
    assert len(path) == len(labels) - 1
    with pytest.raises(P.PathTooLarge, match=r"above the bound of 2\^30"):
        P.greedy_path(sets, set(), sizes, memory_limit=1 << 62, abort_size=2 ** 30)


def test_treesa_time_limit_counts_compile_and_greedy_seed():
    # the budget is wall time from the call: with none left after the compile and the
    # greedy seed no trial starts, and the search returns the seed tree
    labels = graph_network(nx.random_regular_graph(3, 60, seed=3))
    sets, sizes = [set(l) for l in labels], P.binary_sizes(labels)
    out_of_time = TreeSA(time_limit=0.0)
    path = out_of_time.search(sets, set(), sizes)
    assert out_of_time.stats["trials"] == 0 and out_of_time.stats["finished"] == 0
    assert path == TreeSA(ntrials=1, niters=0, time_limit=None).search(sets, set(), sizes)
    assert len(path) == len(labels) - 1


def test_greedy_through_a_hub_label_stays_valid_and_small():
    # a star: every edge tensor shares the hub's label; pairs through it are limited to
    # the newest holders (linear time), and the order still keeps every tensor tiny
    labels = graph_network(nx.star_graph(1500))
    sets, sizes = [set(l) for l in labels], P.binary_sizes(labels)
    path = P.greedy_path(sets, set(), sizes, memory_limit=1 << 62)
    largest, cost = P.simulate_path(labels, path, sizes)
    assert len(path) == len(labels) - 1 and largest <= 4 and cost <= 8 * len(labels)
