"""Shared pieces of the `mis` and `spinglass` commands: graph loading, the
contraction report, and --plot."""
import sys
import time

from ._cli import UsageError, plot_path
from .graph_specs import SPEC_HELP, GraphSpecError, parse_graph


def add_common_arguments(parser, random_option, random_help):
    """The graph and the options both solvers take; `random_option` (--random-...) seeds
    the random problem data that `random_help` describes."""
    parser.add_argument("graph", help=f"graph spec: {SPEC_HELP}")
    parser.add_argument("--optimize", default="auto",
                        choices=["auto", "treesa", "min_fill", "min_degree", "greedy"],
                        help="contraction order: auto (greedy, then tree simulated annealing "
                             "while the search pays for itself, at most 10 s), treesa, a tree "
                             "decomposition by min-fill-in or min-degree, or greedy "
                             "(default: auto)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output on stderr (by default: bars on a terminal, "
                             "one line per stage otherwise, and a note while Numba compiles)")
    parser.add_argument("--backend", default=None, choices=["numpy", "numba", "cuda"],
                        help="backend of the contraction (default: numpy)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="draw the graph with the solution highlighted (needs matplotlib: "
                             "pip install 'opgraph[plot]')")
    parser.add_argument(random_option, type=seed, metavar="SEED", default=None, help=random_help)


def seed(text):
    """argparse type: a non-negative integer seed."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer seed") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be >= 0, got {value}")
    return value


STAGES = {"order": "contraction order", "contract": "contraction"}


class Progress:
    """The solver's progress(stage, done, total, note) hook for the command line.

    On a terminal: tqdm bars on stderr, and a line as soon as Numba starts compiling.
    Otherwise (a log, a pipe) nothing on stderr, so no carriage returns in logs and a
    failure stays a one-line error: the stage times are in the printed report, and the
    compile notes are kept in `compiled` for it."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bars = {}
        self.compiled = []
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())

    def close(self):
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()

    def __call__(self, stage, done, total, note=""):
        if stage == "compile":
            if done == 0:
                note = note or "Numba compiles kernels (first run only)"
                self.compiled.append(note)
                if self.terminal:  # above any bar that is showing
                    from tqdm import tqdm
                    tqdm.write(f"{note} ...", file=self.stream)
            return
        if not self.terminal:
            return
        from tqdm import tqdm
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=STAGES.get(stage, stage),
                                          file=self.stream, leave=False, mininterval=0.2)
        if note:
            bar.set_postfix_str(note, refresh=False)
        bar.total = total
        bar.update(done - bar.n)  # redraws at most every mininterval
        if done >= total:
            self.bars.pop(stage).close()


def progress(args):
    """The progress hook for the solver, or None with --quiet."""
    return None if args.quiet else Progress()


def finish(hook):
    """Close the bars of `hook` (after the solver returned or failed)."""
    if hook is not None:
        hook.close()


def fail(message, code=1):
    print(f"error: {message}", file=sys.stderr)
    return code


def solve(args, solver, *problem):
    """solver(*problem) with --optimize, --backend and the progress bars:
    ((solution, seconds, hook), None), or (None, exit code) after a one-line error."""
    hook = progress(args)
    start = time.perf_counter()
    try:
        solution = solver(*problem, optimize=args.optimize, backend=args.backend, progress=hook)
        seconds = time.perf_counter() - start
    except (ValueError, TypeError, RuntimeError, MemoryError) as e:
        return None, fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    finally:
        finish(hook)
    return (solution, seconds, hook), None


def load_graph(spec):
    """(graph, None) or (None, exit code) after printing a one-line error."""
    try:
        graph = parse_graph(spec)
    except GraphSpecError as e:
        return None, fail(str(e), 2)
    return graph, None


def check_arguments(args):
    """--backend (it runs here) and --plot (matplotlib installed, a writable path, a format
    it writes), before any work: raises UsageError (exit code 2)."""
    if args.backend is not None:
        from opgraph import backends
        try:
            backends.get(args.backend)
        except (RuntimeError, ImportError) as e:
            raise UsageError(str(e)) from None
    if args.plot is not None:
        plot_path(args.plot)


def describe(graph):
    return f"{graph.number_of_nodes()} vertices, {graph.number_of_edges()} edges"


def node_list(nodes):
    return " ".join(str(v) for v in nodes) if nodes else "(none)"


def print_contraction(solution, seconds, hook=None):
    info = solution.info
    print(f"contraction: {info.num_tensors} tensors, order {info.method}, largest intermediate "
          f"{info.largest_intermediate} entries (2^{info.width:g}), "
          f"{info.total_cost:.3g} tropical multiply-adds")
    print(f"time: {seconds:.3f} s (order {info.order_seconds:.3f} s, contraction + gradient "
          f"{info.contraction_seconds:.3f} s)")
    for note in getattr(hook, "compiled", ()):
        print(f"compile: {note}; the time includes it")


def draw(graph, path, colors, title, edge_colors=None, edge_styles=None, edge_widths=None,
         notes=None, legend=()):
    """Save a drawing of `graph` with per-node colors to `path`; an exit code on failure.

    notes: {node: text} written beside the nodes (vertex weights); legend: (label, color,
    marker, linestyle) entries."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    nodes = list(graph.nodes)
    if nodes and all("pos" in graph.nodes[v] for v in nodes):
        pos = {v: graph.nodes[v]["pos"] for v in nodes}
    elif graph.number_of_nodes() == 10 and nx.is_isomorphic(graph, nx.petersen_graph()) \
            and set(nodes) == set(range(10)):
        pos = nx.shell_layout(graph, [list(range(5, 10)), list(range(5))], rotate=0)
        pos = {v: (-y, x) for v, (x, y) in pos.items()}  # the textbook drawing: 0 on top
    else:
        pos = nx.spring_layout(graph, seed=0)
    size = max(4.0, min(12.0, 0.6 * len(nodes) ** 0.5 + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    edges = list(graph.edges())
    nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=edges,
                           edge_color=edge_colors or ["#888888"] * len(edges),
                           style=edge_styles or "solid", width=edge_widths or 1.5)
    nx.draw_networkx_nodes(graph, pos, ax=ax, nodelist=nodes,
                           node_color=[colors[v] for v in nodes], edgecolors="black",
                           node_size=300 if len(nodes) <= 64 else 120)
    if len(nodes) <= 64:
        nx.draw_networkx_labels(graph, pos, ax=ax, font_size=8)
    if notes and len(nodes) <= 256:
        ys = [p[1] for p in pos.values()]
        lift = 0.045 * ((max(ys) - min(ys)) or 1)
        nx.draw_networkx_labels(graph, {v: (x, y + lift) for v, (x, y) in pos.items()},
                                labels=notes, ax=ax, font_size=7, font_color="#1d4ed8",
                                verticalalignment="bottom")
    if legend:
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=color, marker=marker, linestyle=style, markersize=8,
                          markeredgecolor="black" if marker else None, label=label)
                   for label, color, marker, style in legend]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                  frameon=False)
    ax.set_title(title)
    ax.set_axis_off()
    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except (OSError, ValueError) as e:
        plt.close(fig)
        return fail(f"cannot write the plot to {path!r}: {getattr(e, 'strerror', None) or e}")
    plt.close(fig)
    print(f"plot: {path}")
    return None
