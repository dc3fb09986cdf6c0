"""How many threads opgraph's CPU kernels use: Numba's parallel kernels, and the BLAS
behind NumPy's matrix products.

Multi-threaded BLAS pays for large products on an idle machine. For the modest
products of small models, and on a machine whose cores are busy, its threads cost more
than they save: OpenBLAS splits a product evenly and waits for the slowest thread, and
its idle threads spin, taking the core that the Python thread and Numba's threads need.
Measured on a 2-core machine at load 8: a float32 (32, 144) @ (144, 16384) product took
2.7 ms on one OpenBLAS thread and 18 ms on two (best of 60). So inside opgraph a product
runs on `blas_threads()` threads, one unless `set_num_threads` says otherwise; outside
opgraph's calls NumPy's BLAS keeps its own setting. The limit needs threadpoolctl (a
dependency of opgraph: it finds the BLAS that NumPy loaded); where it is missing or finds
no BLAS it can drive, products run as NumPy's BLAS decides (OPENBLAS_NUM_THREADS and
friends).
"""
import threading

import numpy as np

# m·n·k of one product up to which OpenBLAS stays on one thread by itself (4 · 65536)
SINGLE_THREAD_WORK = 1 << 18

_settings = {"blas": 1, "compiled": None}
_lock = threading.Lock()
_libraries = []


def set_num_threads(n):
    """Threads for opgraph's CPU kernels: Numba's parallel kernels (for the calling
    thread, as numba.set_num_threads) and the BLAS of its matrix products."""
    if isinstance(n, bool) or not hasattr(n, "__index__") or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    n = int(n)
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _settings["compiled"] = n
    _settings["blas"] = n


def get_num_threads():
    """Threads of opgraph's parallel (Numba) kernels; see also blas_threads()."""
    if _settings["compiled"] is not None:
        return _settings["compiled"]
    import numba
    return numba.get_num_threads()


def blas_threads():
    """Threads a matrix product of opgraph runs on (1 unless set_num_threads changed it)."""
    return _settings["blas"]


def _blas_libraries():
    if not _libraries:
        try:
            from threadpoolctl import ThreadpoolController
            found = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # not installed, or no BLAS it can drive: leave BLAS alone
            found = []
        _libraries.append(found)
    return _libraries[0]


def matmul(a, b):
    """numpy.matmul(a, b) with BLAS on blas_threads() threads."""
    if a.ndim < 2 or b.ndim < 2 or a.shape[-2] * a.shape[-1] * b.shape[-1] <= SINGLE_THREAD_WORK:
        return np.matmul(a, b)  # one BLAS thread anyway
    libraries = _blas_libraries()
    if not libraries:
        return np.matmul(a, b)
    wanted = _settings["blas"]
    with _lock:  # the BLAS thread count is process-wide: one product changes it at a time
        changed = [(lib, before) for lib in libraries
                   if (before := lib.get_num_threads()) != wanted]
        for lib, _ in changed:
            lib.set_num_threads(wanted)
        try:
            return np.matmul(a, b)
        finally:
            for lib, before in changed:
                lib.set_num_threads(before)
