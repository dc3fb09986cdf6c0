"""torch.nn.functional for opgraph: the functions behind the layers and losses.

    import opgraph.nn.functional as F

    h = F.gelu(F.linear(x, w, b))
    loss = F.cross_entropy(logits, targets, label_smoothing=0.1)

Signatures and defaults follow torch.nn.functional (the legacy `size_average` / `reduce`
arguments of the losses included). Every function is built from ops of `opgraph.ops`, so
it runs on every backend and is differentiable (twice, except through max-pooling and
the fused cross-entropy's second order, which is its own op).
"""
import math
import numbers
import warnings

import numpy as np

from opgraph.ops import activation as _act
from opgraph.ops import conv as _conv
from opgraph.ops import loss as _loss
from opgraph.ops import normalization as _norm
from opgraph.ops import padding as _pad
from opgraph.ops.elementwise import Where as _Where

from .. import functions as _fn
from ..tape import no_grad
from ..tensor import Tensor
from . import init as _init

__all__ = ["linear", "bilinear", "relu", "relu6", "gelu", "leaky_relu", "elu", "selu",
           "sigmoid", "tanh", "silu", "softplus", "hardtanh", "softmax", "log_softmax",
           "softmin", "dropout", "pad", "one_hot", "embedding", "conv1d", "conv2d",
           "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "batch_norm", "layer_norm", "normalize", "mse_loss",
           "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]


# ---------------------------------------------------------------------------
# helpers


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _tensor(x, name, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")
    return x


def _like(value, ref, dtype=None):
    """A number, array or Tensor as a Tensor on ref's backend (float: ref's dtype)."""
    if isinstance(value, Tensor):
        return value
    dtype = dtype if dtype is not None else (ref.dtype if ref.dtype.kind == "f" else None)
    return Tensor(np.asarray(value, dtype=dtype), backend=ref.backend)


def _number(name, what, value, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (low is not None and (value < low or (low_open and value == low))) \
            or (high is not None and value > high):
        lo = "(" if low_open else "["
        raise ValueError(f"{name}: {what} must be in {lo}{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}], got {value!r}")
    return value


def _inplace(name, x, out, inplace):
    """torch's inplace=True: x takes the result in place and is returned (its storage, and
    while recording its history; a leaf that requires grad refuses, as torch)."""
    return x.copy_(out) if inplace else out


def _reduction(name, size_average, reduce, reduction):
    if size_average is not None or reduce is not None:  # torch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
        # torch's words; MSELoss("sum") lands here too (a truthy size_average: the mean)
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", UserWarning, stacklevel=4)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _pointwise_target(name, input, target):
    """target as a tensor like input; a different shape broadcasts with a warning (torch)."""
    _tensor(input, name)
    target = _like(target, input)
    if target.dtype != input.dtype and input.dtype.kind == "f":
        target = target.astype(input.dtype)
    if tuple(target.shape) != tuple(input.shape):
        from opgraph.ops.shape import broadcast_shapes
        broadcast_shapes(name, input.shape, target.shape)  # raises when they cannot broadcast
        warnings.warn(f"{name}: using a target size {tuple(target.shape)} that is different to "
                      f"the input size {tuple(input.shape)}; they are broadcast together, which "
                      "is likely not what you want. Make them the same size.", UserWarning,
                      stacklevel=3)
    return target


# ---------------------------------------------------------------------------
# linear layers and activations


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias; weight (out_features, in_features) or (in_features,)."""
    _tensor(input, "linear")
    if input.ndim == 0:
        raise ValueError(f"linear: input must have at least 1 dim, got a 0-d tensor")
    if weight.ndim not in (1, 2):
        raise ValueError(f"linear: weight must be 1-D or 2-D, got shape {tuple(weight.shape)}")
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} has last dim "
                         f"{input.shape[-1]}, weight of shape {tuple(weight.shape)} expects "
                         f"{weight.shape[-1]}")
    y = _fn.matmul(input, weight.T if weight.ndim == 2 else weight)
    return y if bias is None else y + bias


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = Σ_ij input1[..., i] · weight[o, i, j] · input2[..., j] + bias[o]."""
    y = _fn.einsum("...i,oij,...j->...o", input1, weight, input2)
    return y if bias is None else y + bias


def relu(input, inplace=False):
    return _inplace("relu", input, _fn.relu(input), inplace)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """max(min_val, min(max_val, x)); the gradient is 1 strictly inside, 0 outside."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    b = input.backend
    low = b.binary("le", input.data, min_val)
    high = b.binary("ge", input.data, max_val)
    lo = Tensor._make(b.full((), min_val, input.dtype), b)
    hi = Tensor._make(b.full((), max_val, input.dtype), b)
    out = _Where(low)(lo, _Where(high)(hi, input))
    return _inplace("hardtanh", input, out, inplace)


def gelu(input, approximate="none"):
    """x · Φ(x) (approximate='none'), or its tanh approximation (approximate='tanh')."""
    return _act.GELU(approximate)(_tensor(input, "gelu"))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    slope = _number("leaky_relu", "negative_slope", negative_slope)
    return _inplace("leaky_relu", input, _act.LeakyReLU(slope)(_tensor(input, "leaky_relu")),
                    inplace)


def elu(input, alpha=1.0, inplace=False):
    alpha = _number("elu", "alpha", alpha)
    return _inplace("elu", input, _act.ELU(alpha)(_tensor(input, "elu")), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    return _inplace("selu", input, _act.ELU(_SELU_ALPHA)(input) * _SELU_SCALE, inplace)


def sigmoid(input):
    return _fn.sigmoid(input)


def tanh(input):
    return _fn.tanh(input)


def silu(input, inplace=False):
    return _inplace("silu", input, _fn.silu(input), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta · x)) / beta, linear above beta · x > threshold (as torch)."""
    beta = _number("softplus", "beta", beta)
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return _act.Softplus(beta, _number("softplus", "threshold", threshold))(input)


def _softmax_dim(name, ndim, dim):
    if dim is None:  # torch's implicit choice (deprecated there too)
        warnings.warn(f"{name}: implicit dimension choice is deprecated; pass dim=...",
                      UserWarning, stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input.astype(dtype) if dtype is not None else input
    return _fn.softmax(x, _softmax_dim("softmax", x.ndim, dim))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input.astype(dtype) if dtype is not None else input
    return _fn.log_softmax(x, _softmax_dim("log_softmax", x.ndim, dim))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    x = input.astype(dtype) if dtype is not None else input
    return _fn.softmax(-x, _softmax_dim("softmin", x.ndim, dim))


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1 - p) when training;
    `generator` is a numpy Generator (default: the one seeded by nn.manual_seed)."""
    p = _number("dropout", "p", p, 0.0, 1.0)
    if not training or p == 0:
        return input
    if p == 1:
        return _inplace("dropout", input, input * 0.0, inplace)
    rng = generator if generator is not None else _init.generator()
    keep = (rng.random(input.shape) >= p).astype(input.dtype) / (1 - p)
    mask = Tensor(keep.astype(input.dtype), backend=input.backend)
    return _inplace("dropout", input, input * mask, inplace)


# ---------------------------------------------------------------------------
# padding, one-hot, embedding


def _pad_pairs(name, x, pad):
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or any(
            isinstance(p, bool) or not isinstance(p, (int, np.integer)) for p in pad):
        raise ValueError(f"{name}: pad must be a tuple of an even number of ints, got {pad!r}")
    if len(pad) // 2 > x.ndim:
        raise ValueError(f"{name}: pad {tuple(pad)} pads {len(pad) // 2} dims of an input with "
                         f"only {x.ndim}")
    pairs = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2)]
    return list(reversed(pairs))  # torch's pad starts at the last dim


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: `pad` = (left, right, top, bottom, ...) from the last dim
    backwards; mode 'constant' (negative amounts crop), 'reflect', 'replicate' or
    'circular'."""
    _tensor(input, "pad")
    pairs = _pad_pairs("pad", input, pad)
    if mode == "constant":
        return _pad.ConstantPad(pairs, 0.0 if value is None else value)(input)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    if value not in (None, 0):
        raise ValueError(f"pad: a fill value only applies to mode 'constant', not {mode!r}")
    out = input
    first = input.ndim - len(pairs)
    for k, (lo, hi) in enumerate(pairs):
        d = first + k
        n = input.shape[d]
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: negative padding {tuple(pad)} is only allowed in mode "
                             "'constant'")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"pad: reflect padding {(lo, hi)} must be smaller than the dim "
                             f"{d} of size {n} (input {tuple(input.shape)})")
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(f"pad: circular padding {(lo, hi)} can be at most the size {n} of "
                             f"dim {d} (input {tuple(input.shape)})")
        if n == 0 and (lo or hi):
            raise ValueError(f"pad: cannot {mode}-pad the empty dim {d} of {tuple(input.shape)}")
        pos = np.arange(-lo, n + hi)
        if mode == "reflect":
            period = 2 * (n - 1) if n > 1 else 1
            pos = np.abs(pos) % period
            pos = np.where(pos >= n, period - pos, pos)
        elif mode == "replicate":
            pos = np.clip(pos, 0, n - 1)
        else:
            pos = pos % n
        key = (slice(None),) * d + (pos.astype(np.int64),)
        out = out[key]
    return out


def one_hot(tensor, num_classes=-1):
    """int64 (..., num_classes) with a 1 at each index (num_classes=-1: max + 1)."""
    _tensor(tensor, "one_hot", "tensor")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got dtype "
                        f"{tensor.dtype}")
    idx = tensor.numpy().astype(np.int64)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: cannot infer num_classes of an empty tensor; pass it")
        num_classes = int(idx.max()) + 1
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be positive or -1, got {num_classes}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: class values span [{idx.min()}, {idx.max()}], outside "
                         f"[0, {num_classes - 1}] for num_classes={num_classes}")
    out = (idx[..., None] == np.arange(num_classes)).astype(np.int64)
    return Tensor(out, backend=tensor.backend)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of weight picked by the integer `input` (torch's argument order: indices
    first); the row padding_idx gets no gradient. max_norm: as torch, the rows `input`
    reads whose norm_type-norm exceeds max_norm are first scaled in place (outside the
    graph) to norm max_norm."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    if max_norm is not None:
        _renorm_rows(input, weight, max_norm, norm_type)
    out = _fn.embedding(weight, input)
    if padding_idx is None:
        return out
    n = weight.shape[0]
    if not -n <= padding_idx < n:
        raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for "
                         f"{n} embeddings")
    idx = input.data if isinstance(input, Tensor) else weight.backend.asarray(np.asarray(input))
    b = weight.backend
    hit = b.reshape(b.binary("eq", idx, padding_idx % n), tuple(idx.shape) + (1,))
    return _Where(hit)(out.detach(), out)


def _renorm_rows(input, weight, max_norm, norm_type):
    """torch's embedding_renorm_: row *= max_norm / (norm + 1e-7) where norm > max_norm."""
    max_norm = _checks_number("embedding", "max_norm", max_norm)
    norm_type = _checks_number("embedding", "norm_type", norm_type)
    _tensor(weight, "embedding")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {weight.shape}")
    idx = input.numpy() if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"embedding: index {idx.min() if idx.min() < -n else idx.max()} is "
                         f"out of range for {n} embeddings")
    rows = Tensor(np.unique(idx % n if idx.size else idx).astype(np.int64),
                  backend=weight.backend)
    with no_grad():
        picked = weight[rows]
        if math.isinf(norm_type):
            norms = picked.abs().amax(1)
        else:
            norms = (picked.abs() ** norm_type).sum(1) ** (1.0 / norm_type)
        scale = _fn.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = picked * scale.unsqueeze(1)


def _checks_number(owner, what, value):
    from .. import _checks
    return _checks.number(owner, what, value, 0.0)


# ---------------------------------------------------------------------------
# convolution and pooling


def _same_padding(name, kernel, stride, dilation):
    """The (before, after) padding of padding='same' for each spatial dim."""
    if any(s != 1 for s in stride):
        raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                         f"(stride {stride})")
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), NCHW; padding an int, a pair, 'valid' or 'same'."""
    _tensor(input, "conv2d")
    if input.ndim == 3:  # unbatched (C, H, W), as torch
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups)[0]
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            kernel = tuple(weight.shape[2:4])
            pads = _same_padding("conv2d", kernel, _conv.as_pair("conv2d", "stride", stride, 1),
                                 _conv.as_pair("conv2d", "dilation", dilation, 1))
            if all(lo == hi for lo, hi in pads):
                padding = (pads[0][0], pads[1][0])
            else:
                input = _pad.ConstantPad(pads, 0.0)(input)
                padding = 0
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
    op = _conv.Conv2D(stride, padding, dilation, groups)
    return op(input, weight) if bias is None else op(input, weight, bias)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution on (N, C, L) (or unbatched (C, L)), as a conv2d of height 1."""
    _tensor(input, "conv1d")
    if input.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups)[0]
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv1d: expects input (N, C, L) and weight (F, C/groups, k), got "
                         f"shapes {tuple(input.shape)} and {tuple(weight.shape)}")
    one = lambda v, what: (1 if what != "padding" else 0, _int1("conv1d", what, v))  # noqa: E731
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = one(padding, "padding")
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, one(stride, "stride"), pad2,
                 one(dilation, "dilation"), groups)
    return out.squeeze(2)


def _int1(name, what, v):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{name}: {what} must be an int or a 1-tuple, got {v!r}")
        v = v[0]
    return v


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling, NCHW (or unbatched CHW); stride defaults to kernel_size; padding is -inf;
    ties go to the first maximum. return_indices: also the flat H·W position of each max."""
    _tensor(input, "max_pool2d")
    if input.ndim == 3:
        out = max_pool2d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)
        return (out[0][0], out[1][0]) if return_indices else out[0]
    op = _conv.MaxPool2D(kernel_size, stride, padding, ceil_mode, dilation)
    out = op(input)
    if not return_indices:
        return out
    return out, Tensor._make(input.backend.reshape(op.indices(), out.shape), input.backend)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling, NCHW (or unbatched CHW), as torch (count_include_pad, ceil_mode,
    divisor_override)."""
    _tensor(input, "avg_pool2d")
    if input.ndim == 3:
        return avg_pool2d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override)[0]
    return _conv.AvgPool2D(kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override)(input)


def _as_1d(name, kernel_size, stride, padding):
    k = _int1(name, "kernel_size", kernel_size)
    s = k if stride is None or stride == () else _int1(name, "stride", stride)
    return (1, k), (1, s), (0, _int1(name, "padding", padding))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    k, s, p = _as_1d("max_pool1d", kernel_size, stride, padding)
    if input.ndim == 2:
        out = max_pool1d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)
        return (out[0][0], out[1][0]) if return_indices else out[0]
    out = max_pool2d(input.unsqueeze(2), k, s, p, 1 if dilation == 1 else (1, dilation),
                     ceil_mode, return_indices)
    if return_indices:
        return out[0].squeeze(2), out[1].reshape(out[1].shape[0], out[1].shape[1], -1)
    return out.squeeze(2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    k, s, p = _as_1d("avg_pool1d", kernel_size, stride, padding)
    if input.ndim == 2:
        return avg_pool1d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode,
                          count_include_pad)[0]
    return avg_pool2d(input.unsqueeze(2), k, s, p, ceil_mode, count_include_pad).squeeze(2)


def _adaptive_matrix(size, out, dtype):
    """(out, size) averaging matrix of adaptive pooling: row i averages
    [floor(i·size/out), ceil((i+1)·size/out))."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start = (i * size) // out
        end = -((-(i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _output_pair(name, output_size, shape):
    parts = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(parts) != 2:
        raise ValueError(f"{name}: output_size must be an int or a pair, got {output_size!r}")
    parts = tuple(shape[i] if v is None else v for i, v in enumerate(parts))
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in parts):
        raise ValueError(f"{name}: output_size must be positive ints (or None), got "
                         f"{output_size!r}")
    return tuple(int(v) for v in parts)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (H_out, W_out), windows as torch's."""
    _tensor(input, "adaptive_avg_pool2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expects input (N, C, H, W) or (C, H, W), got "
                         f"shape {tuple(input.shape)}")
    h, w = input.shape[-2:]
    oh, ow = _output_pair("adaptive_avg_pool2d", output_size, (h, w))
    if h % oh == 0 and w % ow == 0 and input.ndim == 4 and h and w:
        return avg_pool2d(input, (h // oh, w // ow))
    rows = Tensor(_adaptive_matrix(h, oh, input.dtype), backend=input.backend)
    cols = Tensor(_adaptive_matrix(w, ow, input.dtype), backend=input.backend)
    return rows @ input @ cols.T


def adaptive_avg_pool1d(input, output_size):
    size = _int1("adaptive_avg_pool1d", "output_size", output_size)
    n = input.shape[-1]
    m = Tensor(_adaptive_matrix(n, _output_pair("adaptive_avg_pool1d", (1, size), (1, n))[1],
                                input.dtype), backend=input.backend)
    return input @ m.T


# ---------------------------------------------------------------------------
# normalization


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """Batch normalization over every dim but the channels (dim 1), as torch: with
    training=True the batch statistics normalize and the running ones are updated in
    place (running = (1 - momentum) · running + momentum · batch, the batch variance
    unbiased); otherwise the running statistics normalize."""
    _tensor(input, "batch_norm")
    eps = _number("batch_norm", "eps", eps, 0.0)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expects input (N, C, ...), got shape {tuple(input.shape)}")
    c = input.shape[1]
    for what, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {what} must have shape ({c},) for input "
                             f"{tuple(input.shape)}, got {tuple(t.shape)}")
    view = (1, c) + (1,) * (input.ndim - 2)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when not "
                             "training")
        scale = (running_var.detach() + eps).rsqrt()
        y = (input - running_mean.detach().reshape(view)) * scale.reshape(view)
        if weight is not None:
            y = y * weight.reshape(view)
        return y + bias.reshape(view) if bias is not None else y
    count = _numel(input.shape) // c if c else 0
    if count <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(input.shape)}")
    op = _norm.BatchNorm(eps, weight is not None, bias is not None)
    out = op(input, *[p for p in (weight, bias) if p is not None])
    if running_mean is not None or running_var is not None:
        _update_running(op, running_mean, running_var, momentum, count)
    return out


def _update_running(op, running_mean, running_var, momentum, count):
    b = op.backend
    with no_grad():
        for running, batch in ((running_mean, op.mean),
                               (running_var, b.binary("mul", op.var, count / (count - 1)))):
            if running is None:
                continue
            batch = b.astype(batch, running.dtype)
            running.data = b.binary("add", b.binary("mul", running.data, 1.0 - momentum),
                                    b.binary("mul", batch, momentum))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Normalize over the trailing dims `normalized_shape` (mean and biased variance),
    then scale by weight and shift by bias (both of that shape, optional)."""
    _tensor(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != tuple(shape) or input.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing "
                         f"dims of input {tuple(input.shape)}")
    eps = _number("layer_norm", "eps", eps, 0.0)
    op = _norm.LayerNorm(k, eps, weight is not None, bias is not None)
    return op(input, *[p for p in (weight, bias) if p is not None])


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(‖input‖_p along dim, eps)."""
    b = input.backend
    if p == 1:
        norm = input.abs().sum(dim, keepdim=True)
        small = b.binary("lt", norm.data, eps)
    else:
        def p_norm(x):
            return (x * x).sum(dim, keepdim=True).sqrt() if p == 2 else \
                (x.abs() ** p).sum(dim, keepdim=True) ** (1.0 / p)
        small = b.binary("lt", p_norm(input.detach()).data, eps)
        # below eps the result is input / eps (as torch: the gradient there is 1 / eps); the
        # norm of those rows is taken of ones, so that the infinite slopes of the root and
        # of |x|^p at 0 stay out of the graph (0 · inf would be nan)
        norm = p_norm(_Where(small)(Tensor._make(b.full((), 1, input.dtype), b), input))
    return input / _Where(small)(Tensor._make(b.full((), eps, norm.dtype), b), norm)


# ---------------------------------------------------------------------------
# losses


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)² reduced by mean (default), sum or none."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    target = _pointwise_target("mse_loss", input, target)
    diff = input - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target| reduced by mean (default), sum or none."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    target = _pointwise_target("l1_loss", input, target)
    loss = (input - target).abs()
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d² / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target)."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    beta = _number("smooth_l1_loss", "beta", beta, 0.0)
    target = _pointwise_target("smooth_l1_loss", input, target)
    diff = input - target
    if beta == 0:
        return _reduce(diff.abs(), reduction)
    return _reduce(_huber(diff, beta) / beta, reduction)


def _huber(diff, delta):
    """0.5 d² where |d| < delta, delta · (|d| - 0.5 delta) elsewhere."""
    a = diff.abs()
    small = diff.backend.binary("lt", a.data, delta)
    return _Where(small)(diff * diff * 0.5, (a - 0.5 * delta) * delta)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d² where |d| < delta, delta · (|d| - 0.5 delta) elsewhere (d = input - target)."""
    reduction = _reduction("huber_loss", None, None, reduction)
    delta = _number("huber_loss", "delta", delta, 0.0, low_open=True)
    target = _pointwise_target("huber_loss", input, target)
    loss = _huber(input - target, delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _classes_last(name, input, target):
    """input (N, C, d...) or (C,) and int target (N, d...) or () as (M, C) and host (M,)."""
    _tensor(input, name)
    if input.ndim == 0:
        raise ValueError(f"{name}: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d "
                         "tensor")
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target), backend=input.backend)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype "
                        f"{target.dtype} (float targets are class probabilities, for "
                        "cross_entropy with a target of the input's shape)")
    if input.ndim == 1:
        expected = ()
        flat = input.reshape(1, -1)
    else:
        expected = (input.shape[0],) + tuple(input.shape[2:])
        flat = input if input.ndim == 2 else _fn.transpose(
            input, (0,) + tuple(range(2, input.ndim)) + (1,)).reshape(-1, input.shape[1])
    if tuple(target.shape) != expected:
        raise ValueError(f"{name}: target of shape {tuple(target.shape)} does not fit input of "
                         f"shape {tuple(input.shape)} (expected target shape {expected})")
    return flat, target.numpy().astype(np.int64).reshape(-1), expected


def _class_weight(name, weight, input, c):
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        weight = Tensor(np.asarray(weight, dtype=input.dtype), backend=input.backend)
    if tuple(weight.shape) != (c,):
        raise ValueError(f"{name}: weight must have shape ({c},) for {c} classes, got "
                         f"{tuple(weight.shape)}")
    return weight


def _picked(name, flat, targets, ignore_index, weight):
    """(-log-prob of each target, scaled by its class weight; 0 where ignored, per
    position) and the weights' total over the positions that count."""
    n, c = flat.shape
    counted = targets != ignore_index
    bad = counted & ((targets < 0) | (targets >= c))
    if bad.any():
        found = targets[bad]
        raise IndexError(f"{name}: target {int(found[0])} is out of bounds for {c} classes "
                         f"(targets must be in [0, {c - 1}] or ignore_index={ignore_index})")
    safe = np.where(counted, targets, 0)
    b = flat.backend
    picked = _fn.gather(flat, 1, Tensor(safe.reshape(-1, 1), backend=b)).reshape(-1)
    mask = Tensor(counted.astype(flat.dtype), backend=b)
    if weight is None:
        w = mask
    else:
        w = _fn.embedding(weight.detach().reshape(-1, 1), Tensor(safe, backend=b)).reshape(-1) \
            * mask
    return -(picked * w), w


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """-input[n, target[n]] · weight[target[n]], input holding log-probabilities (N, C)
    (or (C,), or (N, C, d1, ...)); 'mean' divides by the total weight of the targets that
    are not ignore_index (NaN when every target is ignored, as torch)."""
    reduction = _reduction("nll_loss", size_average, reduce, reduction)
    return _nll_loss("nll_loss", input, target, weight, ignore_index, reduction)


def _nll_loss(name, input, target, weight, ignore_index, reduction):
    flat, targets, shape = _classes_last(name, input, target)
    weight = _class_weight(name, weight, input, flat.shape[1])
    losses, w = _picked(name, flat, targets, ignore_index, weight)
    if reduction == "none":
        return losses.reshape(shape) if shape else losses.reshape(())
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / w.sum()


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits `input` (N, C) (or (C,), or (N, C, d1, ...)) against class
    indices (int, shape (N,) ...) or class probabilities (float, the input's shape), with
    torch's weight, ignore_index, reduction and label_smoothing."""
    reduction = _reduction("cross_entropy", size_average, reduce, reduction)
    _tensor(input, "cross_entropy")
    smoothing = _number("cross_entropy", "label_smoothing", label_smoothing, 0.0, 1.0)
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must be (C,), (N, C) or (N, C, d1, ...), got a "
                         "0-d tensor")
    class_dim = 0 if input.ndim == 1 else 1
    c = input.shape[class_dim]
    weight = _class_weight("cross_entropy", weight, input, c)
    probabilities = (isinstance(target, Tensor) and target.dtype.kind == "f") or (
        not isinstance(target, Tensor) and np.asarray(target).dtype.kind == "f")
    if probabilities:
        return _cross_entropy_soft(input, _like(target, input), weight, reduction, smoothing,
                                   class_dim)
    if (input.ndim == 2 and weight is None and smoothing == 0 and reduction != "none"
            and input.shape[0] > 0):
        t = target if isinstance(target, Tensor) else Tensor(np.asarray(target),
                                                             backend=input.backend)
        host = t.numpy() if t.dtype.kind in "iu" else None
        if host is not None and host.shape == (input.shape[0],) and host.min() >= 0 \
                and host.max() < c and not (host == ignore_index).any():
            loss = _fn.cross_entropy(input, t.astype(np.int64))  # the fused kernel
            return loss if reduction == "mean" else loss * input.shape[0]
    logp = _fn.log_softmax(input, class_dim)
    nll = _nll_loss("cross_entropy", logp, target, weight, ignore_index, reduction)
    if smoothing == 0:
        return nll
    flat, targets, shape = _classes_last("cross_entropy", logp, target)
    counted = Tensor((targets != ignore_index).astype(input.dtype), backend=input.backend)
    per = -(flat * weight.reshape(1, -1)).sum(1) if weight is not None else -flat.sum(1)
    per = per * counted
    if reduction == "none":
        smooth = per.reshape(shape) if shape else per.reshape(())
    elif reduction == "sum":
        smooth = per.sum()
    elif weight is not None:
        safe = np.where(targets != ignore_index, targets, 0)
        wsum = (_fn.embedding(weight.detach().reshape(-1, 1), Tensor(safe, backend=input.backend))
                .reshape(-1) * counted).sum()
        smooth = per.sum() / wsum
    else:
        smooth = per.sum() / counted.sum()
    return nll * (1 - smoothing) + smooth * (smoothing / c)


def _cross_entropy_soft(input, target, weight, reduction, smoothing, class_dim):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: class-probability target of shape "
                         f"{tuple(target.shape)} must match the input's shape "
                         f"{tuple(input.shape)}")
    c = input.shape[class_dim]
    if target.dtype != input.dtype:
        target = target.astype(input.dtype)
    if smoothing > 0:
        target = target * (1 - smoothing) + smoothing / c
    logp = _fn.log_softmax(input, class_dim)
    terms = logp * target
    if weight is not None:
        terms = terms * weight.reshape((c,) + (1,) * (input.ndim - 1 - class_dim))
    per = -terms.sum(class_dim)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.mean()


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-(t · log x + (1 - t) · log(1 - x)) for probabilities x in [0, 1] (the logs clamped at
    -100, as torch), times weight (broadcast), reduced."""
    reduction = _reduction("binary_cross_entropy", size_average, reduce, reduction)
    _tensor(input, "binary_cross_entropy")
    target = _like(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy: target of shape {tuple(target.shape)} differs "
                         f"from input of shape {tuple(input.shape)}; make them the same size")
    if input.dtype.kind != "f":
        raise TypeError(f"binary_cross_entropy: input must be floating point, got {input.dtype}")
    if target.dtype != input.dtype:
        target = target.astype(input.dtype)
    if _numel(input.shape):
        b = input.backend
        low = float(b.to_numpy(b.min(input.data)))
        high = float(b.to_numpy(b.max(input.data)))
        if not (low >= 0 and high <= 1):
            raise ValueError(f"binary_cross_entropy: all elements of input must be between 0 "
                             f"and 1 (probabilities; use binary_cross_entropy_with_logits for "
                             f"logits), found values in [{low}, {high}]")
    loss = _loss.BinaryCrossEntropy()(input, target)
    if weight is not None:
        loss = loss * _like(weight, input)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target) computed stably from the logits, with
    torch's weight (per element) and pos_weight (per class, broadcast on the last dim)."""
    reduction = _reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    _tensor(input, "binary_cross_entropy_with_logits")
    target = _like(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size "
                         f"{tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    if target.dtype != input.dtype:
        target = target.astype(input.dtype)
    op = _loss.BinaryCrossEntropyWithLogits()
    loss = op(input, target) if pos_weight is None else op(input, target,
                                                            _like(pos_weight, input))
    if weight is not None:
        loss = loss * _like(weight, input)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target · (log target - input) elementwise (input holds log-probabilities; 0 where
    target is 0), reduced: 'batchmean' divides the sum by the batch size."""
    if reduction == "batchmean":
        red = "sum"
    else:
        red = _reduction("kl_div", size_average, reduce, reduction)
    target = _pointwise_target("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        b = target.backend
        positive = b.binary("gt", target.data, 0)
        zero = Tensor._make(b.full((), 0, target.dtype), b)
        one = Tensor._make(b.full((), 1, target.dtype), b)
        log_t = _Where(positive)(_Where(positive)(target, one).log(), zero)
        loss = _Where(positive)(target * (log_t - input), zero)
    out = _reduce(loss, red)
    if reduction == "batchmean" and input.ndim:
        out = out / input.shape[0]
    return out
