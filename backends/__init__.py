"""Pluggable array backends: `get("numpy" | "numba" | "cuda")`."""
from .base import Backend, UNARY_OPS, BINARY_OPS, SEMIRINGS, ACTIVATIONS
from .numpy_backend import NumpyBackend
from .memory import tune_malloc
from .threads import blas_threads, get_num_threads, set_num_threads

tune_malloc()

_instances = {}
# name -> (module, class); compiled backends import lazily (Numba import is slow)
_registry = {
    "numpy": ("opgraph.backends.numpy_backend", "NumpyBackend"),
    "numba": ("opgraph.backends.numba_cpu", "NumbaCPUBackend"),
    "cuda": ("opgraph.backends.numba_cuda", "NumbaCUDABackend"),
}


# name -> (module that must be importable, what to install): checked before the backend's
# own import, so that a missing optional package is named instead of failing deep inside
# (numba itself still ships a deprecated numba.cuda whose simulator cannot run this backend)
_requires = {
    "cuda": ("numba_cuda", "numba-cuda: pip install 'opgraph[cuda]' (in a checkout: "
                           "pip install -e '.[cuda]')"),
}
_runs = {}  # name -> None (ran a kernel) or the reason it cannot run; see available()


def get(name="numpy"):
    """The shared instance of a backend, by name (or the backend itself)."""
    if isinstance(name, Backend):
        return name
    if name not in _instances:
        if name not in _registry:
            raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_registry)}")
        import importlib
        import importlib.util
        needed, install = _requires.get(name, (None, None))
        if needed is not None and importlib.util.find_spec(needed) is None:
            raise RuntimeError(f"backend {name!r} is unavailable: it needs {install}")
        module, cls = _registry[name]
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def unavailable_reason(name):
    """None when backend `name` can run here (it was created and ran a tiny kernel),
    else one line saying why not and what to install."""
    if name not in _runs:
        try:
            import numpy as np
            backend = get(name)
            got = backend.to_numpy(backend.binary("add", backend.asarray(np.arange(3.0)),
                                                  backend.asarray(np.ones(3))))
            if list(np.asarray(got)) != [1.0, 2.0, 3.0]:
                raise RuntimeError(f"its test kernel computed {got!r} for [0, 1, 2] + 1")
            _runs[name] = None
        except Exception as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            _runs[name] = why if why.startswith(f"backend {name!r}") else \
                f"backend {name!r} cannot run: {type(e).__name__}: {why}"
    return _runs[name]


def available():
    """Names of the backends that can run on this machine: each was created and ran a
    tiny kernel (see unavailable_reason for why one is missing)."""
    return [name for name in _registry if unavailable_reason(name) is None]


def __getattr__(attr):
    # backends.NumbaCPUBackend / backends.NumbaCUDABackend without importing Numba eagerly
    for module, cls in _registry.values():
        if cls == attr:
            import importlib
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module 'opgraph.backends' has no attribute {attr!r}")
