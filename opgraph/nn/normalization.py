"""Normalization layers, as torch.nn's: BatchNorm1d, BatchNorm2d and LayerNorm."""
import numpy as np

from .. import _checks
from ..tensor import Tensor
from . import functional as F
from .modules import Module, Parameter, _backend, _dtype

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Module):
    """Batch normalization over every dim but the channels (dim 1), as torch:
    in training mode the batch statistics normalize, and the running averages are updated
    (running = (1 - momentum) · running + momentum · batch, the variance unbiased;
    momentum=None: the cumulative average over num_batches_tracked batches); in eval mode
    the running statistics normalize. Buffers running_mean, running_var and
    num_batches_tracked are in the state dict (none with track_running_stats=False, which
    always uses batch statistics); weight and bias (affine=True) start at 1 and 0."""
    expected_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, backend=None):
        super().__init__()
        name = type(self).__name__
        self.num_features = _checks.size(name, "num_features", num_features)
        self.eps = _checks.number(name, "eps", eps, 0.0)
        self.momentum = None if momentum is None else _checks.number(name, "momentum",
                                                                     momentum, 0.0, 1.0)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        n = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(n, dtype), backend=backend)
            self.bias = Parameter(np.zeros(n, dtype), backend=backend)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(n, dtype), backend=backend))
            self.register_buffer("running_var", Tensor(np.ones(n, dtype), backend=backend))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64),
                                                               backend=backend))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            b = self.running_mean.backend
            self.running_mean.data = b.zeros(self.running_mean.shape, self.running_mean.dtype)
            self.running_var.data = b.ones(self.running_var.shape, self.running_var.dtype)
            self.num_batches_tracked.data = b.zeros((), np.int64)

    def _check_input(self, x):
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expects a Tensor, got {type(x).__name__}")
        if x.ndim not in self.expected_dims:
            dims = " or ".join(f"{d}D" for d in self.expected_dims)
            raise ValueError(f"{name}: expected {dims} input, got {x.ndim}D input of shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): input of shape {tuple(x.shape)} has "
                             f"{x.shape[1]} channels (dim 1), expected {self.num_features}")

    def forward(self, x):
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            b = self.num_batches_tracked.backend
            self.num_batches_tracked.data = b.binary("add", self.num_batches_tracked.data, 1)
            if self.momentum is None:
                factor = 1.0 / int(self.num_batches_tracked.item())
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input (statistics over N and L)."""
    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input (statistics over N, H and W)."""
    expected_dims = (4,)


class LayerNorm(Module):
    """Normalization over the trailing dims `normalized_shape` of each sample (mean and
    biased variance), then weight · x̂ + bias (elementwise_affine; weight 1, bias 0 at the
    start), as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None, backend=None):
        super().__init__()
        shape = (normalized_shape,) if not isinstance(normalized_shape, (tuple, list)) \
            else tuple(normalized_shape)
        if not shape:
            raise ValueError("LayerNorm: normalized_shape must name at least one dim")
        self.normalized_shape = tuple(_checks.size("LayerNorm", "normalized_shape", n)
                                      for n in shape)
        self.eps = _checks.number("LayerNorm", "eps", eps, 0.0)
        self.elementwise_affine = bool(elementwise_affine)
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype), backend=backend)
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype), backend=backend)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
