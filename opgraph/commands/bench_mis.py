"""The maximum-independent-set benchmark of `python -m opgraph bench --only mis`:
networkx.random_regular_graph(3, n, seed=1) for n = 100, 150, 200, 250, solved by
opgraph.tropical.max_independent_set, beside the published records
(GenericTensorNetworks.jl with TreeSA orders).

For each n: the contraction order (optimize="auto": greedy, then tree simulated
annealing, at most 10 s), its largest intermediate, slices and tropical
multiply-adds; the ordering time; and the contraction time on each backend (the
contraction and the configuration read back, along the one order, by the timing
loop of timing.py: warm-up first, best of the repeats). The peak resident memory
of the process is reported at the end."""
import math
import time

from .timing import load_average, machine_info, time_round_robin

SIZES = (100, 150, 200, 250)

# n -> (largest intermediate, time, where): the records quoted in docs/tropical.md
RECORDS = {
    120: ("2^17", None),
    150: ("2^19", "37.9 ms, one CPU thread"),
    200: ("2^24-2^25", "7.45 s, one CPU thread; 96 ms on a V100"),
    250: ("2^29 (sliced to 2^27)", "80.7 s, one CPU thread"),
}


def run(backends=("numpy", "numba"), sizes=SIZES, progress=None, min_time=0.3, seed=0):
    """{"machine": ..., "rows": [...]}: one row per n."""
    import networkx as nx

    from opgraph import tropical
    rows = []
    load_at_start = load_average()
    for n in sizes:
        g = nx.random_regular_graph(3, n, seed=1)
        start = time.perf_counter()
        first = tropical.max_independent_set(g, backend=backends[0], seed=seed)
        info = first.info
        order = info.order_seconds
        path = list(info.path)
        row = {"n": n, "mis": first.value, "method": info.method,
               "largest_log2": math.log2(info.largest_intermediate),
               "slices": info.slices,
               "slice_largest_log2": (math.log2(info.sliced_info.largest_intermediate)
                                      if info.slices > 1 else None),
               "cost": info.cost_with_slices, "order_s": order,
               "peak_bytes_estimated": info.peak_bytes,
               "first_call_s": time.perf_counter() - start, "results": {}}
        limit = None if info.slices == 1 else info.sliced_info.largest_intermediate

        def solve(backend):
            return lambda: tropical.max_independent_set(
                g, optimize=path, backend=backend, max_intermediate=limit or 2 ** 27)

        fns = {b: (solve(b), lambda: None) for b in backends}
        slow = info.cost_with_slices > 2 ** 31
        row["results"] = time_round_robin(fns, min_time=0 if slow else min_time,
                                          max_reps=1 if slow else 20)
        rows.append(row)
        if progress:
            progress(_line(row))
    machine = machine_info()
    machine["load_average_at_start"] = load_at_start
    machine["max_rss_bytes"] = _max_rss()
    return {"machine": machine, "backends": list(backends), "rows": rows}


def _max_rss():
    try:
        import resource
        import sys
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024
    except (ImportError, OSError):
        return None


def _line(row):
    times = ", ".join(f"{b} {_fmt(r)}" for b, r in row["results"].items())
    return (f"n={row['n']}: MIS {row['mis']}, largest 2^{row['largest_log2']:.4g}"
            + (f" ({row['slices']} slices of 2^{row['slice_largest_log2']:.4g})"
               if row["slices"] > 1 else "")
            + f", {float(row['cost']):.3g} multiply-adds, order {row['order_s']:.2f} s, "
            f"contraction {times}")


def _fmt(result):
    if result.get("status") != "ok":
        return result.get("status", "?")
    s = result["best_s"]
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def format_table(result, markdown=False):
    backends = result["backends"]
    head = (["n", "MIS", "largest intermediate", "multiply-adds", "ordering"]
            + [f"solve ({b})" for b in backends] + ["record: largest", "record: time"])
    lines = []
    for row in result["rows"]:
        record = RECORDS.get(row["n"], ("—", None))
        largest = f"2^{row['largest_log2']:.4g}"
        if row["slices"] > 1:
            largest += f", {row['slices']} slices of 2^{row['slice_largest_log2']:.4g}"
        cells = [str(row["n"]), str(row["mis"]), largest, f"{float(row['cost']):.3g}",
                 f"{row['order_s']:.2f} s"]
        cells += [_fmt(row["results"].get(b, {})) for b in backends]
        cells += [record[0], record[1] or "—"]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(c[k]) for c in lines)) if lines else len(h)
              for k, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*c) for c in lines])
