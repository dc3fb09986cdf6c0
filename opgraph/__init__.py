"""opgraph: a Go-style operation-graph autodiff framework.

Every operation is a small class with forward/backward/inputs; a tape records
ops as they run and replays them in reverse for gradients; backends do the
arithmetic."""
from ._layout import bind_subpackages as _bind_subpackages

_bind_subpackages(__name__, __path__)  # opgraph.backends, opgraph.ops (see _layout.py)

from .tensor import (Tensor, tensor, from_numpy, zeros, ones, full, randn, rand,
                     set_default_backend, get_default_backend)
from .operation import Operation, MultiOutputOperation
from .tape import Tape, grad, no_grad, enable_grad, current_tape
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .functions import (add, sub, mul, div, pow, neg, exp, log, log_eps, sin, cos, sqrt, rsqrt,
                        abs, relu, sigmoid, tanh, silu, matmul, sum, mean, max, argmax, reshape,
                        transpose, broadcast_to, flatten, squeeze, unsqueeze, cat, stack, chunk,
                        gather, embedding, where, softmax, log_softmax, cross_entropy, conv2d,
                        max_pool2d, astype)

from .functions import einsum, einsum_path, tropical_einsum, Semiring, register_semiring
from .serialization import save, load
from . import nn, optim, data, graph
from . import tropical  # MIS / spin-glass solvers (networkx is imported on first use)

__version__ = "0.1.0"
