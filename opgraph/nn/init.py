"""Initialisation, as torch.nn.init: in-place fills of a tensor's data, and the random
generator behind every layer's default initialisation.

    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    nn.manual_seed(0)          # reproducible default initial weights (and Dropout masks)

The functions write the tensor's `.data` (on its own backend) and return the tensor; they
record nothing on the tape. Values are drawn on the host from one NumPy generator.
"""
import math

import numpy as np

__all__ = ["manual_seed", "calculate_gain", "uniform_", "normal_", "constant_", "zeros_",
           "ones_", "eye_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "trunc_normal_"]

# one generator for everything random (opgraph.manual_seed seeds it, as torch.manual_seed)
from opgraph.tensor import default_generator as generator, manual_seed  # noqa: E402,F401


# ---- what the layers call: host arrays of a dtype
def uniform(shape, bound, dtype):
    return generator().uniform(-bound, bound, size=shape).astype(dtype)


def normal(shape, std, dtype):
    return (std * generator().standard_normal(size=shape)).astype(dtype)


def kaiming_uniform_bound(fan_in, a=math.sqrt(5)):
    """Bound of torch.nn.init.kaiming_uniform_(a=a, nonlinearity='leaky_relu'): the default
    of Linear and Conv weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a = sqrt(5)."""
    gain = math.sqrt(2.0 / (1 + a * a))
    return gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0


# ---- torch.nn.init
def calculate_gain(nonlinearity, param=None):
    """The recommended gain of torch.nn.init.calculate_gain."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor, name):
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"{name}: fan in and fan out need a tensor with at least 2 dims, got "
                         f"shape {shape}")
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode, name):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor, name)
    return fan_in if mode == "fan_in" else fan_out


def _write(tensor, host):
    # in place, as torch.nn.init: views and detach() of the tensor see the new values
    from opgraph.tape import no_grad
    with no_grad():
        return tensor.copy_(tensor.backend.asarray(np.asarray(host, dtype=tensor.dtype)))


def uniform_(tensor, a=0.0, b=1.0):
    return _write(tensor, generator().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    return _write(tensor, mean + std * generator().standard_normal(size=tensor.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Normal samples redrawn until they fall in [a, b] (as torch's, in absolute units)."""
    out = mean + std * generator().standard_normal(size=tensor.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = mean + std * generator().standard_normal(size=int(bad.sum()))
        bad = (out < a) | (out > b)
    return _write(tensor, out)


def constant_(tensor, val):
    return _write(tensor, np.full(tensor.shape, val))


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def eye_(tensor):
    if len(tensor.shape) != 2:
        raise ValueError(f"eye_: expects a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _write(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = _fan(tensor, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0)


def orthogonal_(tensor, gain=1.0):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal sample, as torch."""
    if len(tensor.shape) < 2:
        raise ValueError(f"orthogonal_: expects at least 2 dims, got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:], dtype=np.int64))
    flat = generator().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor, gain * q.reshape(tensor.shape))
