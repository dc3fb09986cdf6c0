"""`opgraph.save` / `opgraph.load`: state dicts as `.npz` files, never pickle.

    opgraph.save(model, "weights.npz")          # or opgraph.save(model.state_dict(), ...)
    model.load_state_dict(opgraph.load("weights.npz"))

The file is a plain NumPy `.npz` archive with one array per parameter name,
readable by `numpy.load(path, allow_pickle=False)` anywhere.
"""
import os
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]


def _host(name, value):
    a = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"save: {name!r} has dtype {a.dtype}; only numeric arrays can be "
                        "saved (no pickled objects)")
    return a


def save(module_or_state, path):
    """Write a Module's state_dict (or a {name: Tensor/array} dict) to `path` as .npz.

    The file is written exactly at `path` (no `.npz` is appended)."""
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") \
        else module_or_state
    if not isinstance(state, dict):
        raise TypeError(f"save: expected a Module or a dict of tensors, got "
                        f"{type(module_or_state).__name__}")
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        arrays[name] = _host(name, value)
    # the archive numpy.savez writes, without its keyword arguments: any key name works
    with zipfile.ZipFile(os.fspath(path), "w", zipfile.ZIP_STORED) as archive:
        for name, a in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(a), allow_pickle=False)


def load(path, backend=None):
    """The state dict saved at `path`: an ordered {name: Tensor} on `backend`
    (default: the default backend). Pass it to `module.load_state_dict`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"load: {path} is not an opgraph .npz state dict ({e})") from None
    if not hasattr(f, "files"):
        raise ValueError(f"load: {path} holds a single array, not an opgraph state dict "
                         "(.npz archive of named arrays)")
    with f:
        state = OrderedDict()
        for name in f.files:
            try:
                state[name] = np.array(f[name])
            except (ValueError, OSError, zipfile.BadZipFile) as e:
                raise ValueError(f"load: {path}: entry {name!r} is not a plain numeric array "
                                 f"({e})") from None
    return OrderedDict((name, Tensor(a, backend=backend)) for name, a in state.items())
