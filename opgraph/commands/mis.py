"""python -m opgraph mis GRAPH: maximum (weighted) independent set by a max_plus
tropical tensor network; the configuration is the gradient w.r.t. the vertex weights."""
from ._solver_cli import (add_common_arguments, check_arguments, describe, draw, load_graph,
                          node_list, print_contraction, solve)


def add_arguments(parser):
    add_common_arguments(parser, "--random-weights",
                         "integer vertex weights drawn uniformly from 1..9 with this seed "
                         "(default: every weight is 1)")


def run(args):
    import numpy as np

    from .. import tropical
    check_arguments(args)
    graph, code = load_graph(args.graph)
    if graph is None:
        return code
    weights = None
    if args.random_weights is not None:
        rng = np.random.default_rng(args.random_weights)
        weights = {v: float(rng.integers(1, 10)) for v in graph.nodes}
    solved, code = solve(args, tropical.max_independent_set, graph, weights)
    if solved is None:
        return code
    solution, seconds, hook = solved
    value, config = solution
    chosen = [v for v in graph.nodes if config[v]]
    print(f"graph: {args.graph} ({describe(graph)})")
    if weights is None:
        print(f"maximum independent set size: {int(round(value))}")
    else:
        print(f"maximum independent set weight: {value:g} ({len(chosen)} vertices)")
        print("weights: " + " ".join(f"{v}:{weights[v]:g}" for v in graph.nodes))
    print(f"independent set: {node_list(chosen)}")
    print("configuration: " + "".join(str(config[v]) for v in graph.nodes) + " (graph.nodes order)")
    print_contraction(solution, seconds, hook)
    if args.plot:
        colors = {v: "#d62728" if config[v] else "#dddddd" for v in graph.nodes}
        what = "size" if weights is None else "weight"
        weighted = weights is not None and any(w != 1 for w in weights.values())
        notes = {v: f"{weights[v]:g}" for v in graph.nodes} if weighted else None
        legend = [("in the set", "#d62728", "o", "none"), ("not in it", "#dddddd", "o", "none")]
        if weighted:
            legend.append(("blue: vertex weight", "#1d4ed8", "", "none"))
        code = draw(graph, args.plot, colors, f"maximum independent set, {what} {value:g}",
                    notes=notes, legend=legend)
        if code is not None:
            return code
    return 0
