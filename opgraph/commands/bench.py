"""`python -m opgraph bench`: time the backends side by side with the installed
peers (tropical-gemm, PyTorch CPU, numpy.add.at), print a table with ratios and
optionally write JSON. The cases: bench_suite.py; the timing loop: timing.py."""
import json


def add_arguments(parser):
    parser.add_argument("--backend", action="append", choices=["numpy", "numba", "cuda"],
                        metavar="{numpy,numba,cuda}",
                        help="a backend to time; repeat to compare several "
                             "(default: numpy and numba)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer repeats (about a minute)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the full results (all timings, machine, BLAS) as JSON")
    parser.add_argument("--no-peers", action="store_true",
                        help="time only the opgraph backends")
    parser.add_argument("--peers-only", action="store_true",
                        help="time only the installed peers, no opgraph backend (with "
                             "--no-peers in another process: each side alone)")
    parser.add_argument("--only", action="append", metavar="WORD",
                        help="run only the cases whose name contains WORD (repeatable); "
                             "'mis' (or mis100, mis150, mis200, mis250) runs the maximum-"
                             "independent-set table instead")
    parser.add_argument("--compile-times", action="store_true",
                        help="also measure the first-call JIT compile time of every Numba-CPU "
                             "kernel (fresh processes, empty cache) and the cache-load time")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="run opgraph (Numba and the BLAS of its products) and PyTorch on "
                             "N threads each (default: each its own default)")


def check_arguments(args, backends, bench):
    """Every requested backend runs here and --only matches a case, before any timing."""
    from opgraph import backends as registry
    from ._cli import UsageError
    for name in backends:
        try:
            registry.get(name)
        except (RuntimeError, ImportError) as e:
            raise UsageError(str(e)) from None
    words = [w for w in args.only or [] if not w.startswith("mis")]  # mis: its own table
    if words and len(words) == len(args.only):
        names = [case[1] for case in bench.cases(args.quick)]
        if not any(word in name for name in names for word in words):
            raise UsageError(f"--only {' '.join(args.only)!r}: no benchmark case matches; the "
                             f"cases are: {'; '.join(names)}")


def run(args):
    from . import bench_suite as bench
    from ._cli import number
    from .timing import format_machine

    if args.threads is not None:
        number(args.threads, "--threads", minimum=1, integer=True)
    if args.peers_only and (args.no_peers or args.backend):
        from ._cli import UsageError
        raise UsageError("--peers-only times no backend: it cannot be combined with "
                         "--no-peers or --backend")
    backends = [] if args.peers_only else args.backend or ["numpy", "numba"]
    check_arguments(args, backends, bench)
    mis_words = [w for w in args.only or [] if w.startswith("mis")]
    if mis_words:
        return _run_mis(args, backends, mis_words)
    result = bench.run_benchmarks(backends, quick=args.quick, peers=not args.no_peers,
                                  only=args.only, threads=args.threads,
                                  progress=lambda s: print("  " + s, flush=True))
    print()
    print(format_machine(result["machine"]))
    print()
    print(bench.format_table(result, markdown=args.markdown))
    print()
    print("times: best of several calls after a warm-up call; 'speedup vs numpy' = "
          "t(numpy backend) / t(backend); '/ best peer' = t(backend) / t(fastest installed peer), "
          "below 1 is faster than the peer")
    for row in result["rows"]:
        agree = row.get("agrees_with_tropical_gemm")
        if agree is False:
            print(f"WARNING: {row['case']}: numba and tropical-gemm disagree")
        for impl, res in row["results"].items():
            if res.get("status") not in ("ok", None):
                print(f"  {row['case']}: {impl} {res['status']} ({res.get('why', '')})")
    if args.compile_times:
        print()
        print("First-call compile time of the Numba-CPU kernels:")
        result["compile_times"] = bench.compile_times()
        print(bench.format_compile_times(result["compile_times"]))
    if args.json:
        _write_json(args.json, result)
    return 0


def _write_json(path, result):
    import os
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"wrote {path}")


def _run_mis(args, backends, words):
    """--only mis (all sizes) or --only mis150 ...: the maximum-independent-set table."""
    from . import bench_mis
    from .timing import format_machine
    sizes = sorted({int(w[3:]) for w in words if w[3:].isdigit()}) or list(bench_mis.SIZES)
    if args.quick:
        sizes = [n for n in sizes if n <= 150] or sizes[:1]
    result = bench_mis.run(backends, sizes, progress=lambda s: print("  " + s, flush=True))
    print()
    print(format_machine(result["machine"]))
    rss = result["machine"].get("max_rss_bytes")
    if rss:
        print(f"peak resident memory of the run: {rss / 1e9:.2f} GB")
    print()
    print(bench_mis.format_table(result, markdown=args.markdown))
    print()
    print("random_regular_graph(3, n, seed=1); ordering: optimize='auto' (greedy, then tree "
          "simulated annealing, at most 10 s); solve: max_independent_set along that order "
          "(contraction and configuration), best of the repeats after a warm-up call; "
          "records: GenericTensorNetworks.jl with TreeSA orders")
    if args.json:
        _write_json(args.json, result)
    return 0
