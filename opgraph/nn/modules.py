"""Modules: Parameter, Module, the containers and the layers (torch.nn's classes)."""
import math
from collections import OrderedDict

import numpy as np

from opgraph import backends as _backends

from opgraph.ops import conv as _conv

from .. import functions as F
from ..tensor import Tensor, get_default_backend
from . import init
from .init import manual_seed

__all__ = ["manual_seed", "Parameter", "Module", "Sequential", "ModuleList", "Identity",
           "Linear", "Conv2d", "MaxPool2d", "Embedding", "ReLU", "Sigmoid", "Tanh", "SiLU",
           "Softmax", "LogSoftmax", "Flatten", "Dropout", "CrossEntropyLoss", "MSELoss", "init"]


def _backend(backend):
    return _backends.get(backend) if backend is not None else get_default_backend()


def _dtype(dtype):
    return np.dtype(dtype) if dtype is not None else np.dtype(np.float32)


# ---------------------------------------------------------------------------
# Parameter and Module


class Parameter(Tensor):
    """A Tensor that is a module's learnable parameter: a leaf with requires_grad=True."""

    def __init__(self, data, requires_grad=True, backend=None):
        if isinstance(data, Tensor):
            backend = backend if backend is not None else data.backend
            data = data.data if _backends.get(backend) is data.backend else data.numpy()
        super().__init__(data, requires_grad=requires_grad, backend=backend)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: subclass it, assign Parameters and
    sub-Modules as attributes in `__init__`, and write `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 "assigning attributes")
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name} must be a Parameter, got "
                            f"{type(param).__name__}")
        if param is None:
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor):
        """A tensor that is part of the state (saved by state_dict) but not trained."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor, backend=self._guess_backend())
        setattr(self, name, tensor)

    def add_module(self, name, module):
        setattr(self, name, module)

    def _guess_backend(self):
        for p in self.parameters():
            return p.backend
        return get_default_backend()

    # ---- traversal
    def named_modules(self, prefix=""):
        """(name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """("layer.weight", Parameter) for every parameter, each once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        for mod_prefix, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # ---- modes
    def train(self, mode=True):
        """Training mode (Dropout active); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (Dropout off); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor._make(p.backend.zeros(p.shape, p.dtype), p.backend)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- backends
    def to(self, backend):
        """Move every parameter and buffer to `backend` (a name or Backend), in
        place: the Parameter objects stay the same, so an optimizer built
        before the move keeps working. Returns self."""
        backend = _backends.get(backend)
        for t in list(self.parameters()) + list(self.buffers()):
            if t.backend is not backend:
                t.data = backend.asarray(t.numpy())
                if t.grad is not None:
                    t.grad = Tensor._make(backend.asarray(t.grad.numpy()), backend)
                t.backend = backend
        return self

    # ---- state
    def state_dict(self):
        """{name: Tensor} of every parameter and buffer (detached, sharing data)."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.detach()
        for name, b in self.named_buffers():
            state[name] = b.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (Tensors or NumPy arrays) into the parameters and buffers.

        Everything is checked before anything is copied: with strict=True
        (the default) missing or unexpected names raise KeyError; a value of the
        wrong shape always raises ValueError; in both cases the module is left
        unchanged. Returns (missing_keys, unexpected_keys)."""
        own = OrderedDict(list(self.named_parameters()) + list(self.named_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict into {type(self).__name__}: missing keys "
                           f"{missing}, unexpected keys {unexpected}")
        updates, wrong = [], []
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            host = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if tuple(host.shape) != tuple(target.shape):
                wrong.append(f"{name}: expected shape {tuple(target.shape)}, got "
                             f"{tuple(host.shape)}")
                continue
            if host.dtype.kind not in "fiub":
                wrong.append(f"{name}: expected a numeric array, got dtype {host.dtype}")
                continue
            updates.append((target, host))
        if wrong:
            raise ValueError(f"load_state_dict into {type(self).__name__}: "
                             + "; ".join(wrong) + " (nothing was loaded)")
        for target, host in updates:
            target.data = target.backend.asarray(np.array(host, dtype=target.dtype))
        return missing, unexpected

    # ---- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self.__dict__.get("_modules", {}).items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        return head + "\n" + "\n".join(children) + "\n)"

    def num_parameters(self):
        """Total number of scalar parameters."""
        return sum(p.size for p in self.parameters())


# ---------------------------------------------------------------------------
# containers


class Sequential(Module):
    """Modules applied one after another: `Sequential(Linear(4, 8), ReLU(), Linear(8, 2))`."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of Modules whose parameters are registered."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    def forward(self, x):
        return x


# ---------------------------------------------------------------------------
# layers


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True, backend=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        backend, dtype = _backend(backend), _dtype(dtype)
        bound = init.kaiming_uniform_bound(in_features)
        self.weight = Parameter(init.uniform((out_features, in_features), bound, dtype),
                                backend=backend)
        if bias:
            b = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
            self.bias = Parameter(init.uniform((out_features,), b, dtype), backend=backend)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if not x.shape or x.shape[-1] != self.in_features:
            last = f"last dim {x.shape[-1]}" if x.shape else "no dims (0-d)"
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape "
                             f"{tuple(x.shape)} has {last}, expected a last dim of "
                             f"{self.in_features}")
        y = F.matmul(x, self.weight.T)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"Conv2d: kernel_size must be an int or (kh, kw), got {tuple(v)}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


class Conv2d(Module):
    """2-D convolution (cross-correlation) on NCHW input; weight (out, in, k, k)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 backend=None, dtype=None):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride = _conv.square_int("Conv2D", "stride", stride, 1)
        self.padding = _conv.square_int("Conv2D", "padding", padding, 0)
        backend, dtype = _backend(backend), _dtype(dtype)
        fan_in = in_channels * kh * kw
        bound = init.kaiming_uniform_bound(fan_in)
        self.weight = Parameter(init.uniform((out_channels, in_channels, kh, kw), bound, dtype),
                                backend=backend)
        if bias:
            b = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self.bias = Parameter(init.uniform((out_channels,), b, dtype), backend=backend)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _conv.square_int("MaxPool2D", "kernel_size", kernel_size, 1)
        self.stride = (self.kernel_size if stride is None else
                       _conv.square_int("MaxPool2D", "stride", stride, 1))

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class Embedding(Module):
    """A lookup table: `Embedding(num, dim)(indices)` has shape indices.shape + (dim,)."""

    def __init__(self, num_embeddings, embedding_dim, backend=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), 1.0, _dtype(dtype)),
                                backend=_backend(backend))

    def forward(self, indices):
        return F.embedding(self.weight, indices)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)  # dims out of range raise


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest
    by 1/(1-p); the identity in eval mode. `seed` makes the masks reproducible
    (otherwise they come from the generator seeded by nn.manual_seed)."""

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        rng = self._rng if self._rng is not None else init.generator()
        keep = (rng.random(x.shape) >= self.p).astype(x.dtype) / (1 - self.p)
        mask = Tensor(keep.astype(x.dtype), backend=x.backend)
        return x * mask

    def extra_repr(self):
        return f"p={self.p}"


# ---------------------------------------------------------------------------
# losses


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits (N, C) against int class indices (N,)."""

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


class MSELoss(Module):
    """Mean (or summed, reduction='sum') squared error."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"MSELoss: reduction must be 'mean', 'sum' or 'none', got "
                             f"{reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        if not isinstance(target, Tensor):
            target = Tensor(target, backend=input.backend, dtype=input.dtype)
        if tuple(input.shape) != tuple(target.shape):
            raise ValueError(f"MSELoss: input of shape {tuple(input.shape)} and target of shape "
                             f"{tuple(target.shape)} differ")
        diff = input - target
        sq = diff * diff
        if self.reduction == "mean":
            return F.mean(sq)
        if self.reduction == "sum":
            return F.sum(sq)
        return sq
