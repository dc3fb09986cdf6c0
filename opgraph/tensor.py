"""Tensor: a backend array, and where it came from."""
import math

import numpy as np

from opgraph import backends

_default = {"backend": None, "dtype": np.dtype(np.float32)}


def get_default_backend():
    if _default["backend"] is None:
        _default["backend"] = backends.get("numpy")
    return _default["backend"]


def set_default_backend(backend):
    """Backend (or its name) that new tensors are created on."""
    _default["backend"] = backends.get(backend)


_COMPARABLE = (int, float, bool, np.generic, np.ndarray, list, tuple)  # and Tensor, below


def as_dtype(name, dtype):
    """`dtype` as a NumPy dtype a tensor can hold (bool, integer or float), or a TypeError
    naming `name` and the dtype: complex, object, string and datetime data are not tensors."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: {dtype!r} is not a dtype ({e})") from None
    if resolved.kind not in "biuf":
        raise TypeError(f"{name}: dtype {resolved} is not supported; tensors hold bool, integer "
                        "or float data")
    return resolved


def as_shape(name, shape):
    """Sizes given as ints, or as one tuple/list of ints, as a tuple of non-negative ints
    (a TypeError for a float or str size, a ValueError for a negative one, naming `name`)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{name}: sizes must be ints, got {n!r} ({type(n).__name__}) in "
                            f"shape {tuple(shape)}")
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"{name}: negative size in shape {shape}")
    return shape


def _check_requires_grad(dtype, requires_grad):
    if not isinstance(requires_grad, (bool, np.bool_, int)) or requires_grad not in (0, 1):
        raise TypeError(f"tensor: requires_grad must be a bool, got "
                        f"{type(requires_grad).__name__} {requires_grad!r}")
    if requires_grad and np.dtype(dtype).kind != "f":
        raise TypeError(f"tensor: only floating-point tensors can require grad, got dtype "
                        f"{np.dtype(dtype)} (integer tensors are indices)")


class Tensor:
    """An n-dimensional array on a backend that remembers the op that made it."""

    __slots__ = ("data", "requires_grad", "grad", "op", "backend", "__weakref__", "__dict__")
    __array_priority__ = 1000  # numpy_array + tensor dispatches to Tensor.__radd__

    def __init__(self, data, requires_grad=False, backend=None, dtype=None):
        backend = backends.get(backend) if backend is not None else get_default_backend()
        if isinstance(data, Tensor):
            data = data.numpy() if data.backend is not backend else data.data
        if not backend.is_array(data) or (dtype is not None and data.dtype != dtype):
            data = backend.asarray(_host_array(data, dtype), dtype=None)
        elif data.dtype.kind not in "biuf":
            as_dtype("tensor", data.dtype)  # raises: complex, object, str, datetime
        _check_requires_grad(data.dtype, requires_grad)
        self.data = data
        self.backend = backend
        self.requires_grad = requires_grad
        self.grad = None
        self.op = None

    @classmethod
    def _make(cls, data, backend, requires_grad=False, op=None):
        t = object.__new__(cls)
        t.data = data
        t.backend = backend
        t.requires_grad = requires_grad
        t.grad = None
        t.op = op
        return t

    # ---- attributes
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return math.prod(self.data.shape)

    def __len__(self):
        if not self.data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self):
        """A NumPy copy of the data on the host."""
        return self.backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item: the tensor has {self.size} elements, not 1 (shape {self.shape})")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __bool__(self):
        return bool(self.item())

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self.backend.name != "numpy":
            extra += f", backend={self.backend.name}"
        if self.op is not None:
            extra += f", op={self.op.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autodiff
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        from .tape import backward
        backward(self, grad, retain_graph, create_graph)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._make(self.data, self.backend)

    def requires_grad_(self, requires_grad=True):
        _check_requires_grad(self.dtype, requires_grad)
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self.op is None

    # ---- operators and method forms of the functions: bound from METHODS below
    def __pos__(self):
        return self

    # comparisons give bool tensors, outside the graph (for masks and where)
    def __eq__(self, other):
        if not isinstance(other, _COMPARABLE):
            return NotImplemented  # x == None, x in [..., "a"]: Python's identity fallback
        return self.eq(other)

    def __ne__(self, other):
        if not isinstance(other, _COMPARABLE):
            return NotImplemented
        return self.ne(other)

    __hash__ = object.__hash__  # by identity, as torch: usable in sets and as dict keys

    @property
    def T(self):
        """Axes reversed (numpy's .T)."""
        return self.transpose()


_COMPARABLE = _COMPARABLE + (Tensor,)


# ---- Tensor's operators and methods: the method forms of the public functions
# `x.name(*args)` is `opgraph.functions.<target>(x, *args)`; a callable target builds the
# method from the functions module instead. Adding a method is one line here. The
# functions are a higher layer, so they are bound when opgraph.functions is imported
# (on the first call of any method at the latest), never imported here at module level.

def _reflected(target):
    return lambda api: (lambda self, other: getattr(api, target)(other, self))


def _cast(dtype):
    return lambda api: (lambda self: api.astype(self, dtype))


METHODS = {
    **{name: name for name in """
        add sub mul div neg pow exp log log_eps sin cos sqrt rsqrt abs relu sigmoid tanh silu
        matmul sum mean max argmax reshape flatten squeeze unsqueeze broadcast_to transpose
        permute chunk gather softmax log_softmax cross_entropy conv2d max_pool2d embedding
        astype eq ne gt ge lt le""".split()},
    "view": "reshape",
    "expand": "broadcast_to",
    "to": "to_backend",
    "float": _cast(np.float32),
    "double": _cast(np.float64),
    "long": _cast(np.int64),
    "where": lambda api: (lambda self, cond, other: api.where(cond, self, other)),
    "__add__": "add", "__radd__": _reflected("add"),
    "__sub__": "sub", "__rsub__": _reflected("sub"),
    "__mul__": "mul", "__rmul__": _reflected("mul"),
    "__truediv__": "div", "__rtruediv__": _reflected("div"),
    "__matmul__": "matmul", "__rmatmul__": _reflected("matmul"),
    "__pow__": "pow", "__rpow__": _reflected("pow"),
    "__neg__": "neg",
    "__getitem__": "index",
    "__gt__": "gt", "__ge__": "ge", "__lt__": "lt", "__le__": "le",
}


def bind_methods(api):
    """Set every METHODS entry on Tensor from the functions module `api`."""
    for name, target in METHODS.items():
        setattr(Tensor, name, getattr(api, target) if isinstance(target, str) else target(api))


def _bind_on_first_call(name):
    def method(self, *args, **kwargs):
        import importlib
        bind_methods(importlib.import_module("opgraph.functions"))
        return getattr(Tensor, name)(self, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    return method


for _name in METHODS:
    setattr(Tensor, _name, _bind_on_first_call(_name))


# ---- the one input-conversion rule, for ops and public functions alike

def as_tensors(name, values, promote=False):
    """`values` as Tensors on one backend, for op `name`.

    Python scalars, NumPy scalars and arrays, and lists become constant tensors on the
    tensors' backend; float ones take the tensors' float dtype (float32 * 2.0 and
    float32 * np.float64(2) stay float32). With `promote` (arithmetic), integer and bool
    tensors meeting a float tensor take its dtype too (torch's rule: float32 * int64 is
    float32); floats meeting floats promote as in NumPy."""
    first = None
    for v in values:  # the common case, kept fast: tensors of one backend and dtype
        if not isinstance(v, Tensor):
            break
        if first is None:
            first = v
        elif v.backend is not first.backend or (promote and v.data.dtype != first.data.dtype):
            break
    else:
        return values
    return _converted(name, values, promote)


def _converted(name, values, promote):
    backend, floats = None, []
    for v in values:
        if isinstance(v, Tensor):
            if backend is None:
                backend = v.backend
            elif v.backend is not backend:
                raise ValueError(f"{name}: inputs live on different backends ({backend.name} "
                                 f"and {v.backend.name}); move one with .to()")
            if v.data.dtype.kind == "f":
                floats.append(v.data.dtype)
    backend = backend or get_default_backend()
    like = np.result_type(*floats) if floats else None
    out = [v if isinstance(v, Tensor) else _constant(name, v, like, promote, backend)
           for v in values]
    if promote:
        if like is None:  # an integer tensor with a float constant: the constant's dtype
            like = next((v.data.dtype for v in out if v.data.dtype.kind == "f"), None)
        if like is not None:
            out = [v if v.data.dtype.kind == "f" else Tensor._make(backend.astype(v.data, like),
                                                                   backend) for v in out]
    return tuple(out)


def weak_scalar(value):
    """A NumPy scalar as the Python number it holds, so that as an op's parameter (an
    exponent, an epsilon) it cannot promote a float32 tensor (NumPy 2 promotes float32
    arrays with np.float64 scalars)."""
    if isinstance(value, np.generic) and value.dtype.kind in "fiub":
        return value.item()
    return value


def _constant(name, value, like, promote, backend):
    value = weak_scalar(value)
    if not isinstance(value, (bool, int, float, np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a Tensor, a number or a NumPy array, got "
                        f"{type(value).__name__}")
    host = _host_array(value, None, name)
    if like is not None and (promote or host.dtype.kind == "f"):
        # Python numbers and lists straight to `like`: through float32 they would lose digits
        host = host.astype(like) if isinstance(value, np.ndarray) else np.asarray(value, like)
    return Tensor._make(backend.asarray(host), backend)


def _host_array(data, dtype, name="tensor"):
    """Python/NumPy data as a NumPy array: floats default to float32 (the default
    dtype) unless they come as a float64 NumPy array; ints become int64."""
    if dtype is not None:
        dtype = as_dtype(name, dtype)
        if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind in "biuf":
            return np.asarray(data, dtype=dtype)
        return _host_array(data, None, name).astype(dtype)  # refuses complex, str, ...
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind in "fiub":
            return np.asarray(data, dtype=np.int64 if data.dtype.kind in "iu" else None)
        raise TypeError(f"{name}: unsupported dtype {data.dtype}")
    try:
        a = np.asarray(data)
    except ValueError as e:  # ragged nesting: [[1, 2], [3]]
        raise ValueError(f"{name}: the nested sequences must form a rectangular array ({e})") \
            from None
    if a.dtype.kind == "f":
        return a.astype(_default["dtype"])
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind == "b":
        return a
    raise TypeError(f"{name}: cannot make a tensor of {type(data).__name__} (dtype {a.dtype})")


def tensor(data, requires_grad=False, dtype=None, backend=None):
    """A new leaf tensor holding a copy of `data` (list, scalar, NumPy array or Tensor)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    host = np.array(_host_array(data, dtype))  # copy: the tensor owns its data
    return Tensor(host, requires_grad=requires_grad, backend=backend)


def from_numpy(array, requires_grad=False, backend=None):
    """A tensor of a NumPy array, keeping its dtype (shares memory on the NumPy backend)."""
    if not isinstance(array, (np.ndarray, np.generic)):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__} "
                        "(opgraph.tensor takes lists and numbers)")
    as_dtype("from_numpy", array.dtype)
    return Tensor(np.asarray(array), requires_grad=requires_grad, backend=backend)


def zeros(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled("zeros", shape, 0, dtype, requires_grad, backend)


def ones(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled("ones", shape, 1, dtype, requires_grad, backend)


def full(shape, value, dtype=None, requires_grad=False, backend=None):
    shape = (shape,) if not isinstance(shape, (tuple, list)) else shape
    value = weak_scalar(value)
    if not isinstance(value, (bool, int, float)):
        raise TypeError(f"full: the fill value must be a number, got {type(value).__name__} "
                        f"{value!r}")
    return _filled("full", shape, value, dtype, requires_grad, backend)


def _filled(name, shape, value, dtype, requires_grad, backend):
    shape = as_shape(name, shape)
    backend = backends.get(backend) if backend is not None else get_default_backend()
    dtype = as_dtype(name, _default["dtype"] if dtype is None else dtype)
    return Tensor(backend.full(shape, value, dtype), requires_grad=requires_grad, backend=backend)


def randn(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Standard normal samples; `seed` makes them reproducible."""
    return _sampled("randn", "standard_normal", shape, seed, dtype, requires_grad, backend)


def rand(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Uniform samples in [0, 1)."""
    return _sampled("rand", "random", shape, seed, dtype, requires_grad, backend)


def _sampled(name, method, shape, seed, dtype, requires_grad, backend):
    shape = as_shape(name, shape)
    dtype = as_dtype(name, _default["dtype"] if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: samples are floats; dtype {dtype} is not a float dtype")
    if seed is not None and (isinstance(seed, bool) or not hasattr(seed, "__index__")):
        raise TypeError(f"{name}: seed must be an int or None, got {type(seed).__name__} "
                        f"{seed!r}")
    host = getattr(np.random.default_rng(seed), method)(shape)
    return Tensor(host.astype(dtype), requires_grad=requires_grad, backend=backend)
