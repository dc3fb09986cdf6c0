"""Tensor: a backend array, and where it came from."""
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


_api = []


def _functions():
    # Tensor methods call the public function API, a higher layer: import it on first use
    if not _api:
        from . import functions
        _api.append(functions)
    return _api[0]


_COMPARABLE = (int, float, bool, np.generic, np.ndarray, list, tuple)  # and Tensor, below


def _check_requires_grad(dtype, requires_grad):
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
        return int(np.prod(self.data.shape, dtype=np.int64))

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

    def to(self, backend):
        """This tensor on another backend (differentiable)."""
        return _functions().to_backend(self, backends.get(backend))

    # ---- operators
    def __add__(self, other): return _functions().add(self, other)
    def __radd__(self, other): return _functions().add(other, self)
    def __sub__(self, other): return _functions().sub(self, other)
    def __rsub__(self, other): return _functions().sub(other, self)
    def __mul__(self, other): return _functions().mul(self, other)
    def __rmul__(self, other): return _functions().mul(other, self)
    def __truediv__(self, other): return _functions().div(self, other)
    def __rtruediv__(self, other): return _functions().div(other, self)
    def __matmul__(self, other): return _functions().matmul(self, other)
    def __rmatmul__(self, other): return _functions().matmul(other, self)
    def __pow__(self, exponent): return _functions().pow(self, exponent)
    def __rpow__(self, base): return _functions().pow(base, self)
    def __neg__(self): return _functions().neg(self)
    def __pos__(self): return self
    def __getitem__(self, key): return _functions().index(self, key)

    # comparisons give bool tensors, outside the graph (for masks and where)
    def __gt__(self, other): return _functions().compare("gt", self, other)
    def __ge__(self, other): return _functions().compare("ge", self, other)
    def __lt__(self, other): return _functions().compare("lt", self, other)
    def __le__(self, other): return _functions().compare("le", self, other)
    def __eq__(self, other):
        if not isinstance(other, _COMPARABLE):
            return NotImplemented  # x == None, x in [..., "a"]: Python's identity fallback
        return _functions().compare("eq", self, other)

    def __ne__(self, other):
        if not isinstance(other, _COMPARABLE):
            return NotImplemented
        return _functions().compare("ne", self, other)

    __hash__ = object.__hash__  # by identity, as torch: usable in sets and as dict keys

    # ---- method forms of the functions
    def add(self, other): return _functions().add(self, other)
    def sub(self, other): return _functions().sub(self, other)
    def mul(self, other): return _functions().mul(self, other)
    def div(self, other): return _functions().div(self, other)
    def neg(self): return _functions().neg(self)
    def where(self, cond, other): return _functions().where(cond, self, other)
    def cross_entropy(self, targets): return _functions().cross_entropy(self, targets)
    def conv2d(self, weight, bias=None, stride=1, padding=0):
        return _functions().conv2d(self, weight, bias, stride, padding)
    def max_pool2d(self, kernel_size, stride=None):
        return _functions().max_pool2d(self, kernel_size, stride)
    def embedding(self, indices): return _functions().embedding(self, indices)
    def exp(self): return _functions().exp(self)
    def log(self): return _functions().log(self)
    def log_eps(self, eps): return _functions().log_eps(self, eps)
    def sin(self): return _functions().sin(self)
    def cos(self): return _functions().cos(self)
    def sqrt(self): return _functions().sqrt(self)
    def rsqrt(self): return _functions().rsqrt(self)
    def relu(self): return _functions().relu(self)
    def sigmoid(self): return _functions().sigmoid(self)
    def tanh(self): return _functions().tanh(self)
    def silu(self): return _functions().silu(self)
    def abs(self): return _functions().abs(self)
    def pow(self, exponent): return _functions().pow(self, exponent)
    def matmul(self, other): return _functions().matmul(self, other)
    def sum(self, dim=None, keepdim=False): return _functions().sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return _functions().mean(self, dim, keepdim)
    def max(self, dim=None, keepdim=False): return _functions().max(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return _functions().argmax(self, dim, keepdim)
    def reshape(self, *shape): return _functions().reshape(self, *shape)
    def view(self, *shape): return _functions().reshape(self, *shape)
    def flatten(self, start_dim=0, end_dim=-1): return _functions().flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return _functions().squeeze(self, dim)
    def unsqueeze(self, dim): return _functions().unsqueeze(self, dim)
    def expand(self, *shape): return _functions().broadcast_to(self, *shape)
    def broadcast_to(self, *shape): return _functions().broadcast_to(self, *shape)
    def transpose(self, *axes): return _functions().transpose(self, *axes)
    def permute(self, *axes): return _functions().permute(self, *axes)
    def chunk(self, n, dim=0): return _functions().chunk(self, n, dim)
    def gather(self, dim, index): return _functions().gather(self, dim, index)
    def softmax(self, dim=-1): return _functions().softmax(self, dim)
    def log_softmax(self, dim=-1): return _functions().log_softmax(self, dim)
    def astype(self, dtype): return _functions().astype(self, dtype)
    def float(self): return _functions().astype(self, np.float32)
    def double(self): return _functions().astype(self, np.float64)
    def long(self): return _functions().astype(self, np.int64)

    @property
    def T(self):
        """Axes reversed (numpy's .T)."""
        return _functions().transpose(self, tuple(reversed(range(self.ndim))))


_COMPARABLE = _COMPARABLE + (Tensor,)


def _host_array(data, dtype):
    """Python/NumPy data as a NumPy array: floats default to float32 (the default
    dtype) unless they come as a float64 NumPy array; ints become int64."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind in "fiub":
            return np.asarray(data, dtype=np.int64 if data.dtype.kind in "iu" else None)
        raise TypeError(f"tensor: unsupported dtype {data.dtype}")
    try:
        a = np.asarray(data)
    except ValueError as e:  # ragged nesting: [[1, 2], [3]]
        raise ValueError(f"tensor: the nested sequences must form a rectangular array ({e})") \
            from None
    if a.dtype.kind == "f":
        return a.astype(_default["dtype"])
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind == "b":
        return a
    raise TypeError(f"tensor: cannot make a tensor of {type(data).__name__} (dtype {a.dtype})")


def tensor(data, requires_grad=False, dtype=None, backend=None):
    """A new leaf tensor holding a copy of `data` (list, scalar, NumPy array or Tensor)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    host = np.array(_host_array(data, dtype))  # copy: the tensor owns its data
    return Tensor(host, requires_grad=requires_grad, backend=backend)


def from_numpy(array, requires_grad=False, backend=None):
    """A tensor of a NumPy array, keeping its dtype (shares memory on the NumPy backend)."""
    return Tensor(np.asarray(array), requires_grad=requires_grad, backend=backend)


def zeros(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled(shape, 0, dtype, requires_grad, backend)


def ones(*shape, dtype=None, requires_grad=False, backend=None):
    return _filled(shape, 1, dtype, requires_grad, backend)


def full(shape, value, dtype=None, requires_grad=False, backend=None):
    return _filled((shape,), value, dtype, requires_grad, backend)


def _filled(shape, value, dtype, requires_grad, backend):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    backend = backends.get(backend) if backend is not None else get_default_backend()
    dtype = np.dtype(dtype or _default["dtype"])
    return Tensor(backend.full(tuple(int(s) for s in shape), value, dtype),
                  requires_grad=requires_grad, backend=backend)


def randn(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Standard normal samples; `seed` makes them reproducible."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    host = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(host.astype(dtype or _default["dtype"]), requires_grad=requires_grad,
                  backend=backend)


def rand(*shape, seed=None, dtype=None, requires_grad=False, backend=None):
    """Uniform samples in [0, 1)."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    host = np.random.default_rng(seed).random(shape)
    return Tensor(host.astype(dtype or _default["dtype"]), requires_grad=requires_grad,
                  backend=backend)
