"""python -m opgraph spinglass GRAPH: Ising spin-glass ground state by a min_plus
tropical tensor network; the spins are the gradient of the energy w.r.t. the fields."""
from ._cli import number
from ._solver_cli import (add_common_arguments, check_arguments, describe, draw, load_graph,
                          node_list, print_contraction, solve)


def add_arguments(parser):
    add_common_arguments(parser, "--random-couplings",
                         "couplings J = ±1 drawn uniformly with this seed (default: J = 1 on "
                         "every edge, or the third column of an edge-list file)")
    parser.add_argument("--field", type=float, default=0.0, metavar="H",
                        help="a uniform field h on every vertex (default 0)")


def run(args):
    import numpy as np

    from .. import tropical
    check_arguments(args)
    number(args.field, "--field")
    graph, code = load_graph(args.graph)
    if graph is None:
        return code
    edges = list(graph.edges())
    if args.random_couplings is not None:
        rng = np.random.default_rng(args.random_couplings)
        J = {e: float(rng.choice([-1.0, 1.0])) for e in edges}
    else:
        J = {(u, v): float(graph.edges[u, v].get("weight", 1.0)) for u, v in edges}
    solved, code = solve(args, tropical.spin_glass_ground_state, graph, J, args.field)
    if solved is None:
        return code
    solution, seconds, hook = solved
    energy, spins = solution
    up = [v for v in graph.nodes if spins[v] > 0]
    print(f"graph: {args.graph} ({describe(graph)})")
    print(f"ground state energy: {float(f'{energy:.12g}')}")  # -9.0; no float noise
    print("spins: " + "".join("+" if spins[v] > 0 else "-" for v in graph.nodes)
          + " (graph.nodes order)")
    print(f"up spins: {node_list(up)}")
    unsatisfied = [(u, v) for u, v in edges if J[(u, v)] * spins[u] * spins[v] > 0]
    print(f"unsatisfied couplings: {len(unsatisfied)} of {len(edges)}")
    print_contraction(solution, seconds, hook)
    if args.plot:
        colors = {v: "#1f77b4" if spins[v] > 0 else "#ff7f0e" for v in graph.nodes}
        bad = set(unsatisfied)
        # E = sum J s_u s_v: J < 0 wants equal spins (ferromagnetic), J > 0 opposite ones
        sign_color = {True: "#15803d", False: "#7e22ce"}
        largest = max((abs(J[e]) for e in edges), default=1) or 1
        code = draw(graph, args.plot, colors, f"spin-glass ground state, energy {energy:g}",
                    edge_colors=[sign_color[J[e] < 0] for e in edges],
                    edge_styles=["dashed" if e in bad else "solid" for e in edges],
                    edge_widths=[0.8 + 2.2 * abs(J[e]) / largest for e in edges],
                    legend=[("spin +1", "#1f77b4", "o", "none"),
                            ("spin -1", "#ff7f0e", "o", "none"),
                            ("J < 0 (wants equal spins)", sign_color[True], "", "-"),
                            ("J > 0 (wants opposite spins)", sign_color[False], "", "-"),
                            ("unsatisfied coupling", "#555555", "", "--")])
        if code is not None:
            return code
    return 0
