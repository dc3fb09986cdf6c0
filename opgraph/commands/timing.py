"""The one timing loop of the benchmarks (`python -m opgraph bench` and the scripts
in benchmarks/), and the description of the machine a run was on.

Each implementation is warmed up once (that call pays any JIT compilation or cache
load), then the implementations are called in interleaved rounds, so that a burst
of load from other processes hits them alike. Best-of is the timeit convention: on
a shared machine it is the least noisy statistic; the median is kept too.
"""
import os
import platform
import statistics
import sys
import time

import numpy as np


def time_round_robin(fns, min_time=0.3, max_reps=50, max_total=20.0, number=1):
    """Time several implementations of one case in interleaved rounds (each
    round calls every one `number` times), so that a burst of load from other
    processes hits them all alike; each is warmed up once first. `fns`:
    {name: (fn, sync)}, `sync` waits for asynchronous work (a GPU). Times are
    per call. Returns {name: timings or {"status": "error", ...}}."""
    results, times, first = {}, {}, {}
    for name, (fn, sync) in fns.items():
        try:
            t0 = time.perf_counter()
            fn()
            sync()
            first[name] = time.perf_counter() - t0
            times[name] = []
        except Exception as e:
            results[name] = {"status": "error", "why": f"{type(e).__name__}: {e}"}
    active = list(times)
    while active:
        for name in list(active):
            fn, sync = fns[name]
            try:
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                sync()
            except Exception as e:
                results[name] = {"status": "error", "why": f"{type(e).__name__}: {e}"}
                active.remove(name)
                del times[name]
                continue
            ts = times[name]
            ts.append((time.perf_counter() - t0) / number)
            min_reps = 5 if first[name] < 0.2 else 3 if first[name] < 1.0 else 1
            spent = sum(ts) * number
            if len(ts) >= max_reps or (len(ts) >= min_reps and
                                       (spent >= min_time or spent + ts[-1] > max_total)):
                active.remove(name)
    for name, ts in times.items():
        results[name] = {"status": "ok", "best_s": min(ts), "median_s": statistics.median(ts),
                         "reps": len(ts), "first_call_s": first[name]}
    return results


def machine_info():
    """CPU, thread counts, library versions, the BLAS that NumPy uses and the
    OPENBLAS_* environment (which changes which BLAS kernel runs)."""
    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "numpy": np.__version__,
            "load_average_1_5_15min": load_average(),
            "env": {k: v for k, v in os.environ.items()
                    if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "NUMBA_NUM_THREADS"))}}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
        info["simd"] = next((s for s in ("avx512f", "avx2", "avx", "sse4_2") if s in flags), None)
    except OSError:
        info["cpu"] = platform.processor()
    try:
        import numba
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
        from opgraph.backends import blas_threads
        info["opgraph_blas_threads"] = blas_threads()
        info["numba_threading_layer"] = _threading_layer()
    except ImportError:
        info["numba"] = None
    # versions from the package metadata: importing PyTorch just to read its
    # version would cost seconds and leave its objects in the process
    from importlib import metadata
    for dist, key in (("torch", "torch"), ("tropical-gemm", "tropical_gemm")):
        try:
            info[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[key] = None
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture",
                                                "num_threads", "threading_layer", "filepath")}
                        for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _threading_layer():
    import numba
    numba.get_num_threads()  # starts the pool, which chooses the layer
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def format_machine(info):
    blas = info.get("blas")
    if isinstance(blas, list):
        blas = "; ".join(f"{b['internal_api']} {b['version']} kernel={b['architecture']} "
                         f"threads={b['num_threads']}" for b in blas) or "none found"
    lines = [f"cpu: {info.get('cpu')} ({info.get('cpu_count')} logical cores, best SIMD "
             f"{info.get('simd')})",
             f"numpy {info.get('numpy')}, numba {info.get('numba')} "
             f"({info.get('numba_threads')} threads, layer {info.get('numba_threading_layer')}), "
             f"torch {info.get('torch') or 'absent'}"
             + (f" ({info.get('torch_threads')} threads)" if info.get("torch") else "")
             + f", tropical-gemm {info.get('tropical_gemm') or 'absent'}",
             f"BLAS: {blas}; inside opgraph's products: "
             f"{info.get('opgraph_blas_threads')} thread(s)",
             f"load average (1, 5, 15 min) at the end of the run: "
             f"{info.get('load_average_1_5_15min')}",
             f"env: {info.get('env') or '{}'}"]
    return "\n".join(lines)
