"""opgraph.nn.functional and the ops behind it (activations, normalization, pooling,
padding, losses): forward against NumPy references written from the definitions,
gradcheck in float64 on every backend, gradgradcheck where twice differentiable."""
import math
import warnings

import numpy as np
import pytest

import opgraph as og
import opgraph.nn.functional as F
from checks import conv2d_ref

_erf = np.vectorize(math.erf)


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def _log_softmax(a, axis):
    return a - _logsumexp(a, axis)


def _gelu(x):
    return 0.5 * x * (1 + _erf(x / np.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _softplus(z):
    return np.logaddexp(0, z)


def _norm(x, axes, eps):
    m = x.mean(axes, keepdims=True)
    return (x - m) / np.sqrt(x.var(axes, keepdims=True) + eps)


def _windows(size, k, s, p, ceil):
    """(start, end) of each pooling window on the padded axis, as torch computes them."""
    o = (size + 2 * p - k + ((s - 1) if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return [(i * s - p, i * s - p + k) for i in range(o)]


def _pool_ref(x, k, s, p, ceil, kind, count_include_pad=True):
    n, c, h, w = x.shape
    rows, cols = _windows(h, k[0], s[0], p[0], ceil), _windows(w, k[1], s[1], p[1], ceil)
    out = np.zeros((n, c, len(rows), len(cols)))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            win = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
            if kind == "max":
                out[:, :, i, j] = win.max((2, 3))
            else:
                if count_include_pad:
                    count = (min(r1, h + p[0]) - r0) * (min(c1, w + p[1]) - c0)
                else:
                    count = win.shape[2] * win.shape[3]
                out[:, :, i, j] = win.sum((2, 3)) / count
    return out


def _adaptive_ref(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean((2, 3))
    return out


TARGETS = np.array([0, 3, 1, -100, 2])
CLASS_W = np.array([0.5, 1.0, 2.0, 0.25])
PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
RUN_MEAN, RUN_VAR = np.array([0.5, -1.0, 0.0]), np.array([1.0, 0.25, 4.0])


def _nll_ref(logp, targets, weight=None, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    safe = np.where(keep, targets, 0)
    w = (np.ones(logp.shape[1]) if weight is None else weight)[safe] * keep
    losses = -logp[np.arange(len(targets)), safe] * w
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / w.sum()


def _ce_ref(logits, targets, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    logp = _log_softmax(logits, 1)
    nll = _nll_ref(logp, targets, weight, ignore_index, reduction)
    keep = targets != ignore_index
    w = np.ones(logits.shape[1]) if weight is None else weight
    per = -(logp * w).sum(1) * keep
    if reduction == "none":
        smooth = per
    elif reduction == "sum":
        smooth = per.sum()
    else:
        smooth = per.sum() / (w[np.where(keep, targets, 0)] * keep).sum()
    return (1 - smoothing) * nll + smoothing / logits.shape[1] * smooth


def _bce_ref(x, t):
    return -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log(1 - x), -100))


def _huber_ref(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


def _t(a, like):
    return og.tensor(a, backend=like.backend)


# name: (function of tensors, NumPy reference, input shapes, input kind, twice differentiable)
# input kind: "normal", "positive", "prob" (in (0.05, 0.95))
CASES = {
    "gelu": (F.gelu, _gelu, [(3, 4)], "normal", True),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), _gelu_tanh, [(3, 4)], "normal", True),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                   [(3, 4)], "normal", True),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)),
            [(3, 4)], "normal", True),
    "softplus": (lambda x: F.softplus(x, 2.0, 3.0),
                 lambda x: np.where(2 * x > 3, x, _softplus(2 * x) / 2), [(3, 4)], "normal", True),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8), [(3, 4)],
                 "normal", True),
    "linear": (F.linear, lambda x, w, b: x @ w.T + b, [(2, 3, 4), (5, 4), (5,)], "normal", True),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-3),
                   lambda x, w, b: _norm(x, (1, 2), 1e-3) * w + b, [(2, 3, 4), (3, 4), (3, 4)],
                   "normal", True),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, 4), lambda x: _norm(x, -1, 1e-5),
                             [(1, 3, 4)], "normal", True),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda x, w, b: _norm(x, (0, 2, 3), 1e-5) * w[:, None, None]
                         + b[:, None, None], [(3, 2, 2, 3), (2,), (2,)], "normal", True),
    "batch_norm_1d": (lambda x: F.batch_norm(x, None, None, training=True, eps=0.1),
                      lambda x: _norm(x, 0, 0.1), [(4, 3)], "normal", True),
    "batch_norm_eval": (lambda x, w: F.batch_norm(x, _t(RUN_MEAN, x), _t(RUN_VAR, x), w),
                        lambda x, w: (x - RUN_MEAN[:, None]) / np.sqrt(RUN_VAR[:, None] + 1e-5)
                        * w[:, None], [(2, 3, 2), (3,)], "normal", True),
    "pad_constant": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5),
                     lambda x: np.pad(x, ((0, 0), (0, 1), (1, 2)), constant_values=0.5),
                     [(2, 3, 2)], "normal", True),
    "pad_crop": (lambda x: F.pad(x, (-1, 2, 1, -1)),
                 lambda x: np.pad(x[:, :-1, 1:], ((0, 0), (1, 0), (0, 2))), [(2, 3, 4)],
                 "normal", True),
    "pad_reflect": (lambda x: F.pad(x, (2, 1), mode="reflect"),
                    lambda x: np.pad(x, ((0, 0), (2, 1)), mode="reflect"), [(2, 4)], "normal",
                    True),
    "pad_replicate": (lambda x: F.pad(x, (1, 2, 2, 0), mode="replicate"),
                      lambda x: np.pad(x, ((0, 0), (2, 0), (1, 2)), mode="edge"), [(1, 2, 3)],
                      "normal", True),
    "pad_circular": (lambda x: F.pad(x, (2, 1), mode="circular"),
                     lambda x: np.pad(x, ((0, 0), (2, 1)), mode="wrap"), [(2, 3)], "normal", True),
    "conv2d_dilation_groups_pairs": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                                 groups=2),
        lambda x, w, b: conv2d_ref(x, w, b, (2, 1), (1, 0), (1, 2), 2),
        [(1, 4, 5, 6), (4, 2, 2, 2), (4,)], "normal", True),
    "conv2d_same": (lambda x, w: F.conv2d(x, w, padding="same"),
                    lambda x, w: conv2d_ref(np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 1))), w, None,
                                           (1, 1), (0, 0), (1, 1), 1),
                    [(1, 2, 4, 4), (3, 2, 2, 3)], "normal", True),
    "conv1d": (lambda x, w: F.conv1d(x, w, stride=2, padding=1),
               lambda x, w: conv2d_ref(x[:, :, None], w[:, :, None], None, (1, 2), (0, 1),
                                      (1, 1), 1)[:, :, 0], [(2, 2, 7), (3, 2, 3)], "normal",
               True),
    "max_pool2d_padding_pairs": (
        lambda x: F.max_pool2d(x, (3, 2), (2, 1), (1, 1)),
        lambda x: _pool_ref(x, (3, 2), (2, 1), (1, 1), False, "max"), [(1, 2, 5, 4)],
        "normal", False),
    "max_pool2d_ceil": (lambda x: F.max_pool2d(x, 2, 2, ceil_mode=True),
                        lambda x: _pool_ref(x, (2, 2), (2, 2), (0, 0), True, "max"),
                        [(1, 1, 5, 3)], "normal", False),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda x: _pool_ref(x, (2, 2), (2, 2), (0, 0),
                                                                     False, "avg"),
                   [(2, 2, 4, 5)], "normal", True),
    "avg_pool2d_padding_ceil": (
        lambda x: F.avg_pool2d(x, (3, 2), (2, 2), (1, 1), ceil_mode=True),
        lambda x: _pool_ref(x, (3, 2), (2, 2), (1, 1), True, "avg"), [(1, 2, 5, 4)], "normal",
        True),
    "avg_pool2d_exclude_pad": (
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        lambda x: _pool_ref(x, (3, 3), (2, 2), (1, 1), False, "avg", False), [(1, 1, 5, 5)],
        "normal", True),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
                            lambda x: _adaptive_ref(x, 2, 3), [(1, 2, 5, 4)], "normal", True),
    "adaptive_avg_pool2d_divisible": (lambda x: F.adaptive_avg_pool2d(x, 2),
                                      lambda x: _adaptive_ref(x, 2, 2), [(1, 2, 4, 4)], "normal",
                                      True),
    "mse_loss": (F.mse_loss, lambda x, y: ((x - y) ** 2).mean(), [(3, 4), (3, 4)], "normal",
                 True),
    "mse_loss_sum": (lambda x, y: F.mse_loss(x, y, reduction="sum"),
                     lambda x, y: ((x - y) ** 2).sum(), [(3, 4), (3, 4)], "normal", True),
    "l1_loss_none": (lambda x, y: F.l1_loss(x, y, reduction="none"), lambda x, y: np.abs(x - y),
                     [(3, 4), (3, 4)], "normal", True),
    "smooth_l1_loss": (lambda x, y: F.smooth_l1_loss(x, y, beta=0.5),
                       lambda x, y: (_huber_ref(x - y, 0.5) / 0.5).mean(), [(3, 4), (3, 4)],
                       "normal", True),
    "huber_loss": (lambda x, y: F.huber_loss(x, y, delta=0.7),
                   lambda x, y: _huber_ref(x - y, 0.7).mean(), [(3, 4), (3, 4)], "normal", True),
    "nll_loss_weight_ignore": (
        lambda x: F.nll_loss(x, _t(TARGETS, x), weight=_t(CLASS_W, x)),
        lambda x: _nll_ref(x, TARGETS, CLASS_W), [(5, 4)], "normal", True),
    "cross_entropy_fused": (lambda x: F.cross_entropy(x, _t(TARGETS[:3], x)),
                            lambda x: _ce_ref(x, TARGETS[:3]), [(3, 4)], "normal", True),
    "cross_entropy_sum": (lambda x: F.cross_entropy(x, _t(TARGETS[:3], x), reduction="sum"),
                          lambda x: _ce_ref(x, TARGETS[:3], reduction="sum"), [(3, 4)], "normal",
                          True),
    "cross_entropy_all_options": (
        lambda x: F.cross_entropy(x, _t(TARGETS, x), weight=_t(CLASS_W, x), ignore_index=-100,
                                  label_smoothing=0.2),
        lambda x: _ce_ref(x, TARGETS, CLASS_W, -100, "mean", 0.2), [(5, 4)], "normal", True),
    "cross_entropy_none_ignore": (
        lambda x: F.cross_entropy(x, _t(np.array([1, 2, 1]), x), ignore_index=1,
                                  reduction="none", label_smoothing=0.1),
        lambda x: _ce_ref(x, np.array([1, 2, 1]), None, 1, "none", 0.1), [(3, 4)], "normal",
        True),
    "cross_entropy_probabilities": (
        lambda x: F.cross_entropy(x, _t(PROBS, x), label_smoothing=0.1),
        lambda x: -(_log_softmax(x, 1) * (PROBS * 0.9 + 0.1 / 4)).sum(1).mean(), [(3, 4)],
        "normal", True),
    "cross_entropy_kdim": (
        lambda x: F.cross_entropy(x, _t(np.array([[0, 2], [1, 1]]), x)),
        lambda x: _ce_ref(x.transpose(0, 2, 1).reshape(-1, 3), np.array([0, 2, 1, 1])),
        [(2, 3, 2)], "normal", True),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(x, t), lambda x, t:
                             _bce_ref(x, t).mean(), [(3, 4), (3, 4)], "prob", True),
    "binary_cross_entropy_weighted": (
        lambda x, t, w: F.binary_cross_entropy(x, t, weight=w, reduction="sum"),
        lambda x, t, w: (_bce_ref(x, t) * w).sum(), [(3, 4), (3, 4), (4,)], "prob", True),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t),
                        lambda x, t: ((1 - t) * x + _softplus(-x)).mean(), [(3, 4), (3, 4)],
                        "normal", True),
    "bce_with_logits_pos_weight": (
        lambda x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p.abs() + 0.5),
        lambda x, t, p: ((1 - t) * x + (1 + (np.abs(p) - 0.5) * t) * _softplus(-x)).mean(),
        [(3, 4), (3, 4), (4,)], "normal", True),
    "kl_div_batchmean": (lambda x: F.kl_div(x.log_softmax(1), _t(PROBS, x),
                                            reduction="batchmean"),
                         lambda x: np.where(PROBS > 0, PROBS * (np.log(np.maximum(PROBS, 1e-300))
                                   - _log_softmax(x, 1)), 0).sum() / 3,
                         [(3, 4)], "normal", True),
}


def _inputs(backend, shapes, kind, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for s in shapes:
        a = rng.standard_normal(s)
        if kind == "positive":
            a = np.abs(a) + 0.5
        elif kind == "prob":
            a = rng.uniform(0.05, 0.95, s)
        arrays.append(a)
    return arrays, [og.tensor(a, dtype=np.float64, requires_grad=True, backend=backend)
                    for a in arrays]


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy(name, backend):
    fn, ref, shapes, kind, _ = CASES[name]
    arrays, tensors = _inputs(backend, shapes, kind)
    got, want = fn(*tensors), ref(*arrays)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name, backend):
    fn, _, shapes, kind, _ = CASES[name]
    _, tensors = _inputs(backend, shapes, kind)
    assert og.gradcheck(fn, tensors)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[4]))
def test_gradgradcheck(name):
    fn, _, shapes, kind, _ = CASES[name]
    _, tensors = _inputs("numpy", shapes, kind)
    assert og.gradgradcheck(fn, tensors)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_stays_float32(dtype, backend):
    x = og.tensor(np.linspace(-2, 2, 12).reshape(3, 4), dtype=dtype, backend=backend,
                  requires_grad=True)
    t = og.tensor(np.array([0, 1, 3]), backend=backend)
    outs = [F.gelu(x), F.gelu(x, approximate="tanh"), F.leaky_relu(x), F.elu(x),
            F.layer_norm(x, (4,)), F.batch_norm(x, None, None, training=True),
            F.cross_entropy(x, t, label_smoothing=0.1), F.mse_loss(x, x * 2),
            F.binary_cross_entropy_with_logits(x, x.sigmoid().detach())]
    for y in outs:
        assert y.dtype == dtype, y
        y.sum().backward()
    assert x.grad.dtype == dtype


def test_gelu_matches_erf_to_float64_precision(backend):
    x = np.concatenate([np.linspace(-9, 9, 181), [0.0, 1e-8, -1e-8, 40.0, -40.0]])
    got = F.gelu(og.tensor(x, backend=backend)).numpy()
    np.testing.assert_allclose(got, _gelu(x), rtol=1e-13, atol=1e-300)
    assert np.isnan(F.gelu(og.tensor([np.nan], backend=backend, dtype=np.float64)).item())


def test_erf_is_a_unary_kernel_of_every_backend(backend):
    x = np.concatenate([np.linspace(-7, 7, 57), [0.0, 1e-9, 30.0, -30.0]])
    got = backend.to_numpy(backend.unary("erf", backend.asarray(x)))
    np.testing.assert_allclose(got, _erf(x), rtol=1e-14, atol=1e-16)
    x32 = x.astype(np.float32)
    got32 = backend.to_numpy(backend.unary("erf", backend.asarray(x32)))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, _erf(x32.astype(np.float64)), rtol=2e-7, atol=1e-7)


def test_cross_entropy_edge_cases():
    logits = og.tensor(np.zeros((3, 4)), requires_grad=True)
    all_ignored = F.cross_entropy(logits, og.tensor([-100, -100, -100]))
    assert np.isnan(all_ignored.item())
    assert np.isnan(F.cross_entropy(og.zeros(0, 4), og.tensor(np.zeros(0, np.int64))).item())
    assert F.cross_entropy(og.zeros(0, 4), og.tensor(np.zeros(0, np.int64)),
                           reduction="sum").item() == 0
    unbatched = F.cross_entropy(og.tensor([1.0, 2.0, 0.5]), og.tensor(1))
    assert unbatched.shape == () and abs(unbatched.item() - (-_log_softmax(
        np.array([1.0, 2.0, 0.5]), 0)[1])) < 1e-6
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):  # as torch
        legacy = F.cross_entropy(logits, og.tensor([0, 1, 2]), reduce=False)
    assert legacy.shape == (3,)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.cross_entropy(og.zeros(2, 3), og.tensor([0, 3])), IndexError,
     r"cross_entropy.*target 3 is out of bounds for 3 classes"),
    (lambda: F.nll_loss(og.zeros(2, 3), og.tensor([0, -1])), IndexError, r"nll_loss.*-1"),
    (lambda: F.cross_entropy(og.zeros(2, 3), og.tensor([0, 1, 2])), ValueError,
     r"cross_entropy.*target of shape \(3,\).*expected target shape \(2,\)"),
    (lambda: F.cross_entropy(og.zeros(2, 3), og.tensor([0, 1]), reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.cross_entropy(og.zeros(2, 3), og.tensor([0, 1]), label_smoothing=1.5),
     ValueError, r"cross_entropy: label_smoothing must be in \[0.0, 1.0\], got 1.5"),
    (lambda: F.cross_entropy(og.zeros(2, 3), og.tensor([0, 1]), weight=og.ones(2)), ValueError,
     r"cross_entropy: weight must have shape \(3,\)"),
    (lambda: F.cross_entropy(og.zeros(2, 3), og.zeros(2, 2)), ValueError,
     r"probability target of shape \(2, 2\) must match"),
    (lambda: F.nll_loss(og.zeros(2, 3), og.zeros(2)), TypeError, r"nll_loss: target must hold "
     r"integer class indices, got dtype float32"),
    (lambda: F.binary_cross_entropy(og.tensor([0.5, 1.5]), og.tensor([0.0, 1.0])), ValueError,
     r"binary_cross_entropy: all elements of input must be between 0 and 1"),
    (lambda: F.binary_cross_entropy(og.tensor([0.5, np.nan]), og.tensor([0.0, 1.0])),
     ValueError, r"between 0 and 1"),
    (lambda: F.binary_cross_entropy(og.tensor([0.5, 0.2]), og.tensor([[0.0, 1.0]])), ValueError,
     r"binary_cross_entropy: target of shape \(1, 2\) differs from input of shape \(2,\)"),
    (lambda: F.binary_cross_entropy_with_logits(og.zeros(3), og.zeros(3, 1)), ValueError,
     r"target size \(3, 1\) must be the same as input size \(3,\)"),
    (lambda: F.mse_loss(og.zeros(3), og.zeros(4)), ValueError, r"mse_loss.*cannot be broadcast"),
    (lambda: F.smooth_l1_loss(og.zeros(3), og.zeros(3), beta=-1), ValueError,
     r"smooth_l1_loss: beta must be in \[0.0, inf\], got -1.0"),
    (lambda: F.linear(og.tensor(2.0), og.ones(3, 1)), ValueError,
     r"linear: input must have at least 1 dim"),
    (lambda: F.linear(og.ones(2, 3), og.ones(4, 2)), ValueError,
     r"linear: input of shape \(2, 3\) has last dim 3, weight of shape \(4, 2\) expects 2"),
    (lambda: F.gelu(og.ones(2), approximate="erf"), ValueError,
     r"GELU: approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: F.dropout(og.ones(2), p=1.5), ValueError, r"dropout: p must be in \[0.0, 1.0\]"),
    (lambda: F.pad(og.ones(2, 2), (1,)), ValueError, r"pad: pad must be a tuple of an even number"),
    (lambda: F.pad(og.ones(2, 2), (2, 0), mode="reflect"), ValueError,
     r"pad: reflect padding \(2, 0\) must be smaller than the dim 1 of size 2"),
    (lambda: F.pad(og.ones(2, 2), (1, 1), mode="wrap"), ValueError, r"pad: mode must be"),
    (lambda: F.pad(og.ones(2, 2), (1, 1, 1, 1, 1, 1)), ValueError,
     r"pad: pad \(1, 1, 1, 1, 1, 1\) pads 3 dims of an input with only 2"),
    (lambda: F.one_hot(og.tensor([0, 3]), 3), IndexError,
     r"one_hot: class values span \[0, 3\], outside \[0, 2\]"),
    (lambda: F.one_hot(og.tensor([0.0, 1.0])), TypeError, r"one_hot: expects an integer tensor"),
    (lambda: F.conv2d(og.ones(1, 3, 4, 4), og.ones(2, 2, 2, 2), groups=2), ValueError,
     r"Conv2D: input with 3 channels and weight \(2, 2, 2, 2\) do not fit groups=2"),
    (lambda: F.conv2d(og.ones(1, 1, 4, 4), og.ones(1, 1, 3, 3), stride=2, padding="same"),
     ValueError, r"conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(og.ones(1, 1, 4, 4), og.ones(1, 1, 3, 3), dilation=(2, 0)), ValueError,
     r"Conv2D: dilation must be a positive int or a pair of positive ints, got \(2, 0\)"),
    (lambda: F.conv2d(og.ones(1, 1, 4, 4), og.ones(1, 1, 3, 3), dilation=2), ValueError,
     r"Conv2D: kernel 3x3 with dilation \(2, 2\) does not fit input 4x4"),
    (lambda: F.max_pool2d(og.ones(1, 1, 4, 4), 2, padding=2), ValueError,
     r"MaxPool2D: padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
    (lambda: F.avg_pool2d(og.ones(1, 1, 2, 2), 3), ValueError,
     r"AvgPool2D: kernel 3 is larger than the input 2x2"),
    (lambda: F.avg_pool2d(og.ones(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"AvgPool2D: divisor_override must be a non-zero int"),
    (lambda: F.adaptive_avg_pool2d(og.ones(1, 1, 4, 4), 0), ValueError,
     r"adaptive_avg_pool2d: output_size must be positive"),
    (lambda: F.layer_norm(og.ones(2, 3), (2,)), ValueError,
     r"layer_norm: normalized_shape \(2,\) does not match the trailing dims of input \(2, 3\)"),
    (lambda: F.layer_norm(og.ones(2, 3), 3, weight=og.ones(2)), ValueError,
     r"LayerNorm: weight must have shape \(3,\) for input \(2, 3\), got \(2,\)"),
    (lambda: F.batch_norm(og.ones(1, 3), None, None, training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training"),
    (lambda: F.batch_norm(og.ones(2, 3), og.zeros(2), og.ones(2)), ValueError,
     r"batch_norm: running_mean must have shape \(3,\)"),
    (lambda: F.batch_norm(og.ones(2, 3), None, None), ValueError,
     r"batch_norm: running_mean and running_var are needed when not training"),
])
def test_bad_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mse_loss_broadcasts_with_a_warning_as_torch():
    x, y = og.zeros(3, 1), og.ones(3)
    with pytest.warns(UserWarning, match=r"mse_loss: using a target size \(3,\) that is "
                                         r"different to the input size \(3, 1\)"):
        loss = F.mse_loss(x, y, reduction="none")
    assert loss.shape == (3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(og.zeros(3), og.ones(3))


def test_batch_norm_updates_the_running_statistics_in_place():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 2))
    mean, var = og.zeros(3, dtype=np.float64), og.ones(3, dtype=np.float64)
    F.batch_norm(og.tensor(x), mean, var, training=True, momentum=0.25)
    np.testing.assert_allclose(mean.numpy(), 0.25 * x.mean((0, 2)))
    np.testing.assert_allclose(var.numpy(), 0.75 + 0.25 * x.var((0, 2), ddof=1))


def test_max_pool2d_return_indices_point_into_the_unpadded_plane(backend):
    x = np.arange(20.0).reshape(1, 1, 4, 5)[:, :, ::-1]
    out, idx = F.max_pool2d(og.tensor(x.copy(), backend=backend), 2, 2, padding=1,
                            return_indices=True)
    flat = x.reshape(-1)
    np.testing.assert_array_equal(flat[idx.numpy().reshape(-1)], out.numpy().reshape(-1))
    assert idx.dtype == np.int64 and idx.shape == out.shape


def _dilated_max_pool_ref(x, k, s, p, d, ceil_mode):
    """Brute force: every window read element by element, the first maximum wins."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * p[0] + 2 * k[0] * d[0], w + 2 * p[1] + 2 * k[1] * d[1]), -np.inf)
    xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    out_hw = []
    for size, kk, ss, pp, dd in zip((h, w), k, s, p, d):
        span = dd * (kk - 1) + 1
        o = (size + 2 * pp - span + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1
        out_hw.append(o)
    out = np.zeros((n, c) + tuple(out_hw))
    idx = np.zeros(out.shape, np.int64)
    for i, j in np.ndindex(*out_hw):
        best = None
        for a, b in np.ndindex(*k):
            r, q = i * s[0] + a * d[0], j * s[1] + b * d[1]
            v = xp[:, :, r, q]
            pos = (r - p[0]) * w + (q - p[1])
            if best is None:
                best, where = v.copy(), np.full(v.shape, pos)
            else:
                better = v > best
                best, where = np.where(better, v, best), np.where(better, pos, where)
        out[:, :, i, j], idx[:, :, i, j] = best, where
    return out, idx


@pytest.mark.parametrize("k, s, p, d, ceil_mode", [
    ((3, 3), (1, 1), (1, 1), (2, 2), False), ((2, 3), (2, 1), (1, 0), (3, 2), True)])
def test_max_pool2d_with_dilation(backend, k, s, p, d, ceil_mode):
    x = np.round(np.random.default_rng(3).standard_normal((2, 2, 7, 8)), 1)  # ties
    out, idx = F.max_pool2d(og.tensor(x, backend=backend), k, s, p, d, ceil_mode,
                            return_indices=True)
    want, want_idx = _dilated_max_pool_ref(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    xs = og.tensor(np.random.default_rng(4).permutation(5 * 6).reshape(1, 1, 5, 6) / 10,
                   requires_grad=True, backend=backend)  # distinct values: a smooth max
    assert og.gradcheck(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode), [xs])
    layer = og.nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(layer(og.tensor(x, backend=backend)).numpy(), want)


def test_pad_is_the_identity_for_zero_amounts_and_one_hot_infers_classes():
    x = og.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(F.pad(x, (0, 0)).numpy(), x.numpy())
    np.testing.assert_array_equal(F.one_hot(og.tensor([2, 0])).numpy(), [[0, 0, 1], [1, 0, 0]])


def test_dropout_keeps_the_expected_fraction_and_scales():
    og.nn.manual_seed(0)
    x = og.ones(10000)
    y = F.dropout(x, 0.3).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert F.dropout(x, 0.3, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_inplace_relu_overwrites_a_tensor_outside_the_graph():
    x = og.tensor([-1.0, 2.0])
    y = F.relu(x, inplace=True)
    assert y is x and x.tolist() == [0.0, 2.0]
    w = og.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.relu(w, inplace=True)  # as torch
    h = w * 3
    out = F.leaky_relu(h, 0.1, inplace=True)  # a non-leaf: rebased in place, as torch
    assert out is h and np.allclose(h.tolist(), [-0.3, 6.0])
    (h * h).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2 * -0.3 * 0.1 * 3, 2 * 6.0 * 3])


def test_python_scalars_keep_every_digit_in_float64():
    x = og.tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal((x + 0.7).numpy(), np.array([1.0, 2.0]) + 0.7)
    np.testing.assert_array_equal((x * 0.1).numpy(), np.array([1.0, 2.0]) * 0.1)
    assert (og.ones(2) * 0.7).dtype == np.float32


@pytest.mark.parametrize("p", [1, 2, 3])
def test_normalize_of_a_zero_row_has_the_gradient_one_over_eps(p):
    # below eps the result is x / eps, so its gradient is 1 / eps there (as torch), not nan
    x = og.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], dtype=np.float64, requires_grad=True)
    w = np.arange(6.0).reshape(2, 3)
    (F.normalize(x, p=p, eps=1e-6) * og.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], w[0] / 1e-6)
    row = np.array([1.0, -2.0, 0.5])  # the other row: finite differences
    def f(r):
        return (r / (np.abs(r) ** p).sum() ** (1 / p) * w[1]).sum()
    numeric = [(f(row + h) - f(row - h)) / 2e-6 for h in np.eye(3) * 1e-6]
    np.testing.assert_allclose(x.grad.numpy()[1], numeric, rtol=1e-6)
