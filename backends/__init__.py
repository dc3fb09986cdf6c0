"""Pluggable array backends: `get("numpy" | "numba" | "cuda")`."""
from .base import Backend, UNARY_OPS, BINARY_OPS, SEMIRINGS, ACTIVATIONS
from .numpy_backend import NumpyBackend

_instances = {}
# name -> (module, class); compiled backends import lazily (Numba import is slow)
_registry = {
    "numpy": ("opgraph.backends.numpy_backend", "NumpyBackend"),
    "numba": ("opgraph.backends.numba_cpu", "NumbaCPUBackend"),
    "cuda": ("opgraph.backends.numba_cuda", "NumbaCUDABackend"),
}


def get(name="numpy"):
    """The shared instance of a backend, by name (or the backend itself)."""
    if isinstance(name, Backend):
        return name
    if name not in _instances:
        if name not in _registry:
            raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_registry)}")
        import importlib
        module, cls = _registry[name]
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def available():
    """Names of the backends that can be created on this machine."""
    names = []
    for name in _registry:
        try:
            get(name)
            names.append(name)
        except Exception:
            pass
    return names


def __getattr__(attr):
    # backends.NumbaCPUBackend / backends.NumbaCUDABackend without importing Numba eagerly
    for module, cls in _registry.values():
        if cls == attr:
            import importlib
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module 'opgraph.backends' has no attribute {attr!r}")
