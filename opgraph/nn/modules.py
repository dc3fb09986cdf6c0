"""Modules: Parameter, Module, the containers and the layers (torch.nn's classes)."""
import math
from collections import OrderedDict

import numpy as np

from opgraph import backends as _backends

from .. import functions as F
from ..tensor import Tensor, get_default_backend
from .. import _checks
from . import functional, init
from .init import manual_seed

__all__ = ["manual_seed", "Parameter", "Module", "Sequential", "ModuleList", "ModuleDict",
           "ParameterList", "ParameterDict", "Identity", "Linear", "Conv1d", "Conv2d",
           "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "Embedding", "ReLU", "ReLU6", "Sigmoid", "Tanh", "SiLU", "GELU",
           "LeakyReLU", "ELU", "SELU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax",
           "Softmin", "Flatten", "Unflatten", "Dropout", "init"]


def _backend(backend):
    return _backends.get(backend) if backend is not None else get_default_backend()


def _is_float_dtype(value):
    """True for a float dtype given as a NumPy type, dtype or name ("float64")."""
    if isinstance(value, str) and value in ("numpy", "numba", "cuda"):
        return False
    try:
        return np.dtype(value).kind == "f"
    except TypeError:
        return False


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

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is part of the state but not trained: saved by state_dict unless
        persistent=False (as torch), moved by .to()."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        transient = self.__dict__.setdefault("_non_persistent", set())
        if persistent:
            transient.discard(name)
        else:
            transient.add(name)
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
    def to(self, *args, backend=None, dtype=None):
        """Move every parameter and buffer to a backend (a name or Backend) and/or cast the
        floating-point ones to a float dtype, in place, as torch's `module.to(device)` /
        `module.to(torch.float64)`: the Parameter objects stay the same, so an optimizer
        built before keeps working. Returns self."""
        for arg in args:
            if _is_float_dtype(arg):
                dtype = arg
            else:
                backend = arg
        if dtype is not None:
            self._cast(np.dtype(dtype))
        if backend is None:
            return self
        backend = _backends.get(backend)
        for t in list(self.parameters()) + list(self.buffers()):
            if t.backend is not backend:
                t.data = backend.asarray(t.numpy())
                if t.grad is not None:
                    t.grad = Tensor._make(backend.asarray(t.grad.numpy()), backend)
                t.backend = backend
        return self

    def _cast(self, dtype):
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: expects a floating-point dtype, got "
                            f"{dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f" and t.dtype != dtype:
                t.data = t.backend.astype(t.data, dtype)
                if t.grad is not None:
                    t.grad = Tensor._make(t.backend.astype(t.grad.data, dtype), t.backend)

    def float(self):
        """Floating-point parameters and buffers as float32 (in place); returns self."""
        return self.to(dtype=np.float32)

    def double(self):
        """Floating-point parameters and buffers as float64 (in place); returns self."""
        return self.to(dtype=np.float64)

    def apply(self, fn):
        """Call fn on every submodule (children first) and on self, as torch's
        `model.apply(init_weights)`; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- state
    def _state_items(self, prefix=""):
        """(name, tensor) of the state in torch's order: each module's parameters, then its
        persistent buffers, then its children's (a module shared by two names: both)."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        transient = self.__dict__.get("_non_persistent", ())
        for name, b in self._buffers.items():
            if b is not None and name not in transient:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_items(f"{prefix}{name}.")

    def state_dict(self):
        """{name: Tensor} of every parameter and persistent buffer (detached, sharing data),
        in torch's order."""
        return OrderedDict((name, t.detach()) for name, t in self._state_items())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (Tensors or NumPy arrays) into the parameters and buffers.

        Everything is checked before anything is copied: with strict=True
        (the default) missing or unexpected names raise KeyError; a value of the
        wrong shape always raises ValueError; in both cases the module is left
        unchanged. Returns (missing_keys, unexpected_keys)."""
        own = OrderedDict(self._state_items())
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
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------
# containers



def _item(container, items, i):
    """items[i] for a Sequential / ModuleList / ParameterList, or torch's IndexError
    naming the container."""
    name = type(container).__name__
    if isinstance(i, bool) or not hasattr(i, "__index__"):
        raise TypeError(f"{name}: indices must be ints or slices, got {type(i).__name__}")
    if not -len(items) <= i < len(items):
        raise IndexError(f"{name}: index {i} is out of range (it holds {len(items)})")
    return items[i]

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
        return _item(self, mods, i)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of Modules whose parameters are registered (keys "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def _check(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: expects Modules, got {type(module).__name__}")
        return module

    def append(self, module):
        self.add_module(str(len(self._modules)), self._check(module))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, self._check(module))
        self._reset(mods)

    def _reset(self, mods):
        for name in list(self._modules):
            delattr(self, name)
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return type(self)(mods[i]) if isinstance(i, slice) else _item(self, mods, i)

    def __setitem__(self, i, module):
        mods = list(self._modules.values())
        mods[i] = self._check(module)
        self._reset(mods)

    def __delitem__(self, i):
        mods = list(self._modules.values())
        del mods[i]
        self._reset(mods)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """An ordered dict of Modules whose parameters are registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: values must be Modules, got {type(module).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key):
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, m in items:
            self[key] = m

    def pop(self, key):
        m = self._modules[key]
        del self[key]
        return m

    def clear(self):
        for key in list(self._modules):
            del self[key]


class ParameterList(Module):
    """A list of Parameters, registered as "0", "1", ... (plain tensors are wrapped)."""

    def __init__(self, values=None):
        super().__init__()
        for v in values or ():
            self.append(v)

    @staticmethod
    def _param(value):
        return value if isinstance(value, Parameter) else Parameter(value)

    def append(self, value):
        setattr(self, str(len(self._parameters)), self._param(value))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def __getitem__(self, i):
        params = list(self._parameters.values())
        return ParameterList(params[i]) if isinstance(i, slice) else _item(self, params, i)

    def __setitem__(self, i, value):
        i = range(len(self))[i]
        setattr(self, str(i), self._param(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())


class ParameterDict(Module):
    """An ordered dict of Parameters registered under their keys."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        setattr(self, key, value if isinstance(value, Parameter) else Parameter(value))

    def __delitem__(self, key):
        delattr(self, key)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, p in items:
            self[key] = p


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments, as torch.nn.Identity."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


# ---------------------------------------------------------------------------
# layers


def _fan_in_uniform(shape, fan_in, dtype, backend):
    """torch's default weight initialisation (kaiming-uniform, a = sqrt(5))."""
    return Parameter(init.uniform(shape, init.kaiming_uniform_bound(fan_in), dtype),
                     backend=backend)


def _bias(n, fan_in, dtype, backend):
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return Parameter(init.uniform((n,), bound, dtype), backend=backend)


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 backend=None):
        super().__init__()
        self.in_features = _checks.size("Linear", "in_features", in_features)
        self.out_features = _checks.size("Linear", "out_features", out_features)
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        self.weight = _fan_in_uniform((self.out_features, self.in_features), self.in_features,
                                      dtype, backend)
        if bias:
            self.bias = _bias(self.out_features, self.in_features, dtype, backend)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear: expects a Tensor, got {type(x).__name__}")
        if not x.shape or x.shape[-1] != self.in_features:
            last = f"last dim {x.shape[-1]}" if x.shape else "no dims (0-d)"
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape "
                             f"{tuple(x.shape)} has {last}, expected a last dim of "
                             f"{self.in_features}")
        return functional.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: sizes checked at construction, weight
    (out_channels, in_channels / groups, *kernel_size), torch's initialisation."""
    dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 backend=None):
        super().__init__()
        name, n = type(self).__name__, self.dims
        self.in_channels = _checks.size(name, "in_channels", in_channels)
        self.out_channels = _checks.size(name, "out_channels", out_channels)
        self.groups = _checks.size(name, "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels ({self.in_channels}) and out_channels "
                             f"({self.out_channels}) must be divisible by groups ({self.groups})")
        self.kernel_size = _checks.sizes(name, "kernel_size", kernel_size, n)
        self.stride = _checks.sizes(name, "stride", stride, n)
        self.dilation = _checks.sizes(name, "dilation", dilation, n)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be an int, {n} ints, 'valid' or 'same', "
                                 f"got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride {self.stride})")
            self.padding = padding
        else:
            self.padding = _checks.sizes(name, "padding", padding, n, allow_zero=True)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        fan_in = self.in_channels // self.groups * int(np.prod(self.kernel_size))
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = _fan_in_uniform(shape, fan_in, dtype, backend)
        if bias:
            self.bias = _bias(self.out_channels, fan_in, dtype, backend)
        else:
            self.register_parameter("bias", None)

    def _padded(self, x):
        """(input, padding for the conv): non-zero padding modes pad explicitly."""
        if self.padding_mode == "zeros" or isinstance(self.padding, str) and \
                self.padding == "valid":
            return x, self.padding
        if isinstance(self.padding, str):  # 'same' with a non-zero mode
            pads = functional._same_padding(type(self).__name__, self.kernel_size, self.stride,
                                            self.dilation)
        else:
            pads = [(p, p) for p in self.padding]
        flat = [a for lo, hi in reversed(pads) for a in (lo, hi)]
        return functional.pad(x, flat, mode=self.padding_mode), 0

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) on NCHW input, as torch.nn.Conv2d: weight
    (out_channels, in_channels / groups, kh, kw); stride, padding and dilation an int or a
    pair; padding also 'valid' or 'same'; padding_mode 'zeros', 'reflect', 'replicate' or
    'circular'."""
    dims = 2

    def forward(self, x):
        x, padding = self._padded(x)
        return functional.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                                 self.groups)


class Conv1d(_ConvNd):
    """1-D convolution on (N, C, L) input, as torch.nn.Conv1d: weight
    (out_channels, in_channels / groups, k)."""
    dims = 1

    def forward(self, x):
        x, padding = self._padded(x)
        return functional.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                                 self.groups)


def _pool_args(name, kernel_size, stride, padding):
    """Check a pooling layer's arguments as torch keeps them (ints stay ints)."""
    _checks.sizes(name, "kernel_size", kernel_size, 2)
    if stride is not None and stride != ():
        _checks.sizes(name, "stride", stride, 2)
    else:
        stride = kernel_size
    _checks.sizes(name, "padding", padding, 2, allow_zero=True)
    return kernel_size, stride, padding


class MaxPool2d(Module):
    """Max pooling on NCHW input, as torch.nn.MaxPool2d (stride defaults to kernel_size;
    padding is -inf; ties go to the first maximum)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pool_args("MaxPool2d", kernel_size,
                                                                 stride, padding)
        _checks.sizes("MaxPool2d", "dilation", dilation, 2)
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return functional.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                     self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling on NCHW input, as torch.nn.AvgPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pool_args("AvgPool2d", kernel_size,
                                                                 stride, padding)
        if divisor_override is not None:
            _checks.size("AvgPool2d", "divisor_override", divisor_override)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return functional.avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                                     self.ceil_mode, self.count_include_pad,
                                     self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(Module):
    """Max pooling on (N, C, L) input, as torch.nn.MaxPool1d."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        _checks.sizes("MaxPool1d", "kernel_size", kernel_size, 1)
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return functional.max_pool1d(x, self.kernel_size, self.stride, self.padding,
                                     self.dilation, self.ceil_mode, self.return_indices)


class AvgPool1d(Module):
    """Average pooling on (N, C, L) input, as torch.nn.AvgPool1d."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        _checks.sizes("AvgPool1d", "kernel_size", kernel_size, 1)
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return functional.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                                     self.ceil_mode, self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (an int, a pair, None keeps that dim)."""

    def __init__(self, output_size):
        super().__init__()
        parts = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
        for v in parts:
            if v is not None:
                _checks.size("AdaptiveAvgPool2d", "output_size", v)
        self.output_size = output_size

    def forward(self, x):
        return functional.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = _checks.size("AdaptiveAvgPool1d", "output_size", output_size)

    def forward(self, x):
        return functional.adaptive_avg_pool1d(x, self.output_size)


class Embedding(Module):
    """A lookup table: `Embedding(num, dim)(indices)` has shape indices.shape + (dim,);
    weight N(0, 1), the row padding_idx zero and without gradient (as torch). max_norm:
    the rows looked up are first scaled in place to that norm_type-norm when longer, as
    torch. `Embedding.from_pretrained(weights)` wraps given weights (frozen by default)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None, *, backend=None):
        super().__init__()
        self.num_embeddings = _checks.size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _checks.size("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in "
                                 f"[-{self.num_embeddings}, {self.num_embeddings - 1}], got "
                                 f"{padding_idx!r}")
            padding_idx = int(padding_idx) % self.num_embeddings
        if max_norm is not None:
            max_norm = _checks.number("Embedding", "max_norm", max_norm, 0.0)
        if scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: scale_grad_by_freq and sparse are not "
                                      "supported")
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = False, False
        where = _backend(backend if backend is not None else device)
        if _weight is not None:
            shape = tuple(_weight.shape)
            if shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {shape}, expected "
                                 f"{(self.num_embeddings, self.embedding_dim)}")
            data = _weight.numpy() if isinstance(_weight, Tensor) else np.asarray(_weight)
            weight = data.astype(_dtype(dtype) if dtype is not None else (
                data.dtype if data.dtype.kind == "f" else np.float32))
        else:
            weight = init.normal((self.num_embeddings, self.embedding_dim), 1.0, _dtype(dtype))
            if padding_idx is not None:
                weight[padding_idx] = 0
        self.weight = Parameter(weight, backend=where, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding `embeddings` (num, dim), as torch's: frozen unless
        freeze=False; the padding row keeps its values."""
        if getattr(embeddings, "ndim", None) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{getattr(embeddings, 'shape', None)}")
        rows, cols = embeddings.shape
        backend = embeddings.backend if isinstance(embeddings, Tensor) else None
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze, backend=backend)

    def forward(self, indices):
        return functional.embedding(indices, self.weight, self.padding_idx, self.max_norm,
                                    self.norm_type)

    def extra_repr(self):
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        norm = f", max_norm={self.max_norm}" if self.max_norm is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}{norm}"


# ---- activations


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return functional.relu(x, self.inplace)


class ReLU6(ReLU):
    def forward(self, x):
        return functional.relu6(x, self.inplace)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class SiLU(ReLU):
    def forward(self, x):
        return functional.silu(x, self.inplace)


class GELU(Module):
    """x · Φ(x); approximate='tanh' for the tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return functional.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = _checks.number("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = inplace

    def forward(self, x):
        return functional.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = _checks.number("ELU", "alpha", alpha)
        self.inplace = inplace

    def forward(self, x):
        return functional.elu(x, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SELU(ReLU):
    def forward(self, x):
        return functional.selu(x, self.inplace)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = _checks.number("Softplus", "beta", beta)
        self.threshold = _checks.number("Softplus", "threshold", threshold)

    def forward(self, x):
        return functional.softplus(x, self.beta, self.threshold)


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val = _checks.number("Hardtanh", "min_val", min_val)
        self.max_val = _checks.number("Hardtanh", "max_val", max_val)
        self.inplace = inplace

    def forward(self, x):
        return functional.hardtanh(x, self.min_val, self.max_val, self.inplace)


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return functional.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return functional.log_softmax(x, self.dim)


class Softmin(Softmax):
    def forward(self, x):
        return functional.softmin(x, self.dim)


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)  # dims out of range raise

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim into unflattened_size (the inverse of Flatten)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        d = self.dim % x.ndim
        return x.reshape(tuple(x.shape[:d]) + self.unflattened_size + tuple(x.shape[d + 1:]))


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest
    by 1/(1-p); the identity in eval mode. `seed` makes the masks reproducible
    (otherwise they come from the generator seeded by nn.manual_seed)."""

    def __init__(self, p=0.5, inplace=False, seed=None):
        super().__init__()
        self.p = _checks.number("Dropout", "p", p, 0.0, 1.0)
        self.inplace = inplace
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x):
        return functional.dropout(x, self.p, self.training, self.inplace, self._rng)

    def extra_repr(self):
        return f"p={self.p}"
