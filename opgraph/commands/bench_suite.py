"""Backend benchmarks: the NumPy backend vs the Numba backend(s) vs the peers that
are installed (`tropical-gemm`, PyTorch CPU, raw `numpy.add.at`), side by side
in one run.

    from opgraph.commands.bench_suite import run_benchmarks, format_table
    result = run_benchmarks(["numpy", "numba"], quick=True)
    print(format_table(result))

`python -m opgraph bench` is the command-line front end (see
opgraph/commands/bench.py and docs/benchmarks.md); the timing loop and the
machine description are in opgraph/commands/timing.py, shared with the scripts
in benchmarks/. A peer that is not installed
is reported as absent; an implementation that fails is reported with its
error; neither stops the run.

Each time is the best of several calls after one warm-up call (the warm-up
pays any JIT compilation or cache load; it is reported as `first_call_s`).
The implementations of a case are timed in interleaved rounds, so that load
from other processes hits them alike (timing.time_round_robin).
"""
import os
import sys

import numpy as np

from .timing import load_average, machine_info, time_round_robin

PEERS = ("tropical-gemm", "torch", "numpy.add.at")


# ------------------------------------------------------------------- helpers
def _sync(backend_name):
    if backend_name == "cuda":
        from numba import cuda
        cuda.synchronize()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _backend(name):
    from opgraph import backends
    return backends.get(name)


_THREADS = {"n": None}  # run_benchmarks(threads=n): every implementation on n threads


def _torch():
    import torch  # ImportError -> reported as absent
    if _THREADS["n"] is not None:
        torch.set_num_threads(_THREADS["n"])
    return torch


def _tropical_gemm():
    import tropical_gemm
    return tropical_gemm


# ------------------------------------------------------------------- cases
# A case is (group, name, {implementation: setup}); setup() returns the
# zero-argument function to time (and raises ImportError when a peer is absent).

def _on_backends(data, kernel):
    """{backend: setup} timing `kernel(backend, *arrays)` on data() moved to each backend."""
    def on_backend(name):
        def setup():
            be = _backend(name)
            arrays = [be.asarray(x) for x in data()]
            return lambda: kernel(be, *arrays)
        return setup
    return {name: on_backend(name) for name in ("numpy", "numba", "cuda")}


def _tropical_cases(sizes, semirings=("max_plus",)):
    peer_fn = {"max_plus": "maxplus_matmul_with_argmax", "min_plus": "minplus_matmul_with_argmax",
               "max_mul": "maxmul_matmul_with_argmax"}
    cases = []
    for semiring in semirings:
        for n in sizes:
            def data(n=n, semiring=semiring):
                rng = _rng(n)
                a = rng.standard_normal((n, n)).astype(np.float32)
                b = rng.standard_normal((n, n)).astype(np.float32)
                if semiring == "max_mul":
                    a, b = np.abs(a), np.abs(b)
                return a, b

            def peer(data=data, fn=peer_fn[semiring]):
                f = getattr(_tropical_gemm(), fn)
                a, b = data()
                return lambda: f(a, b)

            impls = _on_backends(data, lambda be, a, b, s=semiring: be.tropical_matmul(a, b, s))
            impls["tropical-gemm"] = peer
            cases.append(("tropical", f"tropical {semiring} {n}x{n} f32 + argmax", impls,
                          n ** 3))
    return cases


def _add_at_peer(data, shape, where):
    """The numpy.add.at peer of a scatter case: zeros(shape) += src at where(idx)."""
    def setup():
        idx, src = data()
        at = where(idx)

        def run():
            out = np.zeros(shape, np.float32)
            np.add.at(out, at, src)
            return out
        return run
    return setup


def _scatter_rows_case(n_idx, rows, dim):
    def data():
        rng = _rng(1)
        return (rng.integers(0, rows, n_idx).astype(np.int64),
                rng.standard_normal((n_idx, dim)).astype(np.float32))

    def torch_peer():
        torch = _torch()
        idx, src = (torch.from_numpy(x) for x in data())
        return lambda: torch.zeros((rows, dim)).index_add_(0, idx, src)

    impls = _on_backends(data, lambda be, idx, src: be.scatter_rows_add(rows, idx, src))
    impls.update({"numpy.add.at": _add_at_peer(data, (rows, dim), lambda idx: idx),
                  "torch": torch_peer})
    label = f"scatter_rows_add {n_idx:.0e} idx -> {rows:.0e}x{dim} f32 (embedding bwd)"
    return ("scatter", label.replace("e+0", "e"), impls, None)


def _scatter_add_case(n, m, k):
    # Gather backward: out (n, m) += src (n, k) at index (n, k) along dim 1
    def data():
        rng = _rng(2)
        return (rng.integers(0, m, (n, k)).astype(np.int64),
                rng.standard_normal((n, k)).astype(np.float32))

    def torch_peer():
        torch = _torch()
        idx, src = (torch.from_numpy(x) for x in data())
        return lambda: torch.zeros((n, m)).scatter_add_(1, idx, src)

    impls = _on_backends(data, lambda be, idx, src: be.scatter_add((n, m), 1, idx, src))
    impls.update({"numpy.add.at": _add_at_peer(data, (n, m),
                                               lambda idx: (np.arange(n)[:, None], idx)),
                  "torch": torch_peer})
    return ("scatter", f"scatter_add dim 1, {n}x{k} -> {n}x{m} f32 (gather bwd)", impls, None)


def _model_case(label, on_backend, torch_peer):
    """A "model" row: on_backend(name) for each opgraph backend, and the PyTorch peer."""
    impls = {name: on_backend(name) for name in ("numpy", "numba", "cuda")}
    impls["torch"] = torch_peer
    return ("model", label, impls, None)


def _conv_case(batch):
    def data():
        rng = _rng(3)
        return dict(x=rng.standard_normal((batch, 1, 16, 16)).astype(np.float32),
                    w1=(rng.standard_normal((16, 1, 3, 3)) / 3).astype(np.float32),
                    b1=np.zeros(16, np.float32),
                    w2=(rng.standard_normal((32, 16, 3, 3)) / 12).astype(np.float32),
                    b2=np.zeros(32, np.float32))

    def on_backend(name):
        def setup():
            import opgraph as og
            d = data()
            x = og.tensor(d["x"], backend=name)
            p = {k: og.tensor(v, requires_grad=True, backend=name) for k, v in d.items() if k != "x"}

            def run():
                h = og.relu(og.conv2d(x, p["w1"], p["b1"], padding=1))
                loss = og.sum(og.conv2d(h, p["w2"], p["b2"], padding=1))
                loss.backward()
                for t in p.values():
                    t.grad = None
            return run
        return setup

    def torch_peer():
        torch = _torch()
        F = torch.nn.functional
        d = {k: torch.from_numpy(v) for k, v in data().items()}
        p = {k: v.requires_grad_() for k, v in d.items() if k != "x"}

        def run():
            h = torch.relu(F.conv2d(d["x"], p["w1"], p["b1"], padding=1))
            F.conv2d(h, p["w2"], p["b2"], padding=1).sum().backward()
            for t in p.values():
                t.grad = None
        return run

    return _model_case(f"conv2d x2 fwd+bwd, batch {batch}, 1->16->32 ch, 16x16", on_backend,
                       torch_peer)


def _pool_case(batch):
    def data():
        return _rng(4).standard_normal((batch, 32, 16, 16)).astype(np.float32)

    def on_backend(name):
        def setup():
            import opgraph as og
            x = og.tensor(data(), requires_grad=True, backend=name)

            def run():
                og.sum(og.max_pool2d(x, 2)).backward()
                x.grad = None
            return run
        return setup

    def torch_peer():
        torch = _torch()
        x = torch.from_numpy(data()).requires_grad_()

        def run():
            torch.nn.functional.max_pool2d(x, 2).sum().backward()
            x.grad = None
        return run

    return _model_case(f"max_pool2d 2x2 fwd+bwd, {batch}x32x16x16", on_backend, torch_peer)


def _cross_entropy_case(n, classes):
    def data():
        rng = _rng(5)
        return (rng.standard_normal((n, classes)).astype(np.float32),
                rng.integers(0, classes, n).astype(np.int64))

    def on_backend(name):
        def setup():
            import opgraph as og
            logits, targets = data()
            z = og.tensor(logits, requires_grad=True, backend=name)
            y = og.tensor(targets, backend=name)

            def run():
                og.cross_entropy(z, y).backward()
                z.grad = None
            return run
        return setup

    def torch_peer():
        torch = _torch()
        logits, targets = data()
        z = torch.from_numpy(logits).requires_grad_()
        y = torch.from_numpy(targets)

        def run():
            torch.nn.functional.cross_entropy(z, y).backward()
            z.grad = None
        return run

    return _model_case(f"softmax cross-entropy fwd+bwd, {n}x{classes}", on_backend, torch_peer)


def _cnn_step_case(batch):
    def data():
        rng = _rng(6)
        return (rng.standard_normal((batch, 1, 16, 16)).astype(np.float32),
                rng.integers(0, 10, batch).astype(np.int64))

    def on_backend(name):
        def setup():
            import opgraph as og
            nn = og.nn
            nn.manual_seed(0)
            model = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1, backend=name), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1, backend=name), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 4 * 4, 10, backend=name))
            opt = og.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            xs, ys = data()
            x, y = og.tensor(xs, backend=name), og.tensor(ys, backend=name)

            def run():
                opt.zero_grad()
                og.cross_entropy(model(x), y).backward()
                opt.step()
            return run
        return setup

    def torch_peer():
        torch = _torch()
        nn = torch.nn
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = (torch.from_numpy(v) for v in data())

        def run():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    return _model_case(f"CNN training step (SGD), batch {batch}, 16x16 input", on_backend,
                       torch_peer)


def cases(quick=False):
    """The benchmark table's rows: (group, name, {impl: setup}, ops or None)."""
    if quick:
        return (_tropical_cases((128, 256)) +
                [_scatter_rows_case(100_000, 10_000, 64), _scatter_add_case(512, 1024, 128),
                 _conv_case(16), _pool_case(16), _cross_entropy_case(512, 1000),
                 _cnn_step_case(16)])
    return (_tropical_cases((256, 512, 1024)) + _tropical_cases((512,), ("min_plus", "max_mul")) +
            [_scatter_rows_case(1_000_000, 10_000, 64), _scatter_add_case(4096, 1024, 256),
             _conv_case(64), _pool_case(64), _cross_entropy_case(2048, 1000),
             _cnn_step_case(64)])


# ------------------------------------------------------------------- running
def run_benchmarks(backends=("numpy", "numba"), quick=False, peers=True, progress=None,
                   min_time=None, only=None, threads=None):
    """Time every case on `backends` (names) and, when `peers`, on the installed
    peers. Returns {"machine": ..., "rows": [...]}; each row holds, per
    implementation, either timings or {"status": "absent" | "error", ...}.
    `threads`: run opgraph (opgraph.set_num_threads: Numba and the BLAS of its
    products) and PyTorch on that many threads; None leaves each at its default."""
    backends = list(backends)
    _THREADS["n"] = threads
    if threads is not None:
        import opgraph
        opgraph.set_num_threads(threads)
    load_at_start = load_average()
    # One process holds up to three thread pools (OpenBLAS, Numba's OpenMP,
    # PyTorch's OpenMP). With idle workers spinning (the OpenMP default) they
    # steal each other's cores; on 2 cores every implementation, PyTorch
    # included, ran several times slower. So all OpenMP runtimes in this process
    # sleep when idle, unless the caller chose otherwise (set before PyTorch or
    # Numba load their runtimes; the Numba backend sets the same default).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    min_time = (0.1 if quick else 0.5) if min_time is None else min_time
    rows = []
    for group, name, impls, ops in cases(quick):
        if only and not any(word in name for word in only):
            continue
        row = {"group": group, "case": name, "results": {}}
        if ops:
            row["ops"] = ops
        fns = {}
        for impl, setup in impls.items():
            if impl in ("numpy", "numba", "cuda"):
                if impl not in backends:
                    continue
            elif not peers:
                continue
            try:
                fns[impl] = (setup(), (lambda: _sync("cuda")) if impl == "cuda" else (lambda: None))
            except ImportError as e:
                row["results"][impl] = {"status": "absent", "why": str(e)}
            except Exception as e:  # a backend that cannot start, an op not written yet
                row["results"][impl] = {"status": "error", "why": f"{type(e).__name__}: {e}"}
        row["results"].update(time_round_robin(fns, min_time=min_time))
        row["results"] = {k: row["results"][k] for k in impls if k in row["results"]}
        if progress:
            progress(f"{name}: " + ", ".join(f"{impl} {_cell(r)}"
                                             for impl, r in row["results"].items()))
        if group == "tropical" and "numba" in backends:
            row["agrees_with_tropical_gemm"] = _tropical_agreement(name, impls)
        _ratios(row, backends)
        rows.append(row)
    machine = machine_info()
    machine["load_average_at_start"] = load_at_start
    return {"machine": machine, "quick": quick, "backends": backends, "rows": rows}


def _tropical_agreement(name, impls):
    """The Numba backend's values and argmax equal tropical-gemm's (None if it is absent)."""
    try:
        tg = _tropical_gemm()
    except ImportError:
        return None
    n = int(name.split()[2].split("x")[0])
    semiring = name.split()[1]
    rng = _rng(n)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    if semiring == "max_mul":
        a, b = np.abs(a), np.abs(b)
    fn = {"max_plus": tg.maxplus_matmul_with_argmax, "min_plus": tg.minplus_matmul_with_argmax,
          "max_mul": tg.maxmul_matmul_with_argmax}[semiring]
    c_ref, arg_ref = fn(a, b)
    c, arg = _backend("numba").tropical_matmul(a, b, semiring)
    return bool(np.array_equal(c.ravel(), np.asarray(c_ref).ravel()) and
                np.array_equal(arg.ravel(), np.asarray(arg_ref).ravel()))


def _best(result):
    return result.get("best_s") if result and result.get("status") == "ok" else None


def _ratios(row, backends):
    """speedup_vs_numpy[b] = t(numpy) / t(b); vs_best_peer[b] = t(b) / t(fastest peer)."""
    res = row["results"]
    base = _best(res.get("numpy"))
    peer_times = {p: _best(res.get(p)) for p in PEERS if _best(res.get(p))}
    best_peer = min(peer_times, key=peer_times.get) if peer_times else None
    row["best_peer"] = best_peer
    row["speedup_vs_numpy"], row["time_vs_best_peer"] = {}, {}
    for b in backends:
        t = _best(res.get(b))
        if t is None:
            continue
        if base and b != "numpy":
            row["speedup_vs_numpy"][b] = base / t
        if best_peer:
            row["time_vs_best_peer"][b] = t / peer_times[best_peer]


# ------------------------------------------------------------------- output
def _fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _cell(result):
    if result is None:
        return "-"
    if result.get("status") == "ok":
        return _fmt_time(result["best_s"])
    return result.get("status", "?")


def format_table(result, markdown=False):
    """The result of `run_benchmarks` as a text (or Markdown) table."""
    rows = result["rows"]
    backends = result["backends"]
    peers = [p for p in PEERS if any(p in r["results"] for r in rows)]
    others = [b for b in backends if b != "numpy"]
    head = (["case"] + backends + peers + [f"{b} speedup vs numpy" for b in others] +
            [f"{b} / best peer" for b in backends])
    body = []
    for r in rows:
        cells = [r["case"]]
        cells += [_cell(r["results"].get(b)) for b in backends]
        cells += [_cell(r["results"].get(p)) for p in peers]
        cells += [f"{r['speedup_vs_numpy'][b]:.1f}x" if b in r["speedup_vs_numpy"] else "-"
                  for b in others]
        cells += [f"{r['time_vs_best_peer'][b]:.2f} ({r['best_peer']})"
                  if b in r["time_vs_best_peer"] else "-" for b in backends]
        body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c) + " |" for c in body]
        return "\n".join(lines)
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    fmt = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in body])


# ------------------------------------------------------ first-call compile time
_COMPILE_SCRIPT = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from opgraph import backends
nb = backends.get("numba")
out = {"import_s": time.perf_counter() - t0}
calls = {
    "tropical max_plus": lambda x: nb.tropical_matmul(x, x, "max_plus"),
    "tropical min_plus": lambda x: nb.tropical_matmul(x, x, "min_plus"),
    "tropical max_mul": lambda x: nb.tropical_matmul(x, x, "max_mul"),
    "scatter_add": lambda x: nb.scatter_add((4, 4), 1, np.zeros((4, 4), np.int64), x),
    "scatter_rows_add": lambda x: nb.scatter_rows_add(4, np.arange(4), x),
    "im2col": lambda x: nb.im2col(x.reshape(1, 1, 4, 4), 3, 3, 1, 1),
    "col2im": lambda x: nb.col2im(np.ones((1, 9, 16), x.dtype), (1, 1, 4, 4), 3, 3, 1, 1),
    "conv_patches_adjoint": lambda x: nb.conv_patches_adjoint(np.ones((9, 16), x.dtype),
                                                              (1, 1, 4, 4), 3, 3, 1, 1),
    "max_pool2d": lambda x: nb.max_pool2d(x.reshape(1, 1, 4, 4), 2, 2),  # the 2x2 kernel
    "max_pool2d 3x3": lambda x: nb.max_pool2d(x.reshape(1, 1, 4, 4), 3, 1),  # the general one
    "softmax": lambda x: nb.softmax(x, -1),
    "log_softmax": lambda x: nb.log_softmax(x, -1),
    "sigmoid": lambda x: nb.unary("sigmoid", x),
    "silu": lambda x: nb.unary("silu", x),
    "cross_entropy": lambda x: nb.cross_entropy(x, np.zeros(4, np.int64)),
    "cross_entropy_grad": lambda x: nb.cross_entropy_grad(x, np.zeros(4, np.int64), x[:, 0].copy(),
                                                          x[:, 1].copy(), 0.5),
    "sigmoid grad": lambda x: nb.activation_grad("sigmoid", x, x),
    "tanh grad": lambda x: nb.activation_grad("tanh", x, x),
    "silu grad": lambda x: nb.activation_grad("silu", x, x),
    "erf": lambda x: nb.unary("erf", x),
    "gelu": lambda x: nb.gelu(x, "none"),
    "gelu_tanh": lambda x: nb.gelu(x, "tanh"),
    "gelu grad": lambda x: nb.activation_grad("gelu", x, x),
    "gelu_tanh grad": lambda x: nb.activation_grad("gelu_tanh", x, x),
    "normalize": lambda x: nb.normalize(x.reshape(1, 4, 4), 1e-5),
    "normalize_grad": lambda x: nb.normalize_grad(x.reshape(1, 4, 4), x[0].copy(),
                                                  x.reshape(1, 4, 4)),
    "gru_cell": lambda x: nb.gru_cell(x[:, :3].copy(), x[:, 1:].copy(), x[:, :1].copy()),
    "gru_cell_grad": lambda x: nb.gru_cell_grad(x[:, :3].copy(), x[:, 1:].copy(),
                                                x[:, :1].copy(), x[:, :1].copy()),
    "lstm_cell": lambda x: nb.lstm_cell(x, x[:, :1].copy()),
    "lstm_cell_grad": lambda x: nb.lstm_cell_grad(x, x[:, :1].copy(), x[:, :1].copy(),
                                                  x[:, :1].copy(), x[:, :1].copy()),
}
for dtype in ("float32", "float64"):
    x = np.ones((4, 4), dtype)
    for name, f in calls.items():
        t0 = time.perf_counter()
        f(x)
        out[f"{name} {dtype}"] = time.perf_counter() - t0
json.dump(out, sys.stdout)
"""


def compile_times():
    """First-call times of every Numba-CPU kernel (float32 and float64) in fresh
    processes: once with an empty on-disk cache (JIT compilation) and once more
    with the cache that run left behind (cache load)."""
    import json
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        runs = []
        for _ in range(2):
            done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], env=env, cwd=root,
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout))
    cold, warm = runs
    return {"cold_s": cold, "cached_s": warm,
            "cold_total_s": sum(v for k, v in cold.items() if k != "import_s"),
            "cached_total_s": sum(v for k, v in warm.items() if k != "import_s")}


def format_compile_times(ct):
    lines = [f"{'kernel':28s} {'compile (cold)':>15s} {'cache load':>11s}"]
    for key, v in ct["cold_s"].items():
        if key != "import_s":
            lines.append(f"{key:28s} {v:14.2f}s {ct['cached_s'][key]:10.3f}s")
    lines.append(f"{'total':28s} {ct['cold_total_s']:14.2f}s {ct['cached_total_s']:10.3f}s")
    return "\n".join(lines)
