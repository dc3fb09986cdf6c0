"""Every op of the foundation catalog: forward against NumPy, gradcheck in float64 on every
backend, gradgradcheck (second order) on the reference backend."""
import numpy as np
import pytest

import opgraph as og
from checks import conv2d_ref, op_table_tests


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def _conv_ref(x, w, b, stride, padding):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w)
    return out + (0 if b is None else b[None, :, None, None])


def _pool_ref(x, k, s):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return np.array([[[[x[a, b, i * s:i * s + k, j * s:j * s + k].max() for j in range(ow)]
                       for i in range(oh)] for b in range(c)] for a in range(n)])


IDX = np.array([[0, 0], [2, 1]])
EMB_IDX = np.array([[0, 2], [2, 2]])
TARGETS = np.array([0, 3, 1])

# name: (function of tensors, NumPy reference of arrays, input shapes, positive inputs?)
CASES = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)], False),
    "add_scalar": (lambda a: 2.5 + a, lambda a: 2.5 + a, [(3,)], False),
    "sub_broadcast": (lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (4,)], False),
    "rsub_scalar": (lambda a: 1 - a, lambda a: 1 - a, [(2, 2)], False),
    "mul_broadcast": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)], False),
    "mul_self": (lambda a: a * a, lambda a: a * a, [(3,)], False),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (1, 4)], True),
    "rdiv_scalar": (lambda a: 1 / a, lambda a: 1 / a, [(3,)], True),
    "floor_divide_broadcast": (lambda a, b: a // b, np.floor_divide, [(3, 4), (4,)], False),
    "remainder_broadcast": (lambda a, b: a % b, np.remainder, [(3, 4), (4,)], False),
    "rmod_scalar": (lambda a: 2.5 % a, lambda a: np.remainder(2.5, a), [(3,)], True),
    "fmod_broadcast": (og.fmod, np.fmod, [(3, 4), (1, 4)], False),
    "pow_int": (lambda a: a ** 3, lambda a: a ** 3, [(3, 4)], False),
    "pow_float": (lambda a: a ** 1.5, lambda a: a ** 1.5, [(3, 4)], True),
    "pow_tensor": (lambda a, b: a ** b, lambda a, b: a ** b, [(3,), (3,)], True),
    "pow_tensor_broadcast": (lambda a, b: a ** b, lambda a, b: a ** b, [(2, 3), (3,)], True),
    "rpow_scalar_base": (lambda b: 2.0 ** b, lambda b: 2.0 ** b, [(3,)], False),
    "transpose_swap_2d": (lambda a: a.transpose(0, 1), lambda a: a.T, [(3, 4)], False),
    "neg": (lambda a: -a, lambda a: -a, [(3,)], False),
    "exp": (og.exp, np.exp, [(3, 2)], False),
    "log": (og.log, np.log, [(3,)], True),
    "log_eps": (lambda a: og.log_eps(a, 0.1), lambda a: np.log(a + 0.1), [(3,)], True),
    "sin": (og.sin, np.sin, [(4,)], False),
    "cos": (og.cos, np.cos, [(4,)], False),
    "sqrt": (og.sqrt, np.sqrt, [(4,)], True),
    "rsqrt": (og.rsqrt, lambda a: 1 / np.sqrt(a), [(4,)], True),
    "relu": (og.relu, lambda a: np.maximum(a, 0), [(5, 2)], False),
    "sigmoid": (og.sigmoid, lambda a: 1 / (1 + np.exp(-a)), [(5,)], False),
    "tanh": (og.tanh, np.tanh, [(5,)], False),
    "silu": (og.silu, lambda a: a / (1 + np.exp(-a)), [(5,)], False),
    "matmul": (og.matmul, np.matmul, [(3, 4), (4, 2)], False),
    "matmul_transposed": (lambda a, b: a.T @ b.T, lambda a, b: a.T @ b.T, [(4, 3), (2, 4)], False),
    "matmul_batch1": (og.matmul, np.matmul, [(1, 4), (4, 3)], False),
    "batch_matmul": (og.matmul, np.matmul, [(2, 3, 4), (2, 4, 2)], False),
    "batch_matmul_broadcast": (og.matmul, np.matmul, [(2, 1, 3, 4), (3, 4, 2)], False),
    "matvec": (og.matmul, np.matmul, [(3, 4), (4,)], False),
    "vecmat_batched": (og.matmul, np.matmul, [(4,), (2, 4, 3)], False),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), [(3, 4)], False),
    "sum_dim_last_keepdim": (lambda a: a.sum(-1, keepdim=True), lambda a: a.sum(-1, keepdims=True),
                             [(3, 4)], False),
    "sum_dims": (lambda a: og.sum(a, (0, 2)), lambda a: a.sum((0, 2)), [(2, 3, 4)], False),
    "mean_dim": (lambda a: a.mean(1), lambda a: a.mean(1), [(3, 4)], False),
    "mean_keepdim": (lambda a: a.mean((0, -1), keepdim=True), lambda a: a.mean((0, 2), keepdims=True),
                     [(2, 3, 4)], False),
    "max_dim": (lambda a: a.max(-1).values, lambda a: a.max(-1), [(3, 4)], False),
    "reshape": (lambda a: a.reshape(-1, 2), lambda a: a.reshape(-1, 2), [(3, 4)], False),
    "reshape_noncontiguous": (lambda a: a.T.reshape(12), lambda a: a.T.reshape(12), [(3, 4)], False),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)], False),
    "transpose_swap": (lambda a: og.transpose(a, (0, 2, 1)) * 1, lambda a: a.transpose(0, 2, 1),
                       [(2, 3, 4)], False),
    "index_slices": (lambda a: a[1:, ::2, 0], lambda a: a[1:, ::2, 0], [(3, 4, 2)], False),
    "index_ellipsis_none": (lambda a: a[..., None, 1], lambda a: a[..., None, 1], [(3, 4)], False),
    "index_int_array_repeats": (lambda a: a[np.array([0, 0, 2])], lambda a: a[np.array([0, 0, 2])],
                                [(3, 4)], False),
    "cat": (lambda a, b: og.cat([a, b], -1), lambda a, b: np.concatenate([a, b], -1),
            [(2, 3), (2, 2)], False),
    "cat_transposed": (lambda a, b: og.cat([a.T, b], 0), lambda a, b: np.concatenate([a.T, b], 0),
                       [(3, 2), (1, 3)], False),
    "chunk_one_used": (lambda a: og.chunk(a, 3, 1)[0] * 2, lambda a: a[:, :2] * 2, [(2, 5)], False),
    "chunk_last_used": (lambda a: og.chunk(a, 3, -1)[2], lambda a: a[:, 4:], [(2, 5)], False),
    "chunk_all": (lambda a: og.chunk(a, 2, 0), lambda a: (a[:2], a[2:]), [(3, 2)], False),
    "gather": (lambda a: og.gather(a, 1, og.tensor(IDX, backend=a.backend)), lambda a: np.take_along_axis(a, IDX, 1),
               [(2, 3)], False),
    "gather_dim0_smaller_index": (lambda a: og.gather(a, 0, og.tensor(IDX[:1], backend=a.backend)),
                                  lambda a: np.take_along_axis(a[:, :2], IDX[:1], 0), [(3, 3)], False),
    "embedding_repeats": (lambda w: og.embedding(w, og.tensor(EMB_IDX, backend=w.backend)), lambda w: w[EMB_IDX],
                          [(4, 3)], False),
    "where": (lambda a, b: og.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
              [(3, 4), (4,)], False),
    "softmax_last": (lambda a: og.softmax(a, -1), lambda a: np.exp(a - _logsumexp(a, -1)),
                     [(3, 4)], False),
    "softmax_dim0": (lambda a: og.softmax(a, 0), lambda a: np.exp(a - _logsumexp(a, 0)),
                     [(3, 4)], False),
    "log_softmax": (lambda a: og.log_softmax(a, 1), lambda a: a - _logsumexp(a, 1), [(3, 4)], False),
    "log_softmax_batch1": (lambda a: og.log_softmax(a.T, -1), lambda a: a.T - _logsumexp(a.T, -1),
                           [(4, 1)], False),
    "cross_entropy": (lambda a: og.cross_entropy(a, og.tensor(TARGETS, backend=a.backend)),
                      lambda a: -(a - _logsumexp(a, 1))[np.arange(3), TARGETS].mean(), [(3, 4)], False),
    "cross_entropy_batch1": (lambda a: og.cross_entropy(a, og.tensor([2], backend=a.backend)),
                             lambda a: -(a - _logsumexp(a, 1))[0, 2], [(1, 4)], False),
    "conv2d_bias_stride_pad": (lambda x, w, b: og.conv2d(x, w, b, stride=2, padding=1),
                               lambda x, w, b: _conv_ref(x, w, b, 2, 1),
                               [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], False),
    "conv2d_batch1": (lambda x, w: og.conv2d(x, w), lambda x, w: _conv_ref(x, w, None, 1, 0),
                      [(1, 1, 4, 4), (2, 1, 2, 2)], False),
    # stride 1, one group: the Numba-CPU backend's direct convolution
    "conv2d_pad_dilation": (lambda x, w, b: og.nn.functional.conv2d(x, w, b, padding=(2, 1),
                                                                 dilation=(2, 1)),
                            lambda x, w, b: conv2d_ref(x, w, b, padding=(2, 1), dilation=(2, 1)),
                            [(2, 3, 6, 5), (4, 3, 3, 2), (4,)], False),
    "conv2d_wide_padding_1x2": (lambda x, w: og.conv2d(x, w, padding=2),
                                lambda x, w: conv2d_ref(x, w, padding=(2, 2)),
                                [(2, 5, 3, 2), (3, 5, 1, 2)], False),
    "conv2d_1x1": (lambda x, w: og.conv2d(x, w), lambda x, w: conv2d_ref(x, w),
                   [(2, 5, 3, 2), (3, 5, 1, 1)], False),
    "conv2d_transposed_input": (lambda x, w, b: og.conv2d(x.transpose(0, 1, 3, 2), w, b,
                                                          padding=1),
                                lambda x, w, b: conv2d_ref(x.transpose(0, 1, 3, 2), w, b,
                                                           padding=(1, 1)),
                                [(1, 2, 5, 4), (5, 2, 3, 3), (5,)], False),
    "max_pool2d": (lambda x: og.max_pool2d(x, 2), lambda x: _pool_ref(x, 2, 2), [(2, 2, 4, 5)], False),
    "max_pool2d_overlapping": (lambda x: og.max_pool2d(x, 2, 1), lambda x: _pool_ref(x, 2, 1),
                               [(1, 2, 4, 4)], False),
}


test_forward_matches_numpy, test_gradcheck, test_gradgradcheck = op_table_tests(CASES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, backend):
    x = og.tensor(np.ones((2, 3)), dtype=dtype, backend=backend, requires_grad=True)
    for y in [x * 2.0, 2.0 / x, x ** 2, x.exp(), og.softmax(x, -1), x @ x.T, x.sum(), x.mean(0),
              og.log_eps(x, 1e-3), x + np.ones(3), og.cross_entropy(x, og.tensor([0, 2], backend=backend))]:
        assert y.dtype == dtype, y
    y = (x * 3.0).sum()
    y.backward()
    assert x.grad.dtype == dtype


def test_max_pool_ties_go_to_first_maximum(backend):
    x = og.tensor(np.ones((1, 1, 4, 4)), requires_grad=True, dtype=np.float64, backend=backend)
    og.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_ties_go_to_first(backend):
    x = og.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True, backend=backend)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_cross_entropy_is_stable_for_huge_logits(backend):
    logits = og.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True, backend=backend)
    loss = og.cross_entropy(logits, og.tensor([0, 1], backend=backend))
    loss.backward()
    assert np.isfinite(loss.item()) and abs(loss.item() - np.log(2) / 2) < 1e-3
    g = logits.grad.numpy()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0, 0, 0], [0, -0.25, 0.25]], atol=1e-6)


def test_chunk_sizes_follow_torch(backend):
    x = og.tensor(np.arange(10.0), backend=backend)
    assert [c.shape[0] for c in og.chunk(x, 3)] == [4, 4, 2]
    assert [c.shape[0] for c in og.chunk(x, 4)] == [3, 3, 3, 1]
    assert [c.shape[0] for c in og.chunk(x, 20)] == [1] * 10


def test_embedding_repeated_indices_accumulate(backend):
    w = og.tensor(np.zeros((3, 2)), requires_grad=True, backend=backend)
    og.embedding(w, og.tensor([1, 1, 1, 2], backend=backend)).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0], [3, 3], [1, 1]])
