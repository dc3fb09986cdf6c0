"""opgraph.tropical: maximum independent set and spin-glass ground states by tropical
tensor networks, checked against known values, networkx, max-flow and brute force;
the contraction-order code; graph specs; and the `mis` / `spinglass` commands."""
import itertools
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from opgraph import tropical
from opgraph.__main__ import main
from opgraph.commands.graph_specs import GraphSpecError, parse_graph


# --------------------------------------------------------------------------- helpers

def assert_mis_solution(graph, solution, weights=None):
    value, config = solution
    # the size of an unweighted graph's MIS is an int, a weight a float
    assert isinstance(value, int if weights is None else float), type(value)
    assert set(config) == set(graph.nodes)
    assert all(type(config[v]) is int and config[v] in (0, 1) for v in graph.nodes)
    for u, v in graph.edges():
        assert not (config[u] and config[v]), f"edge {(u, v)} has both ends chosen"
    w = weights or {v: 1.0 for v in graph.nodes}
    assert sum(w[v] for v in graph.nodes if config[v]) == pytest.approx(value)


def assert_spins_attain(graph, solution, J=None, h=None):
    energy, spins = solution
    assert set(spins) == set(graph.nodes)
    assert all(type(spins[v]) is int and spins[v] in (-1, 1) for v in graph.nodes)
    assert tropical.spin_glass_energy(graph, spins, J, h) == pytest.approx(energy)


def mwis_by_networkx(graph, weights):
    """Maximum weight independent set = maximum weight clique of the complement."""
    comp = nx.complement(graph)
    for v in comp:
        comp.nodes[v]["w"] = int(weights[v])
    _, weight = nx.max_weight_clique(comp, weight="w")
    return weight


def random_bipartite_cubic(half, seed):
    """A 3-regular bipartite graph on 2*half vertices (union of 3 disjoint perfect matchings)."""
    rng = np.random.default_rng(seed)
    while True:
        g = nx.Graph()
        g.add_nodes_from(range(2 * half))
        ok = True
        for _ in range(3):
            perm = rng.permutation(half)
            for i in range(half):
                u, v = i, half + int(perm[i])
                if g.has_edge(u, v):
                    ok = False
                g.add_edge(u, v)
        if ok and nx.is_connected(g):
            return g


def mwis_bipartite_by_maxflow(graph, weights):
    """In a bipartite graph, MWIS = total weight - minimum weight vertex cover = total - max flow."""
    left, right = nx.bipartite.sets(graph)
    flow = nx.DiGraph()
    for u in left:
        flow.add_edge("s", u, capacity=weights[u])
        for v in graph[u]:
            flow.add_edge(u, v)  # no capacity: infinite
    for v in right:
        flow.add_edge(v, "t", capacity=weights[v])
    cut, _ = nx.minimum_cut(flow, "s", "t")
    return sum(weights.values()) - cut


# --------------------------------------------------------------------------- MIS: known values

def test_petersen_mis_is_4():
    g = nx.petersen_graph()
    solution = tropical.max_independent_set(g)
    assert solution.value == 4.0
    assert_mis_solution(g, solution)


@pytest.mark.parametrize("n", range(3, 13))
def test_cycle_mis_is_floor_half(n):
    g = nx.cycle_graph(n)
    solution = tropical.max_independent_set(g)
    assert solution[0] == n // 2
    assert_mis_solution(g, solution)


def test_grid_4x4_mis_is_8():
    g = nx.grid_2d_graph(4, 4)  # tuple nodes work too
    solution = tropical.max_independent_set(g)
    assert solution.value == 8.0
    assert_mis_solution(g, solution)


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_complete_graph_mis_is_1(n):
    g = nx.complete_graph(n)
    value, config = tropical.max_independent_set(g)
    assert value == 1.0 and sum(config.values()) == 1


def test_edgeless_and_empty_graphs():
    g = nx.empty_graph(5)
    value, config = tropical.max_independent_set(g)
    assert value == 5.0 and all(config[v] == 1 for v in g)
    assert tuple(tropical.max_independent_set(nx.Graph())) == (0.0, {})
    assert tuple(tropical.spin_glass_ground_state(nx.Graph())) == (0.0, {})


def test_self_loop_forbids_its_vertex_and_direction_is_ignored():
    g = nx.path_graph(3)             # MIS {0, 2}
    g.add_edge(0, 0)
    value, config = tropical.max_independent_set(g)
    assert value == 1.0 and config[0] == 0
    d = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    assert tropical.max_independent_set(d)[0] == 1.0


def test_string_and_tuple_nodes():
    g = nx.Graph([("a", "b"), ("b", "c"), ("c", ("x", 1))])
    value, config = tropical.max_independent_set(g)
    assert value == 2.0
    assert_mis_solution(g, (value, config))


# --------------------------------------------------------------------------- MIS: weighted vs networkx

@pytest.mark.parametrize("seed", range(8))
def test_weighted_mis_matches_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 17))
    g = nx.gnp_random_graph(n, float(rng.uniform(0.15, 0.5)), seed=seed)
    weights = {v: float(rng.integers(1, 20)) for v in g}
    solution = tropical.max_independent_set(g, weights)
    assert solution.value == mwis_by_networkx(g, weights)
    assert_mis_solution(g, solution, weights)


def test_weights_as_sequence_and_negative_weights():
    g = nx.path_graph(4)
    value, config = tropical.max_independent_set(g, [1.0, 5.0, 1.0, 2.0])
    assert value == 7.0 and config == {0: 0, 1: 1, 2: 0, 3: 1}
    value, config = tropical.max_independent_set(g, {0: -1.0, 1: -2.0, 2: 3.0, 3: -0.5})
    assert value == 3.0 and config == {0: 0, 1: 0, 2: 1, 3: 0}


@pytest.mark.parametrize("weights, match", [
    ({0: 1.0, 1: 1.0}, "no entry for vertex 2"),
    ({0: 1, 1: 1, 2: 1, 9: 1}, "9.*not a vertex"),
    ([1.0, 2.0], "2 entries for 3 vertices"),
    ({0: 1.0, 1: float("nan"), 2: 1.0}, "finite real number"),
])
def test_bad_weights_are_rejected(weights, match):
    with pytest.raises(ValueError, match=match):
        tropical.max_independent_set(nx.path_graph(3), weights)


def test_not_a_graph_is_rejected():
    with pytest.raises(TypeError, match="networkx graph"):
        tropical.max_independent_set([(0, 1)])


# --------------------------------------------------------------------------- larger graphs

def test_3_regular_60_vertices_bipartite_known_answer():
    # a connected cubic bipartite graph has a perfect matching: alpha = n / 2 exactly,
    # and with random weights the optimum is known by max-flow (Konig)
    g = random_bipartite_cubic(30, seed=3)
    solution = tropical.max_independent_set(g)
    assert solution.value == 30.0
    assert_mis_solution(g, solution)
    assert solution.info.largest_intermediate <= 2 ** 14
    rng = np.random.default_rng(3)
    weights = {v: float(rng.integers(1, 10)) for v in g}
    solution = tropical.max_independent_set(g, weights)
    assert solution.value == pytest.approx(mwis_bipartite_by_maxflow(g, weights))
    assert_mis_solution(g, solution, weights)
    # the antiferromagnet on a bipartite graph satisfies every bond
    energy, spins = tropical.spin_glass_ground_state(g)
    assert energy == -90.0
    assert all(spins[u] != spins[v] for u, v in g.edges())


def test_random_3_regular_60_vertices():
    g = nx.random_regular_graph(3, 60, seed=7)
    solution = tropical.max_independent_set(g)
    assert_mis_solution(g, solution)
    info = solution.info
    assert info.num_tensors == 60 + 90
    assert info.method in ("greedy", "treesa")
    assert info.largest_intermediate <= 2 ** 14   # ~2^treewidth, not 2^60
    # an independent computation along another order agrees, and beats a greedy maximal set
    other = tropical.max_independent_set(g, optimize="min_fill")
    assert other.value == solution.value
    greedy = nx.maximal_independent_set(g, seed=0)
    assert solution.value >= len(greedy)
    # random-regular cubic graphs have alpha/n around 0.43-0.46
    assert 0.40 * 60 <= solution.value <= 0.4554 * 60 + 1


def test_hub_vertex_and_many_components():
    # a 300-leaf star (one bucket of 300 tensors) and 100 disjoint triangles (100 components)
    value, config = tropical.max_independent_set(nx.star_graph(300))
    assert value == 300.0 and config[0] == 0
    g = nx.disjoint_union_all([nx.complete_graph(3)] * 100)
    solution = tropical.max_independent_set(g)
    assert solution.value == 100.0 and solution.info.largest_intermediate <= 8
    assert_mis_solution(g, solution)


def tree_mis_by_dp(tree, weights):
    """(max weight, number of independent sets attaining it) of a forest: the DP from
    the leaves up, per vertex the best (weight, count) without it and with it."""
    def better(x, y):   # ⊕ of (weight, count) pairs
        if x[0] != y[0]:
            return max(x, y)
        return (x[0], x[1] + y[1])

    total, count = 0.0, 1
    for component in nx.connected_components(tree):
        root = min(component)
        order = list(nx.dfs_preorder_nodes(tree, root))
        parent = dict(nx.dfs_predecessors(tree, root))
        best = {}
        for v in reversed(order):
            out, inn = (0.0, 1), (weights[v], 1)
            for u in tree[v]:
                if u != parent.get(v):
                    without, with_ = best[u]
                    either = better(without, with_)
                    out = (out[0] + either[0], out[1] * either[1])
                    inn = (inn[0] + without[0], inn[1] * without[1])
            best[v] = (out, inn)
        w, c = better(*best[root])
        total, count = total + w, count * c
    return total, count


def test_trees_stars_and_paths_are_near_linear():
    # hub vertices and long chains made the greedy order, the plan and the path
    # bookkeeping quadratic (a 1000-leaf star took 15 s, a 2000-vertex path 3.4 s, a
    # 5000-vertex tree 30 s); a tree has treewidth 1: these take well under a second
    star = nx.star_graph(1000)
    solution = tropical.max_independent_set(star)
    assert solution.value == 1000 and solution.config[0] == 0
    assert solution.info.largest_intermediate <= 4
    assert tropical.count_max_independent_sets(star) == (1000, 1)
    energy, spins = tropical.spin_glass_ground_state(star)
    assert energy == -1000.0 and {spins[0] * spins[v] for v in range(1, 1001)} == {-1}
    path = nx.path_graph(2001)
    solution = tropical.max_independent_set(path)
    assert solution.value == 1001            # ceil(n / 2)
    assert_mis_solution(path, solution)
    assert tropical.count_max_independent_sets(nx.path_graph(2000)) == (1000, 1001)
    tree = nx.random_labeled_tree(2000, seed=1)
    rng = np.random.default_rng(0)
    weights = {v: float(rng.integers(1, 10)) for v in tree}
    solution = tropical.max_independent_set(tree, weights)
    assert_mis_solution(tree, solution, weights)
    expected, count = tree_mis_by_dp(tree, weights)
    assert solution.value == expected
    assert tropical.count_max_independent_sets(tree, weights) == (expected, count)


def test_tree_dp_reference_matches_brute_force():
    for seed in range(12):
        tree = nx.random_labeled_tree(9, seed=seed)
        if seed % 3 == 0:   # a forest
            tree = nx.disjoint_union(tree, nx.path_graph(4))
        weights = {v: float((7 * v + seed) % 3) for v in tree}
        best, count = -1.0, 0
        for bits in itertools.product((0, 1), repeat=len(tree)):
            x = dict(zip(tree, bits))
            if any(x[u] and x[v] for u, v in tree.edges()):
                continue
            total = sum(weights[v] for v in tree if x[v])
            best, count = (total, 1) if total > best else (best, count + (total == best))
        assert tree_mis_by_dp(tree, weights) == (best, count)
        assert tropical.count_max_independent_sets(tree, weights) == (best, count)


def test_too_large_a_contraction_is_sliced_or_refused_up_front():
    # over max_intermediate: sliced (vertices fixed per slice), still exact
    g = nx.complete_graph(16)
    solution = tropical.max_independent_set(g, max_intermediate=2 ** 10)
    assert solution.value == 1 and solution.info.slices > 1
    assert solution.info.sliced_info.largest_intermediate <= 2 ** 10
    assert_mis_solution(g, solution)
    solution = tropical.spin_glass_ground_state(nx.petersen_graph(), max_intermediate=8)
    assert solution.energy == -9.0 and solution.info.slices > 1
    assert tropical.max_independent_set(nx.petersen_graph(), max_intermediate=16).value == 4
    # K_60: treewidth 59, so at least 2^60 multiply-adds however sliced: refused at once
    with pytest.raises(MemoryError, match=r"treewidth is at least 59.*2\^60 tropical "
                                          r"multiply-adds, beyond max_cost=2\^39"):
        tropical.max_independent_set(nx.complete_graph(60))
    # a sparse graph too large for its treewidth: the greedy order stops at its bound, and
    # the message gives the estimated peak memory
    with pytest.raises(MemoryError, match=r"intermediate of at least 2\^\d+ entries, an "
                                          r"estimated peak of at least 2\^\d+.* bytes"):
        tropical.max_independent_set(nx.random_regular_graph(3, 1000, seed=1))
    with pytest.raises(tropical.ContractionTooLarge, match=r"max_cost=2\^10"):
        tropical.max_independent_set(nx.random_regular_graph(3, 40, seed=0), max_cost=2 ** 10)


# --------------------------------------------------------------------------- spin glass

@pytest.mark.parametrize("seed", range(8))
def test_spin_glass_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(5, 17))
    g = nx.gnp_random_graph(n, 0.35, seed=seed)
    if seed % 2:
        J = {e: float(rng.choice([-1.0, 1.0])) for e in g.edges()}
        h = {v: float(rng.choice([-1.0, 0.0, 1.0])) for v in g}
    else:
        J = {e: float(rng.normal()) for e in g.edges()}
        h = {v: float(rng.normal()) for v in g}
    solution = tropical.spin_glass_ground_state(g, J, h)
    energy, _ = tropical.brute_force_spin_glass(g, J, h)
    assert solution.energy == pytest.approx(energy, abs=1e-9)
    assert_spins_attain(g, solution, J, h)


def test_spin_glass_defaults_and_known_energies():
    # J = 1 (antiferromagnet) by default: an even cycle satisfies every bond, a triangle cannot
    assert tropical.spin_glass_ground_state(nx.cycle_graph(8))[0] == -8.0
    assert tropical.spin_glass_ground_state(nx.complete_graph(3))[0] == -1.0
    assert tropical.spin_glass_ground_state(nx.petersen_graph())[0] == -9.0
    # ferromagnet: all spins equal
    g = nx.path_graph(6)
    energy, spins = tropical.spin_glass_ground_state(g, J=-1.0)
    assert energy == -5.0 and len(set(spins.values())) == 1
    # fields alone: each spin points against its field, E = -sum |h|
    g = nx.empty_graph(4)
    h = {0: 0.5, 1: -2.0, 2: 1.5, 3: -0.25}
    energy, spins = tropical.spin_glass_ground_state(g, h=h)
    assert energy == -4.25 and spins == {0: -1, 1: 1, 2: -1, 3: 1}


def test_spin_glass_J_either_orientation_sequence_and_errors():
    g = nx.Graph([(0, 1), (1, 2)])
    e1 = tropical.spin_glass_ground_state(g, J={(1, 0): 2.0, (2, 1): -1.0})[0]
    e2 = tropical.spin_glass_ground_state(g, J=[2.0, -1.0])[0]
    assert e1 == e2 == -3.0
    with pytest.raises(ValueError, match="no entry for edge"):
        tropical.spin_glass_ground_state(g, J={(0, 1): 1.0})
    with pytest.raises(ValueError, match="not an edge"):
        tropical.spin_glass_ground_state(g, J={(0, 1): 1.0, (1, 2): 1.0, (0, 2): 1.0})
    with pytest.raises(ValueError, match="multigraph"):
        tropical.spin_glass_ground_state(nx.MultiGraph([(0, 1), (0, 1)]))


def test_spin_glass_3_regular_60_two_orders_agree():
    g = nx.random_regular_graph(3, 60, seed=11)
    rng = np.random.default_rng(11)
    J = {e: float(rng.choice([-1.0, 1.0])) for e in g.edges()}
    a = tropical.spin_glass_ground_state(g, J, optimize="min_fill")
    b = tropical.spin_glass_ground_state(g, J, optimize="min_degree")
    assert a.energy == b.energy
    assert_spins_attain(g, a, J)
    assert_spins_attain(g, b, J)
    # no state is lower than the ground state: flipping any single spin cannot help
    for v in g:
        flipped = dict(a.spins)
        flipped[v] = -flipped[v]
        assert tropical.spin_glass_energy(g, flipped, J) >= a.energy


# --------------------------------------------------------------------------- backends

def test_solvers_on_every_backend(backend):
    g = nx.petersen_graph()
    value, config = tropical.max_independent_set(g, backend=backend)
    assert value == 4.0
    assert_mis_solution(g, (value, config))
    rng = np.random.default_rng(5)
    J = {e: float(rng.choice([-1.0, 1.0])) for e in g.edges()}
    solution = tropical.spin_glass_ground_state(g, J, backend=backend)
    assert solution.energy == tropical.brute_force_spin_glass(g, J)[0]
    assert_spins_attain(g, solution, J)


# --------------------------------------------------------------------------- contraction order

def network_labels(graph):
    idx = {v: k for k, v in enumerate(graph)}
    return [(idx[v],) for v in graph] + [(idx[u], idx[v]) for u, v in graph.edges()]


def test_bucket_elimination_width_is_the_treewidth_bound():
    from networkx.algorithms.approximation import treewidth_min_fill_in
    for seed in range(3):
        g = nx.random_regular_graph(3, 40, seed=seed)
        tw, _ = treewidth_min_fill_in(g)
        plan = tropical.contraction_plan(network_labels(g), method="min_fill")
        assert len(plan.path) == len(plan.labels) - 1
        assert plan.largest_intermediate <= 2 ** (tw + 1)
        assert sorted(plan.order) == sorted(range(40))


def test_simulate_path_counts_sizes():
    labels = [(0, 1), (1, 2), (2, 3)]
    sizes = {0: 2, 1: 3, 2: 5, 3: 7}
    # to a scalar: (01)(12) sums 0 and 1 away -> (2,) over a joint space of 2*3*5; then (2)(23)
    largest, cost = tropical.simulate_path(labels, [(0, 1), (0, 1)], sizes)
    assert largest == 35 and cost == 30 + 35
    # keeping 0 and 3: (01)(12) -> (0, 2) of 10 entries; then (02)(23) -> (0, 3) of 14
    largest, cost = tropical.simulate_path(labels, [(0, 1), (0, 1)], sizes, output=(0, 3))
    assert largest == 35 and cost == 30 + 70
    largest, cost = tropical.simulate_path(labels, [(1, 2), (0, 1)], sizes, output=(0, 3))
    assert largest == 35 and cost == 105 + 42
    plan = tropical.contraction_plan(labels, method=[(0, 1), (0, 1)])
    assert plan.method == "explicit" and plan.largest_intermediate == 4


@pytest.mark.parametrize("method", ["auto", "min_fill", "min_degree", "greedy"])
def test_every_order_gives_the_same_optimum(method):
    g = nx.gnp_random_graph(14, 0.3, seed=4)
    assert tropical.max_independent_set(g, optimize=method).value == \
        mwis_by_networkx(g, {v: 1 for v in g})


def test_explicit_path_and_bad_paths():
    g = nx.path_graph(3)   # operands: 3 vertices, then edges (0,1), (1,2)
    value, _ = tropical.max_independent_set(g, optimize=[(0, 3), (0, 2), (0, 2), (0, 1)])
    assert value == 2.0
    with pytest.raises(ValueError, match="operands are left"):
        tropical.contraction_plan(network_labels(g), method=[(0, 1)])
    with pytest.raises(ValueError, match="not a pair"):
        tropical.contraction_plan(network_labels(g), method=[(0, 7)] * 4)
    with pytest.raises(ValueError, match="unknown method"):
        tropical.max_independent_set(g, optimize="fastest")


# --------------------------------------------------------------------------- graph specs

def test_graph_specs():
    assert nx.is_isomorphic(parse_graph("petersen"), nx.petersen_graph())
    grid = parse_graph("grid:3x4")
    assert nx.is_isomorphic(grid, nx.grid_2d_graph(3, 4)) and set(grid) == set(range(12))
    rr = parse_graph("random-regular:3:20:5")
    assert rr.number_of_nodes() == 20 and all(d == 3 for _, d in rr.degree())
    assert nx.utils.graphs_equal(rr, parse_graph("random-regular:3:20:5"))
    er = parse_graph("erdos-renyi:30:0.2:1")
    assert er.number_of_nodes() == 30
    assert parse_graph("erdos-renyi:30:0.2").number_of_nodes() == 30
    assert parse_graph("cycle:7").number_of_edges() == 7
    assert parse_graph("complete:5").number_of_edges() == 10


@pytest.mark.parametrize("spec, match", [
    ("dodecahedron", "unknown graph spec"),
    ("grid:4", "grid:RxC"),
    ("grid:4xq", "integer"),
    ("random-regular:3:7", "no 3-regular graph on 7"),
    ("random-regular:3", "random-regular:D:N"),
    ("erdos-renyi:10:1.5", r"\[0, 1\]"),
    ("erdos-renyi:10:p", "must be a number"),
    ("petersen:3", "'petersen'"),
])
def test_bad_graph_specs(spec, match):
    with pytest.raises(GraphSpecError, match=match):
        parse_graph(spec)


def test_edge_list_file(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("# a weighted triangle and an isolated vertex\n0 1 2.5\n1 2 -1\n2 0 1\n7\n")
    g = parse_graph(str(f))
    assert sorted(g) == [0, 1, 2, 7] and g.edges[0, 1]["weight"] == 2.5
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 x\n")
    with pytest.raises(GraphSpecError, match="bad.txt:1"):
        parse_graph(str(bad))
    with pytest.raises(GraphSpecError, match="directory"):
        parse_graph(str(tmp_path))
    # one edge listed twice with different couplings is an error, not "last wins"
    for text in ("1 2 1\n2 1 -1\n", "1 2\n1 2 3\n"):
        clash = tmp_path / "clash.txt"
        clash.write_text(text)
        with pytest.raises(GraphSpecError, match=r"clash.txt:2: edge .* weight .* on line 1"):
            parse_graph(str(clash))
    same = tmp_path / "same.txt"
    same.write_text("1 2 -1\n2 1 -1\n3 4\n4 3\n")
    assert parse_graph(str(same)).edges[1, 2]["weight"] == -1.0
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(GraphSpecError, match="cannot read"):
        parse_graph(str(binary))


# --------------------------------------------------------------------------- CLI

def test_cli_mis_petersen(capsys):
    assert main(["mis", "petersen"]) == 0
    out = capsys.readouterr().out
    assert "maximum independent set size: 4" in out
    assert "largest intermediate" in out and "time:" in out
    chosen = [int(v) for v in out.split("independent set: ")[1].split("\n")[0].split()]
    g = nx.petersen_graph()
    assert len(chosen) == 4 and not any(g.has_edge(u, v) for u, v in itertools.combinations(chosen, 2))


def test_cli_mis_weighted_grid(capsys):
    assert main(["mis", "grid:4x4"]) == 0
    assert "maximum independent set size: 8" in capsys.readouterr().out
    assert main(["mis", "cycle:9", "--random-weights", "3", "--optimize", "greedy"]) == 0
    out = capsys.readouterr().out
    assert "maximum independent set weight:" in out and "order greedy" in out


def test_cli_spinglass(capsys, tmp_path):
    assert main(["spinglass", "petersen"]) == 0
    assert "ground state energy: -9.0" in capsys.readouterr().out
    assert main(["spinglass", "random-regular:3:12:2", "--random-couplings", "4"]) == 0
    out = capsys.readouterr().out
    g = parse_graph("random-regular:3:12:2")
    rng = np.random.default_rng(4)
    J = {e: float(rng.choice([-1.0, 1.0])) for e in g.edges()}
    assert f"ground state energy: {tropical.brute_force_spin_glass(g, J)[0]}" in out
    # couplings from the third column of an edge list: a frustrated ferro/antiferro triangle
    f = tmp_path / "tri.txt"
    f.write_text("0 1 -1\n1 2 -1\n2 0 1\n")
    assert main(["spinglass", str(f), "--field", "0.5"]) == 0
    out = capsys.readouterr().out
    tri = nx.Graph([(0, 1), (1, 2), (2, 0)])
    expect = tropical.brute_force_spin_glass(tri, {(0, 1): -1, (1, 2): -1, (0, 2): 1}, 0.5)[0]
    assert f"ground state energy: {expect}" in out


@pytest.mark.parametrize("argv", [["mis", "no-such-graph"], ["spinglass", "grid:3"],
                                  ["mis", "random-regular:3:7:1"], ["mis", "complete:60"]])
def test_cli_bad_spec_one_line_error(capsys, argv):
    assert main(argv) != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_cli_unreadable_file(capsys, tmp_path):
    assert main(["mis", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "cannot read" in err and "\n" not in err


def test_cli_error_exit_in_a_subprocess():
    r = subprocess.run([sys.executable, "-m", "opgraph", "mis", "nonsense:1:2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "unknown graph spec 'nonsense:1:2'" in r.stderr


def test_cli_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "mis.png"
    assert main(["mis", "petersen", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out2 = tmp_path / "sg.png"
    assert main(["spinglass", "grid:3x3", "--random-couplings", "1", "--plot", str(out2)]) == 0
    assert out2.stat().st_size > 1000
    capsys.readouterr()
    assert main(["mis", "petersen", "--plot", str(tmp_path / "missing-dir" / "x.png")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write the plot") and "\n" not in err


def test_cli_plot_without_matplotlib(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    assert main(["mis", "petersen", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "matplotlib" in err and "opgraph[plot]" in err and "\n" not in err
    assert not (tmp_path / "x.png").exists()
