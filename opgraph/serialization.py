"""`opgraph.save` / `opgraph.load`: state dicts as `.npz` files, never pickle.

    opgraph.save(model, "weights.npz")          # or opgraph.save(model.state_dict(), ...)
    model.load_state_dict(opgraph.load("weights.npz"))

The file is a plain NumPy `.npz` archive with one array per parameter name,
readable by `numpy.load(path, allow_pickle=False)` anywhere.

A checkpoint that nests (torch's idiom, also an optimizer's or a scheduler's
state_dict) saves too, still without pickle:

    opgraph.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                  "epoch": 5}, "checkpoint.npz")
    checkpoint = opgraph.load("checkpoint.npz")   # the same nesting, arrays as Tensors

Its arrays are entries named by their path ("optimizer/state/0/exp_avg"); one more
entry, `__opgraph_structure__`, holds the nesting as UTF-8 JSON bytes (dicts with str
or int keys, lists, tuples, None, bools, numbers and strings).

Saving is atomic: the archive is written to a temporary file in the target's
folder, flushed to disk and renamed over the target, so an error or Ctrl-C
mid-save leaves the previous file as it was. Loading reads the archive itself
(not through `numpy.load`): every entry must be a `.npy` array of bool, integer
or float dtype whose header agrees with the entry's stored size, so a corrupt or
hostile file is a ValueError naming it, before anything large is allocated.
"""
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_MAX_HEADER = 10000  # numpy's own limit for .npy headers
_CHUNK = 1 << 22
_STRUCTURE = "__opgraph_structure__"  # the entry holding a nested checkpoint's layout
_ARRAYS = (Tensor, np.ndarray, np.generic, bool, int, float)  # a flat state dict's values


def _host(name, value):
    a = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"save: {name!r} has dtype {a.dtype}; only numeric arrays can be "
                        "saved (no pickled objects)")
    return a


def _write_archive(file, arrays):
    # the archive numpy.savez writes, without its keyword arguments: any key name works
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        for name, a in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                # asarray, not ascontiguousarray: that one turns a 0-d array into shape (1,)
                np.lib.format.write_array(member, np.asarray(a, order="C"), allow_pickle=False)


def _encode(value, path, arrays):
    """The JSON layout of a nested checkpoint; its arrays go into `arrays` by path."""
    where = "/".join(path)
    if isinstance(value, (Tensor, np.ndarray)):
        name = where
        while name in arrays or name == _STRUCTURE:
            name += "~"
        arrays[name] = _host(where, value)
        return {"$array": name}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"save: key {key!r} in {where or 'the checkpoint'} is not a str "
                                "or an int")
        return {"$dict": [[k, _encode(v, path + [str(k)], arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, path + [str(i)], arrays) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"$tuple": items}
    raise TypeError(f"save: {where!r} is a {type(value).__name__}; a checkpoint holds tensors, "
                    "arrays, numbers, strings, None and dicts, lists and tuples of them (no "
                    "pickled objects)")


def save(module_or_state, path):
    """Write a Module's state_dict (or a {name: Tensor/array} dict) to `path` as .npz.

    A dict that nests (a checkpoint of model, optimizer and epoch; an optimizer's
    state_dict) is saved with its layout, and `load` gives it back as it was.
    The file is written exactly at `path` (no `.npz` is appended), atomically: the
    previous file at `path` stays intact until the new one is complete on disk.
    `path` may also be a writable binary file object (written in place)."""
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") \
        else module_or_state
    if not isinstance(state, dict):
        raise TypeError(f"save: expected a Module or a dict of tensors, got "
                        f"{type(module_or_state).__name__}")
    arrays = {}
    for name in state:
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        if name == _STRUCTURE:
            raise ValueError(f"save: the key {_STRUCTURE!r} is reserved")
    if all(isinstance(v, _ARRAYS) for v in state.values()):  # a state dict: arrays only
        for name, value in state.items():
            arrays[name] = _host(name, value)
    else:
        layout = json.dumps(_encode(state, [], arrays)).encode("utf-8")
        arrays[_STRUCTURE] = np.frombuffer(layout, dtype=np.uint8)
    if hasattr(path, "write"):
        _write_archive(path, arrays)
        return
    target = os.path.realpath(_path("save", path))  # through a symlink to the file it names
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: the folder {folder} does not exist (saving to {path})")
    if os.path.isdir(target):
        raise IsADirectoryError(f"save: {path} is a folder, expected a file path")
    temp, fd = _create_temp(folder, os.path.basename(target))
    try:
        with os.fdopen(fd, "wb") as file:
            _write_archive(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:  # KeyboardInterrupt too: never leave a half-written temp behind
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _path(name, path):
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{name}: path must be a str or os.PathLike, got "
                        f"{type(path).__name__}") from None


def _create_temp(folder, base):
    """A new file beside the target; os.open applies the umask, as a plain open() would."""
    for _ in range(100):
        temp = os.path.join(folder, f".{base}.{os.urandom(6).hex()}.tmp")
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"save: could not create a temporary file in {folder}")


def _fsync_folder(folder):
    # the rename itself reaches the disk only once the folder is synced (POSIX)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path, backend=None):
    """The state dict saved at `path`: an ordered {name: Tensor} on `backend`
    (default: the default backend). Pass it to `module.load_state_dict`.
    A nested checkpoint comes back nested, its arrays as Tensors. `path` may also be a
    readable, seekable binary file object (what `save` wrote into one)."""
    if hasattr(path, "read"):
        source = path
        path = getattr(source, "name", None) or type(source).__name__
        start = source.read(6)
        source.seek(-len(start), os.SEEK_CUR)
    else:
        path = source = _path("load", path)
        if os.path.isdir(path):
            raise IsADirectoryError(f"load: {path} is a folder, expected a .npz file")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load: no such file: {path}")
        with open(path, "rb") as f:
            start = f.read(6)
    if start == b"\x93NUMPY":
        raise ValueError(f"load: {path} holds a single array, not an opgraph state dict "
                         "(.npz archive of named arrays)")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"load: {path} is not an opgraph .npz state dict: not a complete zip "
                         f"archive, the file is truncated or corrupt ({e})") from None
    state = OrderedDict()
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise ValueError(f"load: {path}: entry {info.filename!r} is not a .npy array "
                                 "(an opgraph .npz holds only .npy entries)")
            name = info.filename[:-len(".npy")]
            if name in state:
                raise ValueError(f"load: {path}: entry {name!r} appears twice in the archive")
            state[name] = _read_entry(path, archive, info, name)
    layout = state.pop(_STRUCTURE, None)
    tensors = OrderedDict((name, Tensor(a, backend=backend)) for name, a in state.items())
    if layout is None:
        return tensors
    try:
        if layout.dtype != np.uint8 or layout.ndim != 1:
            raise ValueError(f"a {layout.dtype} array of shape {layout.shape}, not bytes")
        return _decode(json.loads(layout.tobytes().decode("utf-8")), tensors)
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # JSON, UTF-8, layout
        raise ValueError(f"load: {path}: the checkpoint layout ({_STRUCTURE}) is corrupt "
                         f"({type(e).__name__}: {e})") from None


def _decode(node, tensors):
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node  # None, a bool, a number or a string
    (tag, body), = node.items()
    if tag == "$array":
        return tensors[body]
    if tag == "$tuple":
        return tuple(_decode(v, tensors) for v in body)
    if tag == "$dict":
        result = {}
        for key, value in body:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"key {key!r}")
            result[key] = _decode(value, tensors)
        return result
    raise ValueError(f"unknown tag {tag!r}")


def _read_entry(path, archive, info, name):
    def bad(why):
        return ValueError(f"load: {path}: entry {name!r} is not a plain numeric array ({why})")

    try:
        with archive.open(info) as member:
            shape, fortran_order, dtype = _read_header(member, bad)
            if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields:
                raise bad(f"dtype {dtype}; only bool, integer and float arrays load")
            count = 1
            for n in shape:
                count *= n
            nbytes = count * dtype.itemsize
            stored = info.file_size - member.tell()  # bytes after the header
            if nbytes != stored:
                raise bad(f"its header claims shape {shape} of {dtype} = {nbytes} bytes, but "
                          f"the entry holds {stored} bytes: the file is truncated or corrupt")
            # in chunks: memory grows with the bytes really there, whatever the zip claims
            data = bytearray()
            while len(data) < nbytes:
                chunk = member.read(min(nbytes - len(data), _CHUNK))
                if not chunk:
                    break
                data += chunk
            if len(data) != nbytes:
                raise bad(f"only {len(data)} of {nbytes} bytes could be read: truncated")
    except (ValueError, TypeError, SyntaxError) as e:  # a malformed .npy header
        if str(e).startswith("load:"):
            raise
        raise bad(e) from None
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
        # a bad CRC, a cut-off stream, an encrypted or unknown compression method
        raise ValueError(f"load: {path}: entry {name!r} cannot be read, the file is truncated "
                         f"or corrupt ({type(e).__name__}: {e})") from None
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _read_header(member, bad):
    """(shape, fortran_order, dtype) from a .npy header, validated as numpy.load does."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(member, max_header_size=_MAX_HEADER)
    elif version in ((2, 0), (3, 0)):
        header = np.lib.format.read_array_header_2_0(member, max_header_size=_MAX_HEADER)
    else:
        raise bad(f"unknown .npy format version {version}")
    shape, fortran_order, dtype = header
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise bad(f"bad shape {shape!r} in its header")
    return tuple(shape), fortran_order, np.dtype(dtype)
