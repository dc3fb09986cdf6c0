"""Tensor: a backend array, and where it came from."""
import math
import operator

import numpy as np

from opgraph import backends

_default = {"backend": None, "dtype": np.dtype(np.float32), "rng": np.random.default_rng()}


def get_default_backend():
    if _default["backend"] is None:
        _default["backend"] = backends.get("numpy")
    return _default["backend"]


def set_default_backend(backend):
    """Backend (or its name) that new tensors are created on."""
    _default["backend"] = backends.get(backend)


_HOST_DATA = (int, float, bool, np.generic, np.ndarray, list, tuple)
_COMPARABLE = _HOST_DATA  # and Tensor, below


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
    return resolved if resolved.isnative else resolved.newbyteorder("=")  # '>f8': float64


def numeric_array(value, what):
    """`value` (a number, a NumPy array or scalar, a list or tuple) as a host array of bool,
    integer or float data; anything else is a TypeError: `what`, then what was given."""
    host = np.asarray(value) if isinstance(value, _HOST_DATA) else None
    if host is None or host.dtype.kind not in "biuf":
        got = type(value).__name__ if host is None else f"dtype {host.dtype}"
        raise TypeError(f"{what}, got {got}")
    return host


def as_shape(name, shape):
    """Sizes given as ints, or as one tuple/list of ints, as a tuple of non-negative ints
    (a TypeError for a float or str size, a ValueError for a negative one, naming `name`)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, (bool, np.ndarray)) or not hasattr(n, "__index__"):
            raise TypeError(f"{name}: sizes must be ints, got {n!r} ({type(n).__name__}) in "
                            f"shape {tuple(shape)}")
    shape = tuple(operator.index(n) for n in shape)  # a float Tensor is refused, not cut
    if any(n < 0 for n in shape):
        raise ValueError(f"{name}: negative size in shape {shape}")
    return shape


def _check_requires_grad(dtype, requires_grad, name="tensor"):
    if not isinstance(requires_grad, (bool, np.bool_, int)) or requires_grad not in (0, 1):
        raise TypeError(f"{name}: requires_grad must be a bool, got "
                        f"{type(requires_grad).__name__} {requires_grad!r}")
    if requires_grad and np.dtype(dtype).kind != "f":
        raise TypeError(f"{name}: only floating-point tensors can require grad, got dtype "
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
            if dtype is None and isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
                host = np.asarray(data, dtype=as_dtype("tensor", data.dtype))  # its dtype,
            else:  # as on the NumPy backend (whose arrays these are)
                host = _host_array(data, dtype)
            data = backend.asarray(host, dtype=None)
        elif data.dtype.kind not in "biuf" or not data.dtype.isnative:
            # complex, object, str, datetime raise; big-endian data becomes native
            data = backend.asarray(np.asarray(data, dtype=as_dtype("tensor", data.dtype)))
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

    def size(self, dim=None):
        """The shape (torch's size(); not NumPy's element count, which is numel()), or the
        length of one dim."""
        if dim is None:
            return tuple(self.data.shape)
        if not self.data.shape:
            raise IndexError(f"size: dimension specified as {dim} but the tensor has no "
                             "dimensions")
        return int(self.data.shape[_dim_index("size", dim, len(self.data.shape))])

    def numel(self):
        """The number of elements."""
        n = 1
        for s in self.data.shape:
            n *= int(s)
        return n

    def dim(self):
        """The number of dims (ndim)."""
        return len(self.data.shape)

    @property
    def _version(self):
        """How many in-place writes this tensor's storage has seen (torch's x._version;
        views and detach() share it)."""
        from .versions import version
        return version(self)

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
        if self.numel() != 1:
            raise ValueError(f"item: the tensor has {self.numel()} elements, not 1 "
                             f"(shape {self.shape})")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    # Python's conversions, as torch: one element only (int() truncates a float tensor);
    # an index (range(t), a_list[t]) only from an integer or bool tensor
    def _scalar(self, what):
        if self.numel() != 1:
            raise ValueError(f"{what}: only one-element tensors can be converted to Python "
                             f"scalars, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __index__(self):
        if self.data.dtype.kind not in "biu" or self.numel() != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an "
                            f"index, got a {self.dtype} tensor of shape {self.shape}")
        return int(self.numpy().reshape(()).item())

    def __bool__(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with "
                               f"{'no values' if n == 0 else f'{n} values'} is ambiguous "
                               f"(shape {self.shape}); use .any() or .all()")
        return bool(self.numpy().reshape(()).item())

    def __iter__(self):
        if not self.data.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __format__(self, spec):
        # f"{loss:.4f}" formats a 0-d tensor's value, as torch
        return format(self.item(), spec) if not self.data.shape else object.__format__(self, spec)

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
        """The same data, cut from the graph: it shares storage (and the version counter)
        with this tensor, so an in-place write into either shows in both, as in torch."""
        return Tensor._make(self.data, self.backend)

    def requires_grad_(self, requires_grad=True):
        _check_requires_grad(self.dtype, requires_grad, "requires_grad_")
        if self.op is not None and not requires_grad:
            raise RuntimeError(f"requires_grad_: only a leaf's flag can be changed; this tensor "
                               f"was computed by {self.op.name} (use .detach() for a tensor "
                               "cut from the graph)")
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self.op is None

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad at backward, as torch."""
        from .tape import retain_grad
        retain_grad(self)

    @property
    def retains_grad(self):
        from .tape import _retaining
        return self.op is not None and _retaining.get(id(self)) is self

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


def _dim_index(name, dim, ndim):
    """`dim` in [0, ndim) (negative dims count from the end), or torch's IndexError."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}: dim must be an int, got {type(dim).__name__} {dim!r}")
    low, high = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not low <= dim <= high:
        raise IndexError(f"{name}: dimension out of range (expected to be in range of "
                         f"[{low}, {high}], but got {dim})")
    return int(dim) % max(ndim, 1)


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
    **{name: name for name in """
        maximum minimum clamp clip min argmin amax amin var std logsumexp masked_fill expand
        split index_select scatter scatter_add clone mm t floor_divide remainder fmod
        add_ sub_ mul_ div_ floor_divide_ remainder_ fmod_ pow_ neg_ exp_ sqrt_ rsqrt_ relu_ sigmoid_ tanh_ abs_ log_ sin_ cos_
        clamp_ clip_ fill_ zero_ copy_ masked_fill_ addcmul_ addcdiv_ lerp_ uniform_
        normal_""".split()},
    "__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_", "__itruediv__": "div_",
    "__ipow__": "pow_", "__ifloordiv__": "floor_divide_", "__imod__": "remainder_",
    "__setitem__": "setitem",
    "view": "reshape",
    "to": "to",
    "float": _cast(np.float32),
    "double": _cast(np.float64),
    "long": _cast(np.int64),
    "where": lambda api: (lambda self, cond, other: api.where(cond, self, other)),
    # torch's shape-of-another-tensor forms; contiguous() is the tensor itself (no strides)
    "expand_as": lambda api: (lambda self, other: api.expand(self, other.shape)),
    "view_as": lambda api: (lambda self, other: api.reshape(self, other.shape)),
    "reshape_as": lambda api: (lambda self, other: api.reshape(self, other.shape)),
    "type_as": lambda api: (lambda self, other: api.astype(self, other.dtype)),
    "contiguous": lambda api: (lambda self: self),
    "__add__": "add", "__radd__": _reflected("add"),
    "__sub__": "sub", "__rsub__": _reflected("sub"),
    "__mul__": "mul", "__rmul__": _reflected("mul"),
    "__truediv__": "div", "__rtruediv__": _reflected("div"),
    "__floordiv__": "floor_divide", "__rfloordiv__": _reflected("floor_divide"),
    "__mod__": "remainder", "__rmod__": _reflected("remainder"),
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
    """`values` as Tensors on one backend, for op `name` (a string, or the op itself).

    Python scalars, NumPy scalars and arrays, and lists become constant tensors on the
    tensors' backend; float ones take the tensors' float dtype (float32 * 2.0 and
    float32 * np.float64(2) stay float32). With `promote` (arithmetic), every input takes
    one common dtype by torch's rule (result_dtype): uint8 + 1 stays uint8, float32 * int64
    is float32, float32 + a float64 0-d tensor is float32."""
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
    if isinstance(name, str):
        return _converted(name, values, promote)
    return _converted(name.name, values, promote, name.wraps)


def _converted(name, values, promote, wraps=False):
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
    if promote:
        return _promoted(name, values, backend, wraps)
    like = np.result_type(*floats) if floats else None
    return tuple(v if isinstance(v, Tensor) else _constant(name, v, like, backend)
                 for v in values)


def _promoted(name, values, backend, wraps):
    """`values` in their common dtype, each tensor cast to it (differentiably where it
    needs a gradient), each constant made in it: a Python int past an integer dtype's
    range wraps into it for the ops that `wraps` (+ - *, as torch: the same modular
    arithmetic as the tensor's own overflow) and is an OverflowError for the others."""
    values = [v if isinstance(v, Tensor) else _host_constant(name, v) for v in values]
    target = result_dtype(*values)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            if v.data.dtype != target:
                v = v.astype(target) if v.requires_grad else \
                    Tensor._make(backend.astype(v.data, target), backend)
        else:
            v = Tensor._make(backend.asarray(_cast_constant(name, v, target, wraps)), backend)
        out.append(v)
    return tuple(out)


def result_dtype(*values):
    """The dtype arithmetic on `values` computes in, by torch's rule (torch.result_type):
    n-d tensors, 0-d tensors and Python numbers form three categories, each promoted within
    itself as NumPy does; a lower category counts only where its kind (bool < integer <
    float) is higher. A Python int is int64, a float the default float dtype. NumPy arrays
    and lists count as n-d tensors, float ones as Python floats (x32 + np.ones(3) stays
    float32, a deliberate difference: torch would not mix them)."""
    dims = zeros = numbers = None
    for v in values:
        if isinstance(v, Tensor):
            if v.data.ndim:
                dims = _promote(dims, v.data.dtype)
            else:
                zeros = _promote(zeros, v.data.dtype)
        else:
            dtype = _constant_dtype(v)
            if isinstance(v, np.ndarray) and dtype.kind != "f":
                dims = _promote(dims, dtype)
            else:
                numbers = _promote(numbers, dtype)
    return _combine(dims, _combine(zeros, numbers))


def _promote(a, b):
    # torch's promoteTypes: NumPy's, except that an integer meeting a float gives that
    # float (int32 with float32 is float32; NumPy says float64)
    if a is None or a == b:
        return b
    if (a.kind == "f") != (b.kind == "f"):
        return a if a.kind == "f" else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    # c10's combine_categories: a lower category wins only with a higher kind
    if lower is None:
        return higher
    if higher is None:
        return lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote(higher, lower)
    return higher


def _constant_dtype(v):
    if isinstance(v, bool):
        return np.dtype(np.bool_)
    if isinstance(v, int):
        return np.dtype(np.int64)
    if isinstance(v, float):
        return _default["dtype"]
    return v.dtype


def _host_constant(name, value):
    """A constant input as a Python number, or a NumPy array of a tensor dtype."""
    value = weak_scalar(value)
    if not isinstance(value, (bool, int, float, np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a Tensor, a number or a NumPy array, got "
                        f"{type(value).__name__}")
    if isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        if not -2 ** 63 <= value < 2 ** 63:
            raise OverflowError(f"{name}: the value {value} does not fit int64")
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return np.asarray(value, dtype=as_dtype(name, value.dtype))  # keeps float64 digits
    return _host_array(value, None, name)


def _cast_constant(name, value, dtype, wraps):
    if isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    if isinstance(value, int) and dtype.kind in "iu" and not fits(value, dtype):
        if not wraps:  # a divisor, a bound or a fill value wrapped would be a wrong answer
            check_fits(name, value, dtype)
        return np.asarray(value, np.int64).astype(dtype)
    return np.asarray(value, dtype)


def fits(value, dtype):
    """Whether the Python int `value` is in the range of the integer `dtype`."""
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def check_fits(name, value, dtype):
    """torch's OverflowError for a Python int (a fill value, a bound, an exponent) outside
    the range of an integer `dtype`, naming `name`; NumPy's own message names no op."""
    dtype = np.dtype(dtype)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and \
            dtype.kind in "iu" and not fits(int(value), dtype):
        info = np.iinfo(dtype)
        raise OverflowError(f"{name}: the value {value} cannot be converted to {dtype} without "
                            f"overflow (range [{info.min}, {info.max}]); convert the tensor "
                            "first, e.g. with .long()")


def as_floating(tensors):
    """Integer and bool tensors as the default float dtype, float ones as they are: the
    inputs of an op whose result is real-valued (torch: exp(int64), int64 / int64 and
    sigmoid(bool) are float32; NumPy would give float64, or float16 for bool)."""
    for t in tensors:
        if t.data.dtype.kind != "f":
            break
    else:
        return tensors
    dtype = _default["dtype"]
    return tuple(t if t.data.dtype.kind == "f" else
                 Tensor._make(t.backend.astype(t.data, dtype), t.backend) for t in tensors)


def weak_scalar(value):
    """A NumPy scalar as the Python number it holds, so that as an op's parameter (an
    exponent, an epsilon) it cannot promote a float32 tensor (NumPy 2 promotes float32
    arrays with np.float64 scalars)."""
    if isinstance(value, np.generic) and value.dtype.kind in "fiub":
        return value.item()
    return value


def _constant(name, value, like, backend):
    value = weak_scalar(value)
    if not isinstance(value, (bool, int, float, np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a Tensor, a number or a NumPy array, got "
                        f"{type(value).__name__}")
    host = _host_array(value, None, name)
    if like is not None and host.dtype.kind == "f":
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
        _host_array(data, None, name)  # refuses complex, str, ragged ...
        # then straight to `dtype`: through the float32 default, float64 data loses digits
        try:
            return np.asarray(data, dtype=dtype)
        except (OverflowError, ValueError) as e:  # 300 as uint8, NaN as int64
            raise type(e)(f"{name}: the data cannot be converted to {dtype} ({e})") from None
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind in "iu":
            return _as_int64(name, np.asarray(data))
        if data.dtype.kind in "fb":
            return np.asarray(data, dtype=as_dtype(name, data.dtype))  # in native byte order
        raise TypeError(f"{name}: unsupported dtype {data.dtype}")
    try:
        a = np.asarray(data)
    except ValueError as e:  # ragged nesting: [[1, 2], [3]]
        raise ValueError(f"{name}: the nested sequences must form a rectangular array ({e})") \
            from None
    if a.dtype.kind == "f":
        return a.astype(_default["dtype"])
    if a.dtype.kind in "iu":
        return _as_int64(name, a)
    if a.dtype.kind == "b":
        return a
    if a.dtype.kind == "O" and a.size and all(isinstance(v, int) for v in a.flat):
        raise OverflowError(f"{name}: the value {max(a.flat, key=abs)} does not fit int64")
    raise TypeError(f"{name}: cannot make a tensor of {type(data).__name__} (dtype {a.dtype})")


def _as_int64(name, a):
    """Integer data as int64; uint64 values past 2**63 - 1 would wrap to negatives."""
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise OverflowError(f"{name}: the value {int(a.max())} does not fit int64 (integer "
                            "tensors are int64; pass dtype=np.uint64 or from_numpy to keep "
                            "uint64)")
    return a.astype(np.int64)


def tensor(data, requires_grad=False, dtype=None, backend=None):
    """A new leaf tensor holding a copy of `data` (list, scalar, NumPy array or Tensor)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    host = np.array(_host_array(data, dtype))  # copy: the tensor owns its data
    _check_requires_grad(host.dtype, requires_grad)
    return Tensor(host, requires_grad=requires_grad, backend=backend)


def from_numpy(array, requires_grad=False, backend=None):
    """A tensor of a NumPy array, keeping its dtype (shares memory on the NumPy backend)."""
    if not isinstance(array, (np.ndarray, np.generic)):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__} "
                        "(opgraph.tensor takes lists and numbers)")
    dtype = as_dtype("from_numpy", array.dtype)
    # a big-endian array becomes a native copy: kernels (and dtype == np.float64) need that
    _check_requires_grad(dtype, requires_grad, "from_numpy")
    return Tensor(np.asarray(array, dtype=dtype), requires_grad=requires_grad, backend=backend)


def zeros(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled("zeros", shape, 0, dtype, requires_grad, backend)


def ones(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled("ones", shape, 1, dtype, requires_grad, backend)


def full(shape, value, dtype=None, requires_grad=False, backend=None, _name="full"):
    """A tensor of `shape` filled with `value`; without a dtype, the value's kind picks it
    (as torch.full: a bool gives bool, an int int64, a float the default float dtype)."""
    shape = (shape,) if not isinstance(shape, (tuple, list)) else shape
    value = weak_scalar(value)
    if not isinstance(value, (bool, int, float)):
        raise TypeError(f"{_name}: the fill value must be a number, got {type(value).__name__} "
                        f"{value!r}")
    if dtype is None:
        dtype = (np.dtype(np.bool_) if isinstance(value, bool) else
                 np.dtype(np.int64) if isinstance(value, int) else _default["dtype"])
    return _filled(_name, shape, value, dtype, requires_grad, backend)


def _filled(name, shape, value, dtype, requires_grad, backend):
    shape = as_shape(name, shape)
    backend = backends.get(backend) if backend is not None else get_default_backend()
    dtype = as_dtype(name, _default["dtype"] if dtype is None else dtype)
    _check_requires_grad(dtype, requires_grad, name)
    check_fits(name, value, dtype)
    return Tensor(backend.full(shape, value, dtype), requires_grad=requires_grad, backend=backend)


def manual_seed(seed):
    """Seed the generator behind randn, rand, the *_like samplers, uniform_ / normal_,
    default layer initialisations and Dropout masks when no seed is given (as
    torch.manual_seed); returns that NumPy generator."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"manual_seed: seed {seed} is out of range [-2**63, 2**64)")
    _default["rng"] = np.random.default_rng(seed % 2 ** 64)  # negatives wrap, as torch
    return _default["rng"]


def default_generator():
    """The NumPy generator that unseeded random functions draw from (see manual_seed)."""
    return _default["rng"]


def _rng(seed):
    return _default["rng"] if seed is None else np.random.default_rng(seed)


def _float_dtype(name, dtype):
    dtype = as_dtype(name, _default["dtype"] if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: random samples need a floating-point dtype, got {dtype}")
    return dtype


def randn(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Standard normal samples; `seed` makes them reproducible (without it they come from
    the generator og.manual_seed seeds)."""
    return _sampled("randn", "standard_normal", shape, seed, dtype, requires_grad, backend)


def rand(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Uniform samples in [0, 1) (seeded as randn)."""
    return _sampled("rand", "random", shape, seed, dtype, requires_grad, backend)


def _sampled(name, method, shape, seed, dtype, requires_grad, backend):
    shape = as_shape(name, shape)
    dtype = as_dtype(name, _default["dtype"] if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: samples are floats; dtype {dtype} is not a float dtype")
    if seed is not None and (isinstance(seed, bool) or not hasattr(seed, "__index__")):
        raise TypeError(f"{name}: seed must be an int or None, got {type(seed).__name__} "
                        f"{seed!r}")
    _check_requires_grad(dtype, requires_grad, name)
    host = getattr(_rng(seed), method)(shape)
    return Tensor(host.astype(dtype), requires_grad=requires_grad, backend=backend)


# ---- creation like another tensor: its shape, dtype and backend unless given
def _like(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    return x


def zeros_like(x, dtype=None, requires_grad=False, backend=None):
    x = _like("zeros_like", x)
    return _filled("zeros_like", x.shape, 0, x.dtype if dtype is None else dtype, requires_grad,
                   backend or x.backend)


def ones_like(x, dtype=None, requires_grad=False, backend=None):
    x = _like("ones_like", x)
    return _filled("ones_like", x.shape, 1, x.dtype if dtype is None else dtype, requires_grad,
                   backend or x.backend)


def full_like(x, fill_value, dtype=None, requires_grad=False, backend=None):
    x = _like("full_like", x)
    return full(x.shape, fill_value, x.dtype if dtype is None else dtype, requires_grad,
                backend or x.backend, _name="full_like")


def randn_like(x, dtype=None, requires_grad=False, backend=None, seed=None):
    x = _like("randn_like", x)
    return randn(x.shape, seed=seed, dtype=_float_dtype("randn_like", x.dtype if dtype is None
                                                        else dtype),
                 requires_grad=requires_grad, backend=backend or x.backend)


def rand_like(x, dtype=None, requires_grad=False, backend=None, seed=None):
    x = _like("rand_like", x)
    return rand(x.shape, seed=seed, dtype=_float_dtype("rand_like", x.dtype if dtype is None
                                                      else dtype),
                requires_grad=requires_grad, backend=backend or x.backend)


# ---- ranges
def _number(name, what, v):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ValueError(f"{name}: {what} must be a number or a one-element tensor, got a "
                             f"tensor of shape {v.shape}")
        v = v.item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: {what} must be a number, got {type(v).__name__} {v!r}")
    return v.item() if isinstance(v, np.generic) else v


def arange(start, end=None, step=1, dtype=None, requires_grad=False, backend=None):
    """start, start + step, ... up to end (excluded), as torch.arange: arange(end) counts
    from 0; int64 when start, end and step are all ints, else the default float dtype."""
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", w, v) for w, v in
                        (("start", start), ("end", end), ("step", step)))
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if not np.isfinite([start, end, step]).all():
        raise ValueError(f"arange: start, end and step must be finite, got {start}, {end}, {step}")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start {start}, end {end}, step {step})")
    integral = all(isinstance(v, int) for v in (start, end, step))
    dtype = as_dtype("arange", dtype) if dtype is not None else (
        np.dtype(np.int64) if integral else _default["dtype"])
    if dtype.kind in "biu" and not integral:
        # as torch: an integer arange truncates start, end and step first
        given = step
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise ValueError(f"arange: step must be nonzero (the step {given!r} of an integer "
                             f"arange ({dtype}) truncates to 0)")
        integral = True
    if integral:
        host = np.arange(start, end, step, dtype=np.int64)
    else:
        n = max(0, int(np.ceil((end - start) / step)))
        host = start + step * np.arange(n, dtype=np.float64)
    _check_requires_grad(dtype, requires_grad, "arange")
    return Tensor(host.astype(dtype), requires_grad=requires_grad, backend=backend)


def linspace(start, end, steps, dtype=None, requires_grad=False, backend=None):
    """`steps` evenly spaced values from start to end, both included (torch.linspace)."""
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    steps = int(steps)
    i = np.arange(steps, dtype=np.float64)
    if steps > 1:
        step = (end - start) / (steps - 1)
        # as torch: the first half counts up from start, the second half down from end
        host = np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))
    else:
        host = np.full(steps, start, dtype=np.float64)
    dtype = as_dtype("linspace", _default["dtype"] if dtype is None else dtype)
    _check_requires_grad(dtype, requires_grad, "linspace")
    return Tensor(host.astype(dtype), requires_grad=requires_grad, backend=backend)


def eye(n, m=None, dtype=None, requires_grad=False, backend=None):
    """The n x m identity matrix (m defaults to n)."""
    m = n if m is None else m
    for what, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"eye: {what} must be a non-negative int, got {v!r}")
    host = np.eye(int(n), int(m), dtype=as_dtype("eye", _default["dtype"] if dtype is None
                                                 else dtype))
    _check_requires_grad(host.dtype, requires_grad, "eye")
    return Tensor(host, requires_grad=requires_grad, backend=backend)
