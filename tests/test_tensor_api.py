"""The Tensor methods and top-level functions a PyTorch user reaches for first: size(),
numel(), clamp, maximum, min/max with indices, var/std, logsumexp, masked_fill, split,
index_select, scatter, boolean-mask indexing, arange, linspace, eye, *_like, manual_seed,
dtype names. Forward against NumPy, gradcheck in float64 on every backend, gradgradcheck
on the reference backend, and torch's edge-case behaviour (ties, negative dims, 0-d, empty)."""
import math
import warnings

import numpy as np
import pytest

import opgraph as og
from checks import op_table_tests

IDX = np.array([[0, 2, 2], [1, 0, 1]])          # repeats: for gathers and scatter-adds
PERM = np.array([[2, 0], [1, 2]])               # no repeat within a row: scatter is exact
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
ROWS = np.array([True, False, True])


def _scatter_ref(a, index, src, dim):
    out = a.copy()
    for pos in np.ndindex(*index.shape):
        target = list(pos)
        target[dim] = index[pos]
        out[tuple(target)] = src[pos]
    return out


def _scatter_add_ref(a, index, src, dim):
    out = a.copy()
    for pos in np.ndindex(*index.shape):
        target = list(pos)
        target[dim] = index[pos]
        out[tuple(target)] += src[pos]
    return out


def _lse(a, axis, keepdims=False):
    m = a.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _const(a, x):
    return og.tensor(a, backend=x.backend)


# name: (function of tensors, NumPy reference of arrays, input shapes, positive inputs?)
CASES = {
    "maximum_broadcast": (og.maximum, np.maximum, [(3, 4), (4,)], False),
    "minimum_broadcast": (lambda a, b: a.minimum(b), np.minimum, [(2, 1, 3), (4, 3)], False),
    "max_of_two": (lambda a, b: og.max(a, b), np.maximum, [(3,), (3,)], False),
    "clamp_both": (lambda a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [(3, 4)], False),
    "clamp_min_only": (lambda a: og.clamp(a, min=0.1), lambda a: np.maximum(a, 0.1), [(5,)], False),
    "clip_max_only": (lambda a: a.clip(max=-0.2), lambda a: np.minimum(a, -0.2), [(5,)], False),
    "clamp_tensors": (lambda a, lo, hi: og.clamp(a, lo, hi),
                      lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi), [(3, 4), (4,), (3, 1)],
                      False),
    "clamp_tensor_min_only": (lambda a, lo: og.clamp(a, min=lo), np.maximum, [(3, 4), (4,)], False),
    "clone": (lambda a: a.clone() * 2, lambda a: a * 2, [(3, 2)], False),
    "t": (lambda a: a.t(), lambda a: a.T, [(3, 4)], False),
    "t_1d": (lambda a: og.t(a) * 1, lambda a: a, [(4,)], False),
    "mm": (og.mm, np.matmul, [(3, 4), (4, 2)], False),
    "max_all": (lambda a: a.max(), lambda a: a.max(), [(3, 4)], False),
    "min_all_keepdim": (lambda a: og.min(a, keepdim=True), lambda a: a.min(keepdims=True),
                        [(3, 4)], False),
    "max_dim_values": (lambda a: a.max(1).values, lambda a: a.max(1), [(3, 4)], False),
    "min_dim_negative_keepdim": (lambda a: a.min(-1, keepdim=True)[0],
                                 lambda a: a.min(-1, keepdims=True), [(2, 3, 4)], False),
    "amax_dims": (lambda a: og.amax(a, (0, 2), keepdim=True), lambda a: a.max((0, 2), keepdims=True),
                  [(2, 3, 4)], False),
    "amin_dim": (lambda a: a.amin(-1), lambda a: a.min(-1), [(3, 4)], False),
    "var_all": (lambda a: a.var(), lambda a: a.var(ddof=1), [(3, 4)], False),
    "var_dim_biased": (lambda a: a.var(1, unbiased=False), lambda a: a.var(1), [(3, 4)], False),
    "var_dims_correction_keepdim": (lambda a: og.var(a, (0, 2), keepdim=True, correction=2),
                                    lambda a: a.var((0, 2), ddof=2, keepdims=True), [(2, 3, 4)],
                                    False),
    "std_dim": (lambda a: a.std(0), lambda a: a.std(0, ddof=1), [(3, 4)], False),
    "std_batch1_biased": (lambda a: a.std(-1, False), lambda a: a.std(-1), [(1, 5)], False),
    "logsumexp_dim": (lambda a: a.logsumexp(1), lambda a: _lse(a, 1), [(3, 4)], False),
    "logsumexp_dims_keepdim": (lambda a: og.logsumexp(a, (0, -1), keepdim=True),
                               lambda a: _lse(a, (0, 2), True), [(2, 3, 4)], False),
    "masked_fill": (lambda a: a.masked_fill(_const(MASK, a), 0.5), lambda a: np.where(MASK, 0.5, a),
                    [(3, 4)], False),
    "masked_fill_broadcast_mask": (lambda a: og.masked_fill(a, _const(MASK[0], a), -1.0),
                                   lambda a: np.where(MASK[0], -1.0, a), [(3, 4)], False),
    "expand_minus_one": (lambda a: a.expand(2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
                         [(3, 1)], False),
    "split_size": (lambda a: og.split(a, 2, 1), lambda a: (a[:, :2], a[:, 2:4], a[:, 4:]),
                   [(3, 5)], False),
    "split_sections_one_used": (lambda a: a.split([1, 3], 0)[1] * 3, lambda a: a[1:] * 3,
                                [(4, 3)], False),
    "index_select_repeats": (lambda a: a.index_select(1, _const([3, 0, 3], a)),
                             lambda a: a[:, [3, 0, 3]], [(3, 4)], False),
    "index_select_dim0_negative": (lambda a: og.index_select(a, -2, _const([2, 1], a)),
                                   lambda a: a[[2, 1]], [(3, 4)], False),
    "scatter": (lambda a, s: og.scatter(a, 1, _const(PERM, a), s),
                lambda a, s: _scatter_ref(a, PERM, s, 1), [(2, 3), (2, 2)], False),
    "scatter_src_larger": (lambda a, s: a.scatter(0, _const(PERM, a), s),
                           lambda a, s: _scatter_ref(a, PERM, s, 0), [(3, 2), (3, 3)], False),
    "scatter_value": (lambda a: a.scatter(1, _const(PERM, a), 1.5),
                      lambda a: _scatter_ref(a, PERM, np.full(PERM.shape, 1.5), 1), [(2, 3)], False),
    "scatter_add_repeats": (lambda a, s: og.scatter_add(a, 1, _const(IDX, a), s),
                            lambda a, s: _scatter_add_ref(a, IDX, s, 1), [(2, 4), (2, 3)], False),
    "scatter_add_src_larger": (lambda a, s: a.scatter_add(0, _const(IDX, a), s),
                               lambda a, s: _scatter_add_ref(a, IDX, s, 0), [(3, 3), (3, 4)], False),
    "mask_index": (lambda a: a[_const(MASK, a)], lambda a: a[MASK], [(3, 4)], False),
    "mask_index_rows_then_slice": (lambda a: a[ROWS, 1:], lambda a: a[ROWS, 1:], [(3, 4)], False),
    "mask_index_after_slice": (lambda a: a[:, _const(MASK[1], a)], lambda a: a[:, MASK[1]],
                               [(3, 4)], False),
    "mask_index_ellipsis": (lambda a: a[..., _const(MASK, a)], lambda a: a[..., MASK],
                            [(2, 3, 4)], False),
}


test_forward_matches_numpy, test_gradcheck, test_gradgradcheck = op_table_tests(CASES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_stays_float32(dtype, backend):
    x = og.tensor(np.arange(6.0).reshape(2, 3), dtype=dtype, backend=backend, requires_grad=True)
    for y in [x.clamp(0.5, 2), og.maximum(x, 1.0), x.max(), x.min(0).values, x.var(1), x.std(),
              x.logsumexp(0), x.masked_fill(x > 2, 0), x.clone(), x.t(), og.split(x, 1, 1)[0],
              x.index_select(1, og.tensor([0, 0], backend=backend)), x[x > 1]]:
        assert y.dtype == dtype, y


# ---------------------------------------------------------------- min / max
def test_max_returns_values_and_indices_like_torch(backend):
    x = og.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], backend=backend)
    out = x.max(1)
    values, indices = out  # a named tuple
    assert type(out).__name__ == "max" and out.values is values and out.indices is indices
    np.testing.assert_array_equal(values.numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])  # the first maximum
    assert indices.dtype == np.int64
    low = x.min(dim=-1, keepdim=True)
    assert low.values.shape == low.indices.shape == (2, 1)
    np.testing.assert_array_equal(low.indices.numpy(), [[0], [2]])
    assert isinstance(x.max(), og.Tensor) and x.max().shape == () and x.max().item() == 3.0
    assert og.min(x).item() == 0.0


def test_max_without_dim_shares_the_gradient_among_ties(backend):
    x = og.tensor([[1.0, 3.0, 3.0], [3.0, 2.0, 0.0]], requires_grad=True, backend=backend)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1 / 3, 1 / 3], [1 / 3, 0, 0]])
    y = og.tensor([2.0, 2.0, 5.0], requires_grad=True, backend=backend)
    og.amin(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.5, 0.5, 0])


def test_max_dim_gradient_goes_to_the_returned_index(backend):
    x = og.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True, backend=backend)
    x.min(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [0, 0, 1]])


def test_min_max_of_0d_and_empty(backend):
    s = og.tensor(2.5, requires_grad=True, backend=backend)
    values, indices = s.max(0)
    assert values.shape == () and indices.item() == 0 and values.item() == 2.5
    values.backward()
    assert s.grad.item() == 1.0
    assert s.min(-1).values.item() == 2.5 and og.argmin(s, 0).item() == 0
    empty = og.zeros(0, 3, backend=backend)
    for call in (lambda: empty.max(), lambda: empty.min(0), lambda: og.argmax(empty)):
        with pytest.raises(ValueError, match="no elements|empty"):
            call()
    assert empty.max(1).values.shape == (0,)  # reducing a non-empty dim of an empty tensor


def test_argmin_first_minimum_and_flattened(backend):
    x = og.tensor([[4.0, 1.0, 1.0], [0.0, 5.0, 0.0]], backend=backend)
    np.testing.assert_array_equal(x.argmin(1).numpy(), [1, 0])
    assert x.argmin().item() == 3 and x.argmin(dim=0, keepdim=True).shape == (1, 3)
    assert og.argmax(x, keepdim=True).shape == (1, 1)


def test_max_min_propagate_nan(backend):
    x = og.tensor([1.0, np.nan, 3.0], backend=backend)
    assert np.isnan(x.max().item()) and np.isnan(og.maximum(x, 0.0).numpy()[1])


# ---------------------------------------------------------------- maximum / clamp
def test_maximum_ties_share_the_gradient(backend):
    a = og.tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
    b = og.tensor([1.0, 5.0, 0.0], requires_grad=True, backend=backend)
    og.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0, 1])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1, 0])


def test_clamp_follows_torch(backend):
    x = og.tensor([-2.0, -0.5, 0.0, 0.5, 2.0, np.nan], requires_grad=True, backend=backend)
    y = x.clamp(-0.5, 0.5)
    np.testing.assert_array_equal(y.numpy(), [-0.5, -0.5, 0.0, 0.5, 0.5, np.nan])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 1, 0, 0])  # the bounds included
    np.testing.assert_array_equal(og.clamp(x, 1.0, -1.0).numpy()[:5], [-1.0] * 5)  # min > max
    ints = og.tensor([-3, 0, 7], backend=backend).clamp(0, 5)
    assert ints.dtype == np.int64 and ints.tolist() == [0, 0, 5]
    with pytest.raises(ValueError, match="at least one"):
        x.clamp()
    with pytest.raises(TypeError, match="min must be a number"):
        x.clamp("0")


def test_clamp_tensor_bounds_gradients(backend):
    x = og.tensor([0.0, 1.0, 2.0, 3.0, 0.0, 1.0], requires_grad=True, backend=backend)
    lo = og.tensor([1.0, 1.0, 1.0, 4.0, 1.0, 1.0], requires_grad=True, backend=backend)
    hi = og.tensor([2.0, 2.0, 2.0, 3.5, 1.0, 1.0], requires_grad=True, backend=backend)
    y = og.clamp(x, lo, hi)  # lo > hi at [3]: it is hi; x < lo = hi at [4]: no gradient (torch)
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0, 2.0, 3.5, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(lo.grad.numpy(), [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hi.grad.numpy(), [0, 0, 0, 1, 0, 0])


# ---------------------------------------------------------------- var / std / logsumexp
def test_var_std_arguments_as_torch(backend):
    a = np.arange(12.0).reshape(3, 4) ** 1.5
    x = og.tensor(a, dtype=np.float64, backend=backend)
    np.testing.assert_allclose(x.var().item(), a.var(ddof=1))
    np.testing.assert_allclose(x.var(False).item(), a.var())          # var(input, unbiased)
    np.testing.assert_allclose(x.var(1, True).numpy(), a.var(1, ddof=1))  # var(dim, unbiased)
    np.testing.assert_allclose(x.std(dim=0, correction=0, keepdim=True).numpy(),
                               a.std(0, keepdims=True))
    with pytest.raises(TypeError, match="not both"):
        x.var(0, unbiased=True, correction=1)
    with pytest.raises(TypeError, match="floating-point"):
        og.tensor([1, 2, 3], backend=backend).var()


def test_var_of_too_few_elements_is_nan_or_inf(backend):
    one = og.tensor([3.0], backend=backend)
    with pytest.warns(UserWarning, match=r"Var: degrees of freedom is <= 0"):  # as torch
        assert np.isnan(one.var().item())
    assert one.var(unbiased=False).item() == 0.0
    with pytest.warns(UserWarning, match=r"(Var|Std): degrees of freedom is <= 0"):
        assert np.isnan(og.tensor(2.0, backend=backend).std().item())  # 0-d
        assert np.isinf(og.tensor([1.0, 2.0], backend=backend).var(correction=2).item())
        assert og.tensor([1.0], backend=backend).var().dtype == np.float32
        assert og.zeros(2, 0, backend=backend).var(1).shape == (2,)


def test_var_and_std_gradients_at_the_edges_as_torch(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NumPy warning on the way
        x = og.tensor([[1.0, 1.0], [2.0, 3.0]], dtype=np.float64, requires_grad=True,
                      backend=backend)
        x.std(1).sum().backward()  # a constant row: std 0, gradient 0 (not NaN)
        np.testing.assert_allclose(x.grad.numpy(), [[0, 0], [-0.5 ** 0.5, 0.5 ** 0.5]])
        for f in (lambda t: t.var(1), lambda t: t.std(1)):  # a dim of length 1: NaN
            x = og.tensor([[1.0], [2.0]], dtype=np.float64, requires_grad=True, backend=backend)
            with pytest.warns(UserWarning, match="degrees of freedom"):
                y = f(x)
            y.sum().backward()
            assert np.isnan(y.numpy()).all() and np.isnan(x.grad.numpy()).all()
    x = og.tensor([[0.3, 1.2, -0.5], [2.0, 2.0, 2.5]], dtype=np.float64, requires_grad=True,
                  backend=backend)
    assert og.gradcheck(lambda t: t.std(1, keepdim=True), [x])
    assert og.gradcheck(lambda t: t.std(correction=0), [x])


def test_logsumexp_is_stable(backend):
    x = og.tensor([[1000.0, 1000.0], [-np.inf, -np.inf], [np.inf, 0.0], [-1000.0, 0.0]],
                  dtype=np.float64, requires_grad=True, backend=backend)
    y = x.logsumexp(1)
    np.testing.assert_allclose(y.numpy(), [1000 + np.log(2), -np.inf, np.inf, 0.0])
    x32 = og.tensor([[88.0, 89.0, 90.0]], backend=backend)  # exp overflows float32
    np.testing.assert_allclose(x32.logsumexp(-1).numpy(), [_lse(np.array([88.0, 89, 90]), 0)],
                               rtol=1e-6)
    z = og.tensor([[0.0, 1.0], [2.0, 2.0]], requires_grad=True, backend=backend)
    z.logsumexp(1).sum().backward()  # the gradient is the softmax
    np.testing.assert_allclose(z.grad.numpy(), [[1 / (1 + np.e), np.e / (1 + np.e)], [0.5, 0.5]],
                               rtol=1e-6)
    assert og.zeros(3, 0, backend=backend).logsumexp(1).tolist() == [-np.inf] * 3


def test_logsumexp_of_infinite_rows_as_torch_without_numpy_warnings(backend):
    rows = [[-np.inf, -np.inf], [np.inf, 1.0], [np.inf, np.inf], [-np.inf, 0.0], [1000.0, 1.0]]
    x = og.tensor(rows, dtype=np.float64, requires_grad=True, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.logsumexp(1)
        y.backward(og.ones(5, dtype=np.float64, backend=backend))
    np.testing.assert_allclose(y.numpy(), [-np.inf, np.inf, np.inf, 0.0, 1000.0])
    # torch.logsumexp's gradient: NaN where the entry equals an infinite result
    np.testing.assert_allclose(x.grad.numpy(), [[np.nan, np.nan], [np.nan, 0.0],
                                                [np.nan, np.nan], [0.0, 1.0], [1.0, 0.0]])


# ---------------------------------------------------------------- shapes and indexing
def test_size_numel_dim(backend):
    x = og.zeros(2, 3, 4, backend=backend)
    assert x.size() == (2, 3, 4) == x.shape and x.size(0) == 2 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3 == x.ndim
    s = og.tensor(1.0, backend=backend)
    assert s.size() == () and s.numel() == 1 and s.dim() == 0
    with pytest.raises(IndexError, match="range"):
        x.size(3)
    with pytest.raises(IndexError, match="no dimensions"):
        s.size(0)
    assert og.zeros(0, 5, backend=backend).numel() == 0


def test_expand_split_index_select_errors(backend):
    x = og.zeros(3, 1, backend=backend)
    assert x.expand(-1, 5).shape == (3, 5) and x.expand(2, 3, 2).shape == (2, 3, 2)
    with pytest.raises(ValueError, match="leading"):
        x.expand(-1, 3, 1)
    with pytest.raises(ValueError):
        x.expand(4, 1)
    y = og.zeros(5, 2, backend=backend)
    assert [p.shape for p in y.split(2)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape for p in og.split(y, [5, 0], 0)] == [(5, 2), (0, 2)]
    with pytest.raises(ValueError, match="add up"):
        y.split([2, 2])
    with pytest.raises(ValueError, match="positive"):
        y.split(0)
    with pytest.raises(ValueError, match="1-D"):
        y.index_select(0, og.tensor([[0]], backend=backend))
    with pytest.raises(ValueError, match="out of range"):
        y.index_select(0, og.tensor([5], backend=backend))
    assert y.index_select(1, og.tensor(1, backend=backend)).shape == (5, 1)  # 0-d index


def test_as_forms_and_contiguous(backend):
    x = og.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, backend=backend)
    big = og.zeros(4, 2, 3, dtype=og.float64, backend=backend)
    assert x.expand_as(big).shape == (4, 2, 3) and x.view_as(og.zeros(6)).shape == (6,)
    assert x.reshape_as(og.zeros(3, 2)).shape == (3, 2) and x.type_as(big).dtype == og.float64
    assert x.t().contiguous().shape == (3, 2) and x.contiguous() is x
    x.expand_as(big).sum().backward()
    assert x.grad.tolist() == [[4.0] * 3] * 2


def test_t_mm_errors(backend):
    with pytest.raises(ValueError, match="<= 2 dims"):
        og.zeros(2, 2, 2, backend=backend).t()
    with pytest.raises(ValueError, match="2-D"):
        og.mm(og.zeros(2, 2, backend=backend), og.zeros(2, backend=backend))
    assert og.tensor(3.0, backend=backend).t().item() == 3.0


def test_scatter_errors_and_dtypes(backend):
    x = og.zeros(2, 3, backend=backend)
    with pytest.raises(ValueError, match="does not fit"):
        x.scatter(1, og.tensor([[0], [1], [2]], backend=backend), og.ones(3, 1, backend=backend))
    with pytest.raises(ValueError, match="out of range"):
        x.scatter(1, og.tensor([[3]], backend=backend), 1.0)
    with pytest.raises(TypeError, match="dtype"):
        x.scatter_add(1, og.tensor([[0]], backend=backend),
                      og.ones(1, 1, dtype=np.float64, backend=backend))
    ints = og.zeros(3, dtype=np.int64, backend=backend).scatter_add(
        0, og.tensor([0, 0, 2], backend=backend), og.tensor([1, 2, 3], backend=backend))
    assert ints.tolist() == [3, 0, 3]


def test_boolean_mask_indexing(backend):
    a = np.arange(12.0).reshape(3, 4)
    x = og.tensor(a, requires_grad=True, backend=backend)
    picked = x[x > 4.5]
    np.testing.assert_array_equal(picked.numpy(), a[a > 4.5])
    (picked * picked).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(a > 4.5, 2 * a, 0))
    assert x[og.zeros(3, 4, dtype=np.bool_, backend=backend)].shape == (0,)
    assert x[[True, False, True]].shape == (2, 4)  # a list of bools is a mask too
    np.testing.assert_array_equal(x[:, np.array([False, True, True, False])].numpy(), a[:, 1:3])
    with pytest.raises(IndexError, match="shape of the mask"):
        x[og.ones(4, dtype=np.bool_, backend=backend)]
    with pytest.raises(IndexError, match="must be integers"):
        x[og.tensor([0.0, 1.0], backend=backend)]


# ---------------------------------------------------------------- top level
def test_arange_linspace_eye_follow_torch():
    assert og.arange(5).dtype == np.int64 and og.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert og.arange(1, 7, 2).tolist() == [1, 3, 5] and og.arange(5, 0, -2).tolist() == [5, 3, 1]
    r = og.arange(0, 1, 0.25)
    assert r.dtype == np.float32 and r.tolist() == [0, 0.25, 0.5, 0.75]
    assert og.arange(0, 1, 0.1).shape == (10,) and og.arange(3, dtype=og.float64).dtype == og.float64
    assert og.arange(2, 2).shape == (0,)
    for bad in [(0, 5, 0), (5, 0, 1)]:
        with pytest.raises(ValueError):
            og.arange(*bad)
    np.testing.assert_allclose(og.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert og.linspace(-1, 1, 1).tolist() == [-1] and og.linspace(0, 1, 0).shape == (0,)
    assert og.linspace(2, 3, 4, dtype=og.float64).numpy()[-1] == 3.0
    np.testing.assert_array_equal(og.eye(3).numpy(), np.eye(3))
    assert og.eye(2, 3, dtype=og.int64).tolist() == [[1, 0, 0], [0, 1, 0]]


def test_like_functions_keep_shape_dtype_backend(backend):
    x = og.tensor(np.ones((2, 3)), dtype=np.float64, backend=backend)
    for y in [og.zeros_like(x), og.ones_like(x), og.full_like(x, 7), og.randn_like(x),
              og.rand_like(x)]:
        assert y.shape == (2, 3) and y.dtype == np.float64 and y.backend is x.backend
    assert og.full_like(x, 7).numpy().tolist() == [[7.0] * 3] * 2
    assert og.zeros_like(x, dtype=og.int64).dtype == np.int64
    assert og.ones_like(x, requires_grad=True).requires_grad
    r = og.rand_like(x).numpy()
    assert ((0 <= r) & (r < 1)).all()
    with pytest.raises(TypeError, match="floating-point"):
        og.randn_like(og.zeros(2, dtype=og.int64))


def test_manual_seed_seeds_every_unseeded_sampler():
    def draw():
        return (og.randn(3).numpy(), og.rand(2).numpy(), og.randn_like(og.zeros(2)).numpy(),
                og.nn.Linear(2, 2).weight.numpy(), og.zeros(4).uniform_().numpy(),
                og.nn.Dropout(0.5)(og.ones(8)).numpy())
    og.manual_seed(123)
    first = draw()
    og.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(draw()[0], first[0])
    og.manual_seed(-1)  # negative seeds wrap around, as torch
    with pytest.raises(TypeError):
        og.manual_seed(1.5)


def test_dtype_names_and_inference_mode():
    assert og.float32 == np.float32 and og.float64 is np.dtype(np.float64)
    assert og.int64 == np.int64 and og.long is og.int64 and og.double is og.float64
    assert og.bool == np.bool_ and og.int32 == np.int32 and og.float is og.float32
    x = og.zeros(2, dtype=og.float64)
    assert x.dtype is og.float64 and x.to(og.float32).dtype == og.float32
    w = og.ones(2, requires_grad=True)
    with og.inference_mode():
        assert not (w * 2).requires_grad
    with og.inference_mode(False):
        assert (w * 2).requires_grad

    @og.inference_mode
    def f():
        return w * 2

    @og.inference_mode()
    def g():
        return w * 2
    assert not f().requires_grad and not g().requires_grad
    assert "bool" not in og.__all__ and "float32" not in og.__all__  # import * keeps builtins


# ---------------------------------------------------------------- Python's conversions
def test_int_index_float_bool_format_as_torch():
    t = og.tensor
    assert int(t(2.7)) == 2 and int(t([-2.7])) == -2 and int(t(True)) == 1
    assert int(t(2.5, requires_grad=True)) == 2
    assert list(range(t(3))) == [0, 1, 2] and [10, 20, 30][t(1)] == 20
    assert [1, 2, 3, 4][t(1):t([3])] == [2, 3] and hex(t(255)) == "0xff"
    assert f"{t(2.5):.2f}" == "2.50" and og.zeros(t(3)).shape == (3,)
    assert [v.item() for v in t([4.0, 5.0])] == [4.0, 5.0]


@pytest.mark.parametrize("call, error, match", [
    (lambda: int(og.tensor([1, 2])), ValueError, r"int: only one-element tensors"),
    (lambda: float(og.tensor([])), ValueError, r"float: only one-element tensors .* \(0,\)"),
    (lambda: bool(og.tensor([1.0, 2.0])), RuntimeError, r"bool: .* 2 values is ambiguous"),
    (lambda: bool(og.tensor([])), RuntimeError, r"no values is ambiguous"),
    (lambda: range(og.tensor(3.0)), TypeError, r"only integer tensors of a single element"),
    (lambda: [1, 2][og.tensor([0, 1])], TypeError, r"only integer tensors of a single element"),
    (lambda: list(og.tensor(1.0)), TypeError, r"iteration over a 0-d tensor"),
    (lambda: og.zeros(og.tensor(2.5)), TypeError, r"only integer tensors"),  # not cut to 2
    (lambda: og.ones(4).chunk(og.tensor(2.0)), TypeError, r"only integer tensors"),
    (lambda: og.ones(1).expand(og.tensor(2.0)), TypeError, r"only integer tensors"),
])
def test_conversion_errors_as_torch(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_floor_divide_and_remainder_follow_python_and_fmod_c():
    pairs = [(a, b) for a in (-7, -6, -1, 0, 1, 6, 7) for b in (-4, -3, -1, 1, 3, 4)]
    a = og.tensor([p[0] for p in pairs])
    b = og.tensor([p[1] for p in pairs])
    assert (a // b).numpy().tolist() == [x // y for x, y in pairs]
    assert (a % b).numpy().tolist() == [x % y for x, y in pairs]
    assert og.fmod(a, b).numpy().tolist() == [int(math.fmod(x, y)) for x, y in pairs]
    assert (a // b).dtype == (a % b).dtype == np.int64
    af, bf = a.float() + 0.5, b.float()
    np.testing.assert_array_equal((af // bf).numpy(), [(x + 0.5) // y for x, y in pairs])
    np.testing.assert_array_equal((af % bf).numpy(), [(x + 0.5) % y for x, y in pairs])
    np.testing.assert_array_equal(af.fmod(bf).numpy(), [math.fmod(x + 0.5, y) for x, y in pairs])
    # reflected, scalar and small integer dtypes
    assert (7 // og.tensor([2, -2])).numpy().tolist() == [3, -4]
    assert (7 % og.tensor([2, -2])).numpy().tolist() == [1, -1]
    u = og.tensor([7, 200], dtype=np.uint8)
    assert (u // 2).dtype == (u % 3).dtype == np.uint8
    assert (u // 2).numpy().tolist() == [3, 100] and (u % 3).numpy().tolist() == [1, 2]
    # float division by zero: inf / nan, without warnings (integers: ZeroDivisionError)
    z = og.tensor([1.0, -1.0, 0.0]) // 0
    assert z.numpy()[0] == np.inf and z.numpy()[1] == -np.inf and np.isnan(z.numpy()[2])
    assert np.isnan((og.tensor([1.0]) % 0).numpy()).all()


def test_in_place_floor_divide_and_remainder():
    x = og.tensor([7, -7])
    x //= 2
    assert x.numpy().tolist() == [3, -4]
    x %= 3
    assert x.numpy().tolist() == [0, 2] and x.dtype == np.int64
    y = og.tensor([5.5, -5.5])
    y.remainder_(2.0)
    np.testing.assert_array_equal(y.numpy(), [1.5, 0.5])
    y.fmod_(-1.0)
    np.testing.assert_array_equal(y.numpy(), [0.5, 0.5])


def test_remainder_and_fmod_gradients_by_hand():
    a = og.tensor([5.5, -5.5, 1.0], dtype=np.float64, requires_grad=True)
    b = og.tensor([2.0, 2.0, -0.3], dtype=np.float64, requires_grad=True)
    (a % b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1, 1, 1])
    np.testing.assert_array_equal(b.grad.numpy(), [-2, 3, 4])  # -floor(a / b)
    a.grad = b.grad = None
    og.fmod(a, b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [-2, 2, 3])  # -trunc(a / b)
    a.grad = b.grad = None
    (a // b).sum().backward()
    assert not a.grad.numpy().any() and not b.grad.numpy().any()


def test_squeeze_takes_a_tuple_of_dims():
    x = og.randn(1, 3, 1, 2, seed=0, requires_grad=True)
    assert x.squeeze((0, 2)).shape == (3, 2) and x.squeeze([0, 1]).shape == (3, 1, 2)
    assert x.squeeze(()).shape == x.shape and og.squeeze(x, (-2,)).shape == (1, 3, 2)
    x.squeeze((0, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((1, 3, 1, 2)))
