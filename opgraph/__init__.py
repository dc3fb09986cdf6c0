"""opgraph: a Go-style operation-graph autodiff framework.

Every operation is a small class with forward/backward/inputs; a tape records
ops as they run and replays them in reverse for gradients; backends do the
arithmetic."""
import importlib as _importlib

from ._layout import bind_subpackages as _bind_subpackages

_bind_subpackages(__name__, __path__)  # opgraph.backends, opgraph.ops (see _layout.py)

# the core, loaded with the package
from .tensor import (Tensor, tensor, from_numpy, zeros, ones, full, randn, rand,
                     set_default_backend, get_default_backend, manual_seed, arange, linspace,
                     eye, zeros_like, ones_like, full_like, randn_like, rand_like)
from .operation import Operation, MultiOutputOperation
from .tape import Tape, grad, no_grad, enable_grad, inference_mode, current_tape
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .backends import get_num_threads, set_num_threads

import numpy as _np

# dtype names, as torch's: og.zeros(3, dtype=og.float64), x.dtype == og.int64 (NumPy dtypes)
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int64 = long = _np.dtype(_np.int64)
int32 = int = _np.dtype(_np.int32)
bool = _np.dtype(_np.bool_)

__version__ = "0.1.0"

# The public API above the core loads on first use (PEP 562), so that importing the core
# or the op catalog (`import opgraph.ops`) never loads it: `opgraph.add`, `opgraph.nn`, ...
# import their module when first looked up. The functions are those in
# opgraph.functions.__all__; other names are listed here.
_SUBMODULES = ("functions", "nn", "optim", "data", "graph", "tropical", "serialization", "models",
               "commands")
_NAMES = {"save": "serialization", "load": "serialization"}
_CORE = ["Tensor", "tensor", "from_numpy", "zeros", "ones", "full", "randn", "rand",
         "set_default_backend", "get_default_backend", "manual_seed", "arange", "linspace",
         "eye", "zeros_like", "ones_like", "full_like", "randn_like", "rand_like",
         "Operation", "MultiOutputOperation", "Tape", "grad", "no_grad", "enable_grad",
         "inference_mode", "current_tape", "gradcheck", "gradgradcheck", "GradcheckError",
         "get_num_threads", "set_num_threads", "backends", "ops"]  # (the dtype names stay out: `import *` must not shadow int, bool)


def _functions():
    return _importlib.import_module(f"{__name__}.functions")


def __getattr__(name):
    if name == "__all__":
        value = _CORE + list(_SUBMODULES) + list(_NAMES) + list(_functions().__all__)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        value = getattr(_importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    elif not name.startswith("_") and name in _functions().__all__:
        value = getattr(_functions(), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__getattr__("__all__")))
