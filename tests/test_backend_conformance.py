"""Kernel-level conformance: every method of `backends.Backend`, on every backend,
against the NumPy reference backend (and, for the kernels with a subtle
contract -- tropical products, pooling, scatter-adds, im2col -- against a
brute-force loop too, so the reference itself is checked).

Inputs go in through `backend.asarray` and come back through
`backend.to_numpy`, so the file runs unchanged on a device backend. Shapes are
small: the CUDA backend runs this file under Numba's CUDA simulator. Integer-
valued floats make ties common, and tied argmax / pooling / tropical indices
must be identical (the lowest index wins). float64 is compared with a tight
tolerance, float32 with one a few ulps wide; kernels whose result is a pure
selection or copy are compared exactly.
"""
import math
import os

import warnings

import numpy as np
import pytest

from opgraph import backends
from opgraph.backends import BINARY_OPS, SEMIRINGS, UNARY_OPS

REF = backends.get("numpy")
DTYPES = [np.float32, np.float64]
LAYOUTS = ["contiguous", "transposed"]
ON_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
TOL = {np.dtype(np.float32): dict(rtol=2e-6, atol=1e-6),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13)}


# ---------------------------------------------------------------- helpers
def put(backend, x, layout="contiguous"):
    """Host array -> backend array equal to x; 'transposed' gives a non-contiguous
    view (a transposed or strided view of a fresh backend array)."""
    x = np.asarray(x)
    if layout == "contiguous" or x.ndim == 0:
        return backend.asarray(np.ascontiguousarray(x))
    if x.ndim == 1:  # every other element of a twice-as-long array
        return backend.getitem(backend.asarray(np.repeat(x, 2)), slice(None, None, 2))
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return backend.transpose(backend.asarray(np.ascontiguousarray(np.transpose(x, axes))), axes)


def get(backend, y):
    return np.asarray(backend.to_numpy(y))


def same(backend, got, want, exact=False):
    """got (backend array) equals want (NumPy array): shape, dtype and values."""
    got = get(backend, got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if exact or want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, **TOL[want.dtype])


def ints(rng, shape, dtype, high=3):
    """Small integer-valued floats: plenty of exact ties."""
    return rng.integers(0, high, size=shape).astype(dtype)


def normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------- creation and transfer
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_asarray_to_numpy_roundtrip(backend, rng, dtype):
    x = (rng.standard_normal((3, 4)) * 5).astype(dtype)
    a = backend.asarray(x)
    assert backend.is_array(a)
    same(backend, a, x, exact=True)
    same(backend, backend.asarray(x.tolist(), dtype=dtype), x, exact=True)
    same(backend, backend.asarray(a), x, exact=True)  # a backend array passes through
    same(backend, backend.asarray(x, dtype=np.float64), x.astype(np.float64), exact=True)


def test_asarray_scalar_and_is_array(backend):
    same(backend, backend.asarray(2.5), np.asarray(2.5), exact=True)
    assert not backend.is_array([1.0, 2.0])
    assert not backend.is_array("text")


@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
def test_full_zeros_ones_arange(backend, dtype):
    same(backend, backend.full((2, 3), 7, dtype), np.full((2, 3), 7, dtype), exact=True)
    same(backend, backend.zeros((4,), dtype), np.zeros(4, dtype), exact=True)
    same(backend, backend.ones((2, 1, 2), dtype), np.ones((2, 1, 2), dtype), exact=True)
    same(backend, backend.zeros((0, 3), dtype), np.zeros((0, 3), dtype), exact=True)
    same(backend, backend.arange(5, dtype), np.arange(5, dtype=dtype), exact=True)


@pytest.mark.parametrize("src,dst", [(np.float32, np.float64), (np.float64, np.float32),
                                     (np.float64, np.int64), (np.int64, np.float32),
                                     (np.bool_, np.float32), (np.float32, np.float32)])
def test_astype(backend, rng, src, dst):
    x = (rng.standard_normal((3, 5)) * 4).astype(src)
    same(backend, backend.astype(put(backend, x, "transposed"), dst), x.astype(dst), exact=True)


# ------------------------------------------------------------ elementwise
def _unary_input(op, rng, dtype, shape=(5, 7)):
    x = rng.standard_normal(shape) * 3
    if op in ("log", "sqrt", "rsqrt"):
        x = np.abs(x) + 0.1
    x[0, :3] = [0.0, -0.0, 1.0] if op not in ("log", "sqrt", "rsqrt") else [0.5, 1.0, 4.0]
    return x.astype(dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary(backend, rng, op, dtype, layout):
    x = _unary_input(op, rng, dtype)
    same(backend, backend.unary(op, put(backend, x, layout)), REF.unary(op, x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["sigmoid", "silu", "tanh", "exp", "relu"])
def test_unary_extremes_stay_finite(backend, dtype, op):
    x = np.array([-1e4, -100.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 100.0, 1e4], dtype=dtype)
    if op == "exp":
        x = x[1:-1] / 10  # keep exp finite in float32
    got = get(backend, backend.unary(op, backend.asarray(x)))
    want = REF.unary(op, x)
    assert np.all(np.isfinite(got))
    same(backend, backend.unary(op, backend.asarray(x)), want)
    if op == "sigmoid":
        assert np.all((got >= 0) & (got <= 1))


def test_unary_large_input_uses_every_element(backend, rng):
    # long enough to be split over threads / blocks
    x = normal(rng, (4099,), np.float32)
    for op in ("sigmoid", "silu", "tanh"):
        same(backend, backend.unary(op, backend.asarray(x)), REF.unary(op, x))


def _binary_inputs(op, rng, dtype):
    a = rng.standard_normal((3, 1, 4)) * 2
    b = rng.standard_normal((5, 4)) * 2
    if op == "pow":
        a, b = np.abs(a) + 0.5, np.abs(b) + 0.5
    if op in ("div", "floor_divide", "remainder", "fmod"):
        b = np.where(np.abs(b) < 0.2, 1.0, b)
    if op in ("gt", "ge", "lt", "le", "eq", "ne", "maximum", "minimum"):
        a, b = np.round(a), np.round(b)  # equal pairs exercise ge/le/eq
    return a.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_broadcast(backend, rng, op, dtype):
    a, b = _binary_inputs(op, rng, dtype)
    want = REF.binary(op, a, b)
    same(backend, backend.binary(op, put(backend, a), put(backend, b, "transposed")), want)
    same(backend, backend.binary(op, put(backend, b), put(backend, a)), REF.binary(op, b, a))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_python_scalar_keeps_dtype(backend, rng, op, dtype):
    a, _ = _binary_inputs(op, rng, dtype)
    s = 2.0 if op != "pow" else 1.5
    left = REF.binary(op, a, s)
    right = REF.binary(op, s, a) if op != "pow" else REF.binary(op, 1.5, a)
    if op not in ("gt", "ge", "lt", "le", "eq", "ne"):
        assert left.dtype == dtype  # the contract, checked on the reference too
    same(backend, backend.binary(op, put(backend, a), s), left)
    same(backend, backend.binary(op, s, put(backend, a)), right)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("op", ["floor_divide", "remainder", "fmod"])
def test_division_sign_rules(backend, op, dtype):
    # every sign pair, exact quotients and not: floor / the divisor's sign / the dividend's
    a = np.array([[-7], [-6], [-1], [0], [1], [6], [7]])
    b = np.array([-4, -3, -1, 1, 3, 4])
    if dtype == np.uint8:
        a, b = np.abs(a), np.abs(b)
    a, b = a.astype(dtype), b.astype(dtype)
    same(backend, backend.binary(op, put(backend, a), put(backend, b)), REF.binary(op, a, b),
         exact=True)
    same(backend, backend.binary(op, put(backend, a), dtype(3)), REF.binary(op, a, dtype(3)),
         exact=True)
    if np.dtype(dtype).kind == "f":  # by zero: inf / nan as NumPy (integers: the op refuses)
        want = REF.binary(op, a, np.zeros_like(b))
        with warnings.catch_warnings():  # the CUDA simulator's Python device functions warn
            warnings.simplefilter("ignore", RuntimeWarning)
            got = backend.binary(op, put(backend, a), put(backend, np.zeros_like(b)))
        same(backend, got, want, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_broadcasts(backend, rng, dtype):
    cond = rng.random((3, 1, 4)) > 0.5
    a = normal(rng, (5, 4), dtype)
    b = normal(rng, (3, 5, 1), dtype)
    same(backend, backend.where(put(backend, cond), put(backend, a, "transposed"), put(backend, b)),
         REF.where(cond, a, b), exact=True)


# ------------------------------------------------------------- reductions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes,keepdims", [(None, False), (None, True), ((0,), False),
                                           ((1, 2), True), ((-1,), False), ((0, 2), False)])
def test_sum(backend, rng, dtype, axes, keepdims):
    x = normal(rng, (3, 4, 5), dtype)
    same(backend, backend.sum(put(backend, x, "transposed"), axes, keepdims),
         REF.sum(x, axes, keepdims))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False)])
def test_max_min_argmax_with_ties(backend, rng, dtype, axis, keepdims):
    x = ints(rng, (4, 6, 5), dtype)
    a = put(backend, x, "transposed")
    same(backend, backend.max(a, axis, keepdims), REF.max(x, axis, keepdims), exact=True)
    same(backend, backend.min(a, axis, keepdims), REF.min(x, axis, keepdims), exact=True)
    if axis is not None:
        want = REF.argmax(x, axis, keepdims)
        assert want.dtype == np.int64
        same(backend, backend.argmax(a, axis, keepdims), want, exact=True)
        # the first maximum: nothing before it is as large
        first = np.argmax(x == np.max(x, axis=axis, keepdims=True), axis=axis)
        np.testing.assert_array_equal(get(backend, backend.argmax(a, axis)), first)


# ----------------------------------------------------------------- layout
@pytest.mark.parametrize("layout", LAYOUTS)
def test_reshape_transpose_broadcast_copy(backend, rng, layout):
    x = normal(rng, (2, 3, 4), np.float32)
    a = put(backend, x, layout)
    same(backend, backend.reshape(a, (6, 4)), x.reshape(6, 4), exact=True)
    same(backend, backend.reshape(a, (4, 6)), x.reshape(4, 6), exact=True)
    same(backend, backend.transpose(a, (2, 0, 1)), x.transpose(2, 0, 1), exact=True)
    same(backend, backend.broadcast_to(put(backend, x[:, :1]), (5, 2, 7, 4)),
         np.broadcast_to(x[:, :1], (5, 2, 7, 4)), exact=True)
    c = backend.copy(backend.transpose(a, (1, 2, 0)))
    same(backend, c, x.transpose(1, 2, 0), exact=True)
    if isinstance(c, np.ndarray):
        assert c.flags.c_contiguous and c.flags.writeable


def test_copy_is_independent(backend, rng):
    x = normal(rng, (3, 3), np.float64)
    a = backend.asarray(x)
    c = backend.copy(a)
    same(backend, backend.binary("add", c, 1.0), x + 1.0, exact=True)
    same(backend, a, x, exact=True)
    for shape in [(), (0, 2), (1,)]:  # a 0-d copy stays 0-d
        z = np.full(shape, 2.5)
        assert tuple(backend.copy(backend.asarray(z)).shape) == shape
        same(backend, backend.copy(backend.asarray(z)), z, exact=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_split(backend, rng, axis):
    xs, layouts = [], ("contiguous", "transposed", "contiguous")
    for k in (1, 3, 2):
        shape = [2, 3, 4]
        shape[axis] = k
        xs.append(normal(rng, tuple(shape), np.float64))
    want = REF.cat(xs, axis)
    same(backend, backend.cat([put(backend, x, lay) for x, lay in zip(xs, layouts)], axis), want,
         exact=True)
    parts = backend.split(backend.asarray(want), [x.shape[axis] for x in xs], axis)
    assert len(parts) == len(xs)
    for part, x in zip(parts, xs):
        same(backend, part, x, exact=True)


@pytest.mark.parametrize("axis1,axis2", [(0, 1), (1, 2), (0, 2)])
def test_diagonal_and_diag_embed(backend, rng, axis1, axis2):
    shape = [3, 3, 3]
    shape[3 - axis1 - axis2] = 2
    x = normal(rng, tuple(shape), np.float64)
    same(backend, backend.diagonal(put(backend, x, "transposed"), axis1, axis2),
         REF.diagonal(x, axis1, axis2), exact=True)
    d = normal(rng, (2, 4), np.float32)
    want = REF.diag_embed(d, axis1, axis2)
    assert want.shape[axis1] == want.shape[axis2] == 4
    np.testing.assert_array_equal(np.diagonal(want, axis1=axis1, axis2=axis2), d)
    assert np.count_nonzero(want) == np.count_nonzero(d)
    same(backend, backend.diag_embed(put(backend, d, "transposed"), axis1, axis2), want,
         exact=True)


# --------------------------------------------------------------- indexing
KEYS = {
    "int": (1,),
    "slices": (slice(None, None, 2), slice(1, 3)),
    "negative_step": (slice(None), slice(None, None, -1)),
    "none_ellipsis": (None, Ellipsis, 1),
    "array": (np.array([2, 0, 2, 1]),),
    "array_2d": (np.array([[0, 2], [2, 2]]),),
    "two_arrays": (np.array([0, 2, 2]), np.array([1, 1, 1])),
    "slice_then_array": (slice(None), np.array([4, 0, 4, 4])),
    "array_then_slice": (np.array([1, 1]), slice(None), slice(None)),
    "negative_index_array": (np.array([-1, 0, -1]),),
    "int_and_array": (2, np.array([0, 0, 3])),
    "mixed_slice_array": (slice(0, 2), np.array([1, 1])),
}


@pytest.mark.parametrize("name", list(KEYS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_getitem_and_index_put_add(backend, rng, name, dtype):
    key = KEYS[name]
    x = normal(rng, (3, 5, 2), dtype)
    want = REF.getitem(x, key)
    same(backend, backend.getitem(put(backend, x, "transposed"), key), want, exact=True)
    values = normal(rng, want.shape, dtype)
    expect = REF.index_put_add(x.shape, key, values)
    same(backend, backend.index_put_add(x.shape, key, put(backend, values)), expect)
    # brute force for the reference: repeated indices accumulate
    brute = np.zeros(x.shape, dtype)
    np.add.at(brute, key, values)
    np.testing.assert_allclose(expect, brute, **TOL[np.dtype(dtype)])


def test_index_put_add_broadcast_values(backend, rng):
    key = (np.array([[0], [2], [0]]), np.array([1, 4]))  # broadcast to (3, 2)
    values = normal(rng, (2, 3), np.float64)  # broadcast over the (3, 2) index block
    expect = REF.index_put_add((3, 5, 3), key, np.broadcast_to(values, (3, 2, 3)))
    same(backend, backend.index_put_add((3, 5, 3), key, backend.asarray(
        np.ascontiguousarray(np.broadcast_to(values, (3, 2, 3))))), expect)


def _gather_index(rng, x_shape, axis, index_shape):
    return rng.integers(0, x_shape[axis], size=index_shape).astype(np.int64)


GATHER_CASES = [((4, 5), 0, (6, 5)), ((4, 5), 1, (4, 7)), ((4, 5), 1, (2, 3)),
                ((3, 4, 5), 1, (3, 6, 5)), ((3, 4, 5), 2, (2, 4, 3)), ((3, 4, 5), 0, (7, 2, 5))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,axis,index_shape", GATHER_CASES)
def test_gather_and_scatter_add(backend, rng, dtype, x_shape, axis, index_shape):
    x = normal(rng, x_shape, dtype)
    index = _gather_index(rng, x_shape, axis, index_shape)
    want = REF.gather(x, axis, index)
    same(backend, backend.gather(put(backend, x, "transposed"), axis, put(backend, index)),
         want, exact=True)
    src = normal(rng, index_shape, dtype)
    expect = REF.scatter_add(x_shape, axis, index, src)
    same(backend, backend.scatter_add(x_shape, axis, put(backend, index, "transposed"),
                                      put(backend, src, "transposed")), expect)
    # brute force for the reference (torch.scatter_add_ semantics)
    brute = np.zeros(x_shape, dtype)
    for pos in np.ndindex(*index_shape):
        target = list(pos)
        target[axis] = index[pos]
        brute[tuple(target)] += src[pos]
    np.testing.assert_allclose(expect, brute, **TOL[np.dtype(dtype)])


def test_scatter_add_src_larger_than_index(backend, rng):
    # torch.scatter_add_ reads only the leading index.shape entries of src
    index = np.array([[0, 0, 2]], dtype=np.int64)
    src = normal(rng, (2, 4), np.float64)
    expect = REF.scatter_add((3, 3), 0, index, src)
    np.testing.assert_array_equal(expect, [[src[0, 0], src[0, 1], 0], [0, 0, 0], [0, 0, src[0, 2]]])
    same(backend, backend.scatter_add((3, 3), 0, put(backend, index), put(backend, src)), expect)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_shape,row_shape", [((7,), (4,)), ((2, 5), (3,)), ((6,), ()),
                                                   ((3, 4), (2, 3))])
def test_take_rows_and_scatter_rows_add(backend, rng, dtype, index_shape, row_shape):
    num_rows = 5
    table = normal(rng, (num_rows,) + row_shape, dtype)
    idx = rng.integers(0, num_rows, size=index_shape).astype(np.int64)
    idx.flat[:2] = 3  # at least one repeat
    same(backend, backend.take_rows(put(backend, table, "transposed"), put(backend, idx)),
         REF.take_rows(table, idx), exact=True)
    src = normal(rng, index_shape + row_shape, dtype)
    expect = REF.scatter_rows_add(num_rows, idx, src)
    assert expect.shape == (num_rows,) + row_shape
    same(backend, backend.scatter_rows_add(num_rows, put(backend, idx), put(backend, src, "transposed")),
         expect)
    brute = np.zeros((num_rows,) + row_shape, dtype)
    for pos in np.ndindex(*index_shape):
        brute[idx[pos]] += src[pos]
    np.testing.assert_allclose(expect, brute, **TOL[np.dtype(dtype)])


def test_scatter_rows_add_unused_rows_stay_zero(backend, rng):
    idx = np.array([7, 7, 7], dtype=np.int64)
    src = np.ones((3, 2), np.float32)
    out = get(backend, backend.scatter_rows_add(9, put(backend, idx), put(backend, src)))
    expect = np.zeros((9, 2), np.float32)
    expect[7] = 3
    np.testing.assert_array_equal(out, expect)


# --------------------------------------------------------- linear algebra
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (3, 4, 5))])
def test_matmul(backend, rng, dtype, sa, sb):
    a, b = normal(rng, sa, dtype), normal(rng, sb, dtype)
    same(backend, backend.matmul(put(backend, a, "transposed"), put(backend, b)), REF.matmul(a, b))


def _tropical_brute(a, b, semiring):
    """Triple loop: the winner is the first l whose value is strictly better."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    c = np.zeros(batch + (n, m), np.result_type(a, b))
    arg = np.zeros(batch + (n, m), np.int64)
    for pos in np.ndindex(*batch):
        for i in range(n):
            for j in range(m):
                vals = [a[pos][i, l] * b[pos][l, j] if semiring == "max_mul"
                        else a[pos][i, l] + b[pos][l, j] for l in range(k)]
                best = 0
                for l in range(1, k):
                    if (vals[l] < vals[best]) if semiring == "min_plus" else (vals[l] > vals[best]):
                        best = l
                c[pos][i, j], arg[pos][i, j] = vals[best], best
    return c, arg


TROPICAL_SHAPES = [((3, 5), (5, 4)), ((1, 1), (1, 1)), ((5, 9), (9, 1)),  # narrow output
                   ((2, 1, 3, 6), (3, 6, 17)), ((4, 7, 2), (2, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("semiring", SEMIRINGS)
@pytest.mark.parametrize("sa,sb", TROPICAL_SHAPES)
def test_tropical_matmul_ties_lowest_index(backend, rng, dtype, semiring, sa, sb):
    a, b = ints(rng, sa, dtype), ints(rng, sb, dtype)  # non-negative: max_mul's domain
    want_c, want_arg = REF.tropical_matmul(a, b, semiring)
    brute_c, brute_arg = _tropical_brute(a, b, semiring)
    np.testing.assert_array_equal(want_c, brute_c)
    np.testing.assert_array_equal(want_arg, brute_arg)
    assert want_arg.dtype == np.int64 and want_c.dtype == dtype
    c, arg = backend.tropical_matmul(put(backend, a, "transposed"), put(backend, b, "transposed"),
                                     semiring)
    same(backend, c, want_c, exact=True)
    same(backend, arg, want_arg, exact=True)


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_tropical_matmul_real_values(backend, rng, semiring):
    a, b = normal(rng, (2, 6, 11), np.float64), normal(rng, (11, 9), np.float64)
    if semiring == "max_mul":
        a, b = np.abs(a), np.abs(b)
    want_c, want_arg = REF.tropical_matmul(a, b, semiring)
    c, arg = backend.tropical_matmul(put(backend, a), put(backend, b), semiring)
    same(backend, c, want_c, exact=True)
    same(backend, arg, want_arg, exact=True)


def test_tropical_matmul_mixed_dtypes_and_infinities(backend):
    a = np.array([[-np.inf, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], np.float32)
    b = np.array([[0.0, 2.0], [5.0, -np.inf], [1.0, 1.0]], np.float64)
    want_c, want_arg = REF.tropical_matmul(a, b, "max_plus")
    np.testing.assert_array_equal(want_arg, [[2, 2], [0, 0]])  # all -inf row: l = 0
    c, arg = backend.tropical_matmul(put(backend, a), put(backend, b), "max_plus")
    same(backend, c, want_c, exact=True)
    same(backend, arg, want_arg, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_tropical_matmul_across_cpu_tiles(backend, rng, dtype, semiring):
    """Shapes that cross the Numba kernel's row / column / depth tiles and its
    4-step unrolling remainders, against the reference. Too large for the simulator."""
    if backend.name == "cuda" and ON_SIMULATOR:
        pytest.skip("too large for the CUDA simulator; the small shapes cover it")
    a, b = ints(rng, (19, 135), dtype, high=4), ints(rng, (135, 515), dtype, high=4)
    want_c, want_arg = REF.tropical_matmul(a, b, semiring)
    c, arg = backend.tropical_matmul(put(backend, a, "transposed"), put(backend, b), semiring)
    same(backend, c, want_c, exact=True)
    same(backend, arg, want_arg, exact=True)


def test_semiring_registry_and_generic_kernel(backend, rng):
    """semiring_kernel: a fast kernel or None; semiring_matmul runs it or the generic
    kernel, for a built-in and for a semiring no backend knows (max-min)."""
    from opgraph.backends.semiring import BUILTIN, Semiring
    widest = Semiring("max_min_conformance", "max", "minimum", -np.inf, np.inf)
    for sr in (BUILTIN["max_plus"], widest):
        kernel = backend.semiring_kernel(sr)
        assert kernel is None or callable(kernel)
    a = ints(rng, (2, 3, 5), np.float64)
    b = ints(rng, (5, 4), np.float64)
    cand = np.minimum(a[..., :, :, None], b[None, None, :, :])
    c, arg = backend.semiring_matmul(put(backend, a), put(backend, b), widest)
    same(backend, c, cand.max(axis=-2), exact=True)
    same(backend, arg, cand.argmax(axis=-2), exact=True)
    want_c, want_arg = REF.tropical_matmul(a, b, "max_plus")
    for c, arg in (backend.semiring_matmul(put(backend, a), put(backend, b), "max_plus"),
                   backend.generic_tropical(put(backend, a), put(backend, b), BUILTIN["max_plus"])):
        same(backend, c, want_c, exact=True)
        same(backend, arg, want_arg, exact=True)


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_tropical_matmul_nan_wins_first(backend, semiring):
    """A NaN candidate wins, the first one (as numpy.max / argmax), on every backend;
    so does inf - inf (max_plus, min_plus) and 0 * inf (max_mul)."""
    a = np.array([[1.0, np.nan, 3.0, np.nan], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[1.0], [1.0], [1.0], [1.0]])
    c, arg = backend.tropical_matmul(put(backend, a), put(backend, b), semiring)
    c, arg = get(backend, c), get(backend, arg)
    assert np.isnan(c[0, 0]) and arg[0, 0] == 1
    assert c[1, 0] == {"max_plus": 5.0, "min_plus": 2.0, "max_mul": 4.0}[semiring]
    bad = np.array([[np.inf, 0.0]]) if semiring == "max_mul" else np.array([[np.inf, -np.inf]])
    other = np.array([[0.0], [np.inf]]) if semiring == "max_mul" else np.array([[-np.inf], [np.inf]])
    c, arg = backend.tropical_matmul(put(backend, bad), put(backend, other), semiring)
    assert np.isnan(get(backend, c)[0, 0]) and get(backend, arg)[0, 0] == 0


@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_tropical_contract_is_the_permuted_product(backend, rng, semiring):
    """tropical_contract (one pairwise step, values only, permutations fused) equals
    transpose + reshape + tropical_matmul, for permuted layouts, size-1 axes, infinities
    and a NaN (whose rule tropical_matmul defines)."""
    cases = [((2, 3, 4), (0, 2, 1), (2, 4, 3), (2, 3, 5), None, (2, 3, 5)),
             ((4, 2, 3), (1, 0, 2), (2, 4, 3), (3, 2, 6), (1, 0, 2), (2, 3, 6)),
             ((2, 1, 2, 2), (3, 1, 0, 2), (2, 2, 2), (2, 2, 3), (0, 1, 2), (2, 2, 3))]
    for sa, perm_a, sa3, sb, perm_b, sb3 in cases:
        for special in (None, -np.inf, np.nan):
            a, b = ints(rng, sa, np.float64), ints(rng, sb, np.float64)
            if special is not None:
                a.reshape(-1)[1] = special if semiring != "max_mul" or special != -np.inf else 0
            at = a if perm_a is None else a.transpose(perm_a)
            bt = b if perm_b is None else b.transpose(perm_b)
            want, _ = REF.tropical_matmul(at.reshape(sa3), bt.reshape(sb3), semiring)
            got = backend.tropical_contract(put(backend, a), put(backend, b), perm_a, sa3,
                                            perm_b, sb3, (sa3[0], sa3[1], sb3[2]), semiring)
            same(backend, got, want, exact=True)


def test_empty_inputs(backend):
    """Zero-sized operands give zero-sized (or all-zero) results, as in NumPy."""
    z = np.zeros((0, 3), np.float64)
    for semiring in SEMIRINGS:
        c, arg = backend.tropical_matmul(put(backend, z), put(backend, np.ones((3, 4))), semiring)
        assert get(backend, c).shape == (0, 4) and get(backend, arg).shape == (0, 4)
    empty_idx = np.zeros((0,), np.int64)
    same(backend, backend.scatter_rows_add(3, put(backend, empty_idx),
                                           put(backend, np.zeros((0, 2), np.float32))),
         np.zeros((3, 2), np.float32))
    same(backend, backend.scatter_add((2, 3), 1, put(backend, np.zeros((2, 0), np.int64)),
                                      put(backend, np.zeros((2, 0), np.float32))),
         np.zeros((2, 3), np.float32))


# ------------------------------------------------ convolution and pooling
def _im2col_brute(x, kh, kw, stride, padding):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    cols = np.zeros((n, c * kh * kw, oh * ow), x.dtype)
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for z in range(ow):
                        cols[:, (ch * kh + i) * kw + j, y * ow + z] = \
                            xp[:, ch, y * stride + i, z * stride + j]
    return cols


CONV_CASES = [((2, 3, 5, 6), 3, 3, 1, 0), ((2, 2, 5, 5), 3, 3, 1, 1), ((1, 2, 7, 6), 3, 2, 2, 1),
              ((2, 1, 6, 6), 2, 2, 2, 0), ((1, 2, 4, 4), 1, 1, 1, 0), ((1, 1, 5, 4), 4, 3, 3, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kh,kw,stride,padding", CONV_CASES)
def test_im2col_col2im(backend, rng, dtype, x_shape, kh, kw, stride, padding):
    x = normal(rng, x_shape, dtype)
    want = REF.im2col(x, kh, kw, stride, padding)
    np.testing.assert_array_equal(want, _im2col_brute(x, kh, kw, stride, padding))
    same(backend, backend.im2col(put(backend, x, "transposed"), kh, kw, stride, padding), want,
         exact=True)
    cols = normal(rng, want.shape, dtype)
    expect = REF.col2im(cols, x_shape, kh, kw, stride, padding)
    same(backend, backend.col2im(put(backend, cols, "transposed"), x_shape, kh, kw, stride,
                                 padding), expect)
    # the reference is the adjoint of im2col: <im2col(x), cols> == <x, col2im(cols)>
    lhs = np.vdot(want.astype(np.float64), cols.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), expect.astype(np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kh,kw,stride,padding,dilation", [
    case + (1,) for case in CONV_CASES] + [
    ((1, 2, 6, 7), 2, 3, (2, 1), (1, 0), (2, 1)), ((2, 1, 5, 5), 3, 3, 1, (0, 2), 2)])
def test_conv_patches_and_adjoint(backend, rng, dtype, x_shape, kh, kw, stride, padding,
                                  dilation):
    # im2col with the batch folded into the columns: (C*kh*kw, N*OH*OW)
    x = normal(rng, x_shape, dtype)
    batched = REF.im2col(x, kh, kw, stride, padding, dilation)
    if dilation == 1:
        np.testing.assert_array_equal(batched, _im2col_brute(x, kh, kw, stride, padding))
    want = batched.transpose(1, 0, 2).reshape(batched.shape[1], -1)
    same(backend, backend.conv_patches(put(backend, x, "transposed"), kh, kw, stride, padding,
                                       dilation), want, exact=True)
    cols = normal(rng, want.shape, dtype)
    expect = REF.col2im(np.ascontiguousarray(
        cols.reshape(want.shape[0], x_shape[0], -1).transpose(1, 0, 2)), x_shape, kh, kw,
        stride, padding, dilation)
    got = backend.conv_patches_adjoint(put(backend, cols, "transposed"), x_shape, kh, kw,
                                       stride, padding, dilation)
    same(backend, got, expect)
    # the same sums in the same order as col2im: bit-identical on the CPU backends
    if backend.name in ("numpy", "numba"):
        np.testing.assert_array_equal(get(backend, got), expect)


def _conv2d_brute(x, w, b, stride, padding, dilation, groups):
    """y and a function giving (dx, dw, db) for dy, by explicit loops over the taps."""
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw_ * (kw - 1) - 1) // sw + 1
    fg = f // groups

    def under(i, j):  # the rows and columns of xp under tap (i, j) of every output
        return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                slice(j * dw_, j * dw_ + sw * (ow - 1) + 1, sw))

    def window(i, j):  # (N, C, OH, OW)
        return xp[(slice(None), slice(None)) + under(i, j)]

    y = np.zeros((n, f, oh, ow))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                y[:, g * fg:(g + 1) * fg] += np.einsum(
                    "nchw,fc->nfhw", window(i, j)[:, g * cg:(g + 1) * cg],
                    w[g * fg:(g + 1) * fg, :, i, j].astype(np.float64))
    if b is not None:
        y += b.reshape(1, f, 1, 1)

    def grads(dy):
        dy = dy.astype(np.float64)
        dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
        for g in range(groups):
            fs, cs = slice(g * fg, (g + 1) * fg), slice(g * cg, (g + 1) * cg)
            for i in range(kh):
                for j in range(kw):
                    dw[fs, :, i, j] = np.einsum("nchw,nfhw->fc", window(i, j)[:, cs], dy[:, fs])
                    dxp[(slice(None), cs) + under(i, j)] += np.einsum(
                        "nfhw,fc->nchw", dy[:, fs], w[fs, :, i, j].astype(np.float64))
        return dxp[:, :, ph:ph + h, pw:pw + wd], dw, dy.sum(axis=(0, 2, 3))
    return y, grads


CONV2D_CASES = [  # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1, True),
    ((3, 2, 7, 6), (5, 2, 3, 2), (1, 1), (1, 1), (1, 1), 1, False),
    ((1, 1, 8, 8), (2, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1, True),    # batch 1, 5x5
    ((2, 3, 9, 7), (3, 3, 3, 3), (1, 1), (2, 1), (2, 1), 1, True),    # dilation
    ((2, 5, 4, 4), (7, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1, True),    # 1x1
    ((2, 2, 3, 3), (3, 2, 3, 3), (1, 1), (3, 3), (1, 1), 1, True),    # padding > kernel reach
    ((2, 4, 7, 6), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2, True),    # groups
    ((1, 2, 7, 6), (3, 2, 3, 2), (2, 1), (1, 0), (1, 2), 1, True),    # stride
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups,bias", CONV2D_CASES)
def test_conv2d_and_backward(backend, rng, dtype, x_shape, w_shape, stride, padding, dilation,
                             groups, bias):
    x, w = normal(rng, x_shape, dtype), normal(rng, w_shape, dtype)
    b = normal(rng, (w_shape[0],), dtype) if bias else None
    want, grads = _conv2d_brute(x, w, b, stride, padding, dilation, groups)
    # sums of up to C·kh·kw products, in whatever order the backend chooses
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    y, saved = backend.conv2d(put(backend, x, "transposed"), put(backend, w), None if b is None
                              else put(backend, b), stride, padding, dilation, groups)
    assert get(backend, y).dtype == dtype
    np.testing.assert_allclose(get(backend, y), want, **tol)
    dy = normal(rng, want.shape, dtype)
    want_dx, want_dw, want_db = grads(dy)
    for keep in (saved, None):  # what conv2d saved, or recomputed
        dx, dw, db = backend.conv2d_backward(put(backend, dy, "transposed"), put(backend, x),
                                             put(backend, w), keep, stride, padding, dilation,
                                             groups, True, bias)
        np.testing.assert_allclose(get(backend, dx), want_dx, **tol)
        np.testing.assert_allclose(get(backend, dw), want_dw, **tol)
        assert get(backend, dx).shape == x_shape and get(backend, dw).shape == w_shape
        if bias:
            np.testing.assert_allclose(get(backend, db), want_db, **tol)
        else:
            assert db is None
    dx, dw, db = backend.conv2d_backward(put(backend, dy), put(backend, x), put(backend, w),
                                         saved, stride, padding, dilation, groups, False, False)
    assert dx is None and db is None
    np.testing.assert_allclose(get(backend, dw), want_dw, **tol)


def _pool_brute(x, kernel, stride):
    n, c, h, w = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    out = np.zeros((n, c, oh, ow), x.dtype)
    idx = np.zeros((n, c, oh, ow), np.int64)
    for b, ch, y, z in np.ndindex(n, c, oh, ow):
        best = None
        for di in range(kernel):
            for dj in range(kernel):
                v = x[b, ch, y * stride + di, z * stride + dj]
                if best is None or v > best:
                    best = v
                    idx[b, ch, y, z] = (y * stride + di) * w + z * stride + dj
        out[b, ch, y, z] = best
    return out, idx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kernel,stride", [((2, 3, 4, 6), 2, 2), ((1, 2, 5, 5), 2, 2),
                                                   ((2, 1, 5, 6), 3, 1), ((1, 2, 7, 7), 3, 2)])
def test_max_pool2d_ties_first_in_window(backend, rng, dtype, x_shape, kernel, stride):
    x = ints(rng, x_shape, dtype, high=2)  # mostly ties
    want_out, want_idx = REF.max_pool2d(x, kernel, stride)
    brute_out, brute_idx = _pool_brute(x, kernel, stride)
    np.testing.assert_array_equal(want_out, brute_out)
    np.testing.assert_array_equal(want_idx, brute_idx)
    assert want_idx.dtype == np.int64
    out, idx = backend.max_pool2d(put(backend, x, "transposed"), kernel, stride)
    same(backend, out, want_out, exact=True)
    same(backend, idx, want_idx, exact=True)



@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2)])
def test_max_pool2d_nan_is_the_maximum_first_nan_wins(backend, rng, kernel, stride):
    # as numpy.argmax: a NaN beats every number and the first NaN of a window wins
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[0, 0, :2, :2] = np.nan  # a window of NaNs only
    want_out, want_idx = REF.max_pool2d(x, kernel, stride)
    flat = x.reshape(2, 3, -1)
    picked = np.take_along_axis(flat, want_idx.reshape(2, 3, -1), 2).reshape(want_out.shape)
    np.testing.assert_array_equal(picked, want_out)
    assert np.isnan(want_out).any() and (want_idx[0, 0, 0, 0] == 0)
    out, idx = backend.max_pool2d(put(backend, x, "transposed"), kernel, stride)
    np.testing.assert_array_equal(get(backend, out), want_out)
    np.testing.assert_array_equal(get(backend, idx), want_idx)


# -------------------------------------------------------------- fused rows
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 1), ((6,), 0),
                                        ((3, 1), 1)])
def test_softmax_log_softmax(backend, rng, dtype, layout, shape, axis):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    a = put(backend, x, layout)
    want = REF.softmax(x, axis)
    same(backend, backend.softmax(a, axis), want)
    same(backend, backend.log_softmax(a, axis), REF.log_softmax(x, axis))
    # the reference against the definition (in float64)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(want, e / e.sum(axis=axis, keepdims=True), **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_are_stable(backend, dtype):
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e4, -1e4 + 1, -1e4 + 2]], dtype)
    sm = get(backend, backend.softmax(backend.asarray(x), -1))
    ls = get(backend, backend.log_softmax(backend.asarray(x), -1))
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(ls[:, :2]))
    np.testing.assert_allclose(sm.sum(axis=-1), 1, rtol=1e-6)
    same(backend, backend.softmax(backend.asarray(x), -1), REF.softmax(x, -1))
    same(backend, backend.log_softmax(backend.asarray(x), -1), REF.log_softmax(x, -1))


# ------------------------------------------- fused loss and activation gradients
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7), (1, 3), (4, 1)])
def test_cross_entropy_and_its_gradient(backend, rng, dtype, shape):
    n, c = shape
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x[0, 0] = 1e4 if dtype == np.float64 else 1e3   # stable for large logits
    t = rng.integers(0, c, size=n).astype(np.int64)
    t[0] = 0
    loss, top, logsum = backend.cross_entropy(backend.asarray(x), backend.asarray(t))
    x64 = x.astype(np.float64)
    want_top = x64.max(axis=1)
    want_logsum = np.log(np.exp(x64 - want_top[:, None]).sum(axis=1))
    want_loss = want_top + want_logsum - x64[np.arange(n), t]
    ref_loss, ref_top, ref_logsum = REF.cross_entropy(x, t)
    same(backend, top, ref_top, exact=True)
    same(backend, logsum, ref_logsum)
    same(backend, loss, ref_loss)
    np.testing.assert_allclose(ref_logsum, want_logsum, **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(ref_loss, want_loss, **TOL[np.dtype(dtype)])
    onehot = np.eye(c)[t]
    for scale in (0.25, backend.asarray(np.array(0.5, dtype))):
        g = backend.cross_entropy_grad(backend.asarray(x), backend.asarray(t), top, logsum, scale)
        s = 0.25 if isinstance(scale, float) else 0.5
        want = (s * (np.exp(x64 - want_top[:, None] - want_logsum[:, None]) - onehot)).astype(dtype)
        same(backend, g, REF.cross_entropy_grad(x, t, ref_top, ref_logsum, s))
        np.testing.assert_allclose(get(backend, g), want, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(backends.ACTIVATIONS))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_activation_grad(backend, rng, dtype, op, layout):
    x = (rng.standard_normal((3, 4)) * 3).astype(dtype)
    x[0, :3] = [0.0, 40.0, -40.0]
    g = normal(rng, (3, 4), dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    sig = 1 / (1 + np.exp(-x64))
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x64 / math.sqrt(2)))
    t = np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3))
    du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x64 ** 2)
    saved, slope = {"sigmoid": (sig, sig * (1 - sig)),
                    "tanh": (np.tanh(x64), 1 - np.tanh(x64) ** 2),
                    "silu": (x64, sig * (1 + x64 * (1 - sig))),
                    "gelu": (x64, cdf + x64 * np.exp(-x64 ** 2 / 2) / math.sqrt(2 * math.pi)),
                    "gelu_tanh": (x64, 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * du)}[op]
    saved = saved.astype(dtype)
    got = backend.activation_grad(op, put(backend, saved, layout), put(backend, g, layout))
    same(backend, got, REF.activation_grad(op, saved, g))
    want = g64 * {"sigmoid": saved * (1.0 - saved), "tanh": 1.0 - saved.astype(np.float64) ** 2,
                  "silu": slope, "gelu": slope, "gelu_tanh": slope}[op]
    np.testing.assert_allclose(get(backend, got), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(backend, rng, dtype, approximate):
    x = (rng.standard_normal((3, 5)) * 3).astype(dtype)
    x[0, :4] = [0.0, 1e-8, 40.0, -40.0]
    x64 = x.astype(np.float64)
    if approximate == "none":
        want = 0.5 * x64 * (1 + np.vectorize(math.erf)(x64 / math.sqrt(2)))
    else:
        want = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    got = backend.gelu(put(backend, x, "transposed"), approximate)
    same(backend, got, REF.gelu(x, approximate))
    np.testing.assert_allclose(get(backend, got), want, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 4, 7), (3, 2, 5), (5, 3, 1), (2, 1, 1)])
def test_normalize_and_its_gradient(backend, rng, dtype, shape):
    x = (normal(rng, shape, dtype) * 3 + 1).astype(dtype)
    x64 = x.astype(np.float64)
    mean, var = x64.mean((0, 2)), x64.var((0, 2))
    y64 = (x64 - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-3)
    y, m, v = backend.normalize(put(backend, x, "transposed"), 1e-3)
    for got, want in ((y, y64), (m, mean), (v, var)):
        assert get(backend, got).dtype == dtype
        np.testing.assert_allclose(get(backend, got), want, **TOL[np.dtype(dtype)])
    g = normal(rng, shape, dtype)
    rstd = (1 / np.sqrt(var + 1e-3)).astype(dtype)
    g64, yd = g.astype(np.float64), y64.astype(dtype).astype(np.float64)
    want = rstd[None, :, None] * (g64 - g64.mean((0, 2), keepdims=True)
                                  - yd * (g64 * yd).mean((0, 2), keepdims=True))
    got = backend.normalize_grad(put(backend, y64.astype(dtype), "transposed"),
                                 put(backend, rstd), put(backend, g))
    np.testing.assert_allclose(get(backend, got), want, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kh,kw,stride,padding,dilation", [
    ((1, 2, 6, 7), 2, 3, (2, 1), (1, 0), (2, 1)), ((2, 1, 5, 5), 3, 3, 1, (0, 2), 2),
    ((1, 2, 7, 6), 2, 2, (1, 3), 1, (1, 2))])
def test_im2col_col2im_with_pairs_and_dilation(backend, rng, dtype, x_shape, kh, kw, stride,
                                               padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = (v if isinstance(v, tuple) else (v, v)
                                    for v in (stride, padding, dilation))
    x = normal(rng, x_shape, dtype)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = xp.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    brute = np.zeros((n, c * kh * kw, oh * ow), dtype)
    for b, ch, i, j, y, z in np.ndindex(n, c, kh, kw, oh, ow):
        brute[b, (ch * kh + i) * kw + j, y * ow + z] = xp[b, ch, y * sh + i * dh, z * sw + j * dw]
    got = backend.im2col(put(backend, x, "transposed"), kh, kw, stride, padding, dilation)
    same(backend, got, brute, exact=True)
    cols = normal(rng, brute.shape, dtype)
    back = backend.col2im(put(backend, cols), x_shape, kh, kw, stride, padding, dilation)
    lhs = np.vdot(brute.astype(np.float64), cols.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), get(backend, back).astype(np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)
    same(backend, back, REF.col2im(cols, x_shape, kh, kw, stride, padding, dilation))


@pytest.mark.parametrize("kernel,stride", [((2, 3), (1, 2)), ((3, 1), (2, 1))])
def test_max_pool2d_with_pairs(backend, rng, kernel, stride):
    x = ints(rng, (2, 2, 6, 7), np.float64, high=3)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    want = np.zeros((n, c, oh, ow))
    want_idx = np.zeros((n, c, oh, ow), np.int64)
    for b, ch, y, z in np.ndindex(n, c, oh, ow):
        win = x[b, ch, y * sh:y * sh + kh, z * sw:z * sw + kw]
        k = int(np.argmax(win))
        want[b, ch, y, z] = win.flat[k]
        want_idx[b, ch, y, z] = (y * sh + k // kw) * w + z * sw + k % kw
    out, idx = backend.max_pool2d(put(backend, x, "transposed"), kernel, stride)
    same(backend, out, want, exact=True)
    same(backend, idx, want_idx, exact=True)



@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
@pytest.mark.parametrize("axis,keepdims", [(0, False), (1, True), (-1, False)])
def test_argmin_first_minimum(backend, rng, dtype, axis, keepdims):
    x = ints(rng, (4, 6, 5), dtype)
    want = REF.argmin(x, axis, keepdims)
    assert want.dtype == np.int64
    same(backend, backend.argmin(put(backend, x, "transposed"), axis, keepdims), want, exact=True)
    first = np.argmax(x == np.min(x, axis=axis, keepdims=True), axis=axis)
    np.testing.assert_array_equal(get(backend, backend.argmin(backend.asarray(x), axis)), first)


# (key, values shape) for setitem; values broadcast to x[key]
SET_KEYS = {
    "all": ((Ellipsis,), (5, 2)),
    "int": ((1,), ()),
    "slices": ((slice(None, None, 2), slice(1, 3)), (2, 2)),
    "negative_step": ((slice(None), slice(None, None, -1)), (1, 2)),
    "array": ((np.array([2, 0]),), (5, 2)),
    "two_arrays": ((np.array([0, 2, 1]), np.array([1, 3, 4])), (3, 2)),
    "slice_then_array": ((slice(None), np.array([4, 0])), (2,)),
}


@pytest.mark.parametrize("name", list(SET_KEYS))
@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
def test_setitem_writes_in_place(backend, rng, name, dtype):
    key, vshape = SET_KEYS[name]
    x = ints(rng, (3, 5, 2), dtype, high=9)
    values = ints(rng, vshape, np.float64, high=9) + 10  # cast to the array's dtype
    a = backend.asarray(x)
    alias = backend.reshape(a, (30,))  # shares a's memory on every backend
    assert backend.setitem(a, key, put(backend, values)) is None
    want = x.copy()
    want[key] = values
    same(backend, a, want, exact=True)
    same(backend, alias, want.reshape(30), exact=True)
    assert backend.storage(alias) is backend.storage(a)
    backend.setitem(a, key, 7)  # a Python scalar
    want[key] = 7
    same(backend, a, want, exact=True)


def test_storage_tells_shared_memory_apart(backend, rng):
    a = backend.asarray(normal(rng, (2, 3), np.float32))
    b = backend.copy(a)
    assert backend.storage(a) is backend.storage(a)
    assert backend.storage(backend.reshape(a, (3, 2))) is backend.storage(a)
    assert backend.storage(b) is not backend.storage(a)


@pytest.mark.parametrize("dtype", [np.bool_, np.float32, np.int64])
def test_nonzero(backend, rng, dtype):
    x = ints(rng, (3, 4, 2), dtype, high=2)
    got = backend.nonzero(put(backend, x, "transposed"))
    want = np.nonzero(x)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        same(backend, g, w.astype(np.int64), exact=True)
    empty = backend.nonzero(backend.asarray(np.zeros((2, 3), dtype)))
    assert [tuple(get(backend, e).shape) for e in empty] == [(0,), (0,)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_cell_and_its_gradient(backend, rng, dtype):
    g = (rng.standard_normal((3, 12)) * 3).astype(dtype)
    c = normal(rng, (3, 3), dtype)
    g64, c64 = g.astype(np.float64), c.astype(np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, gg, o = sig(g64[:, :3]), sig(g64[:, 3:6]), np.tanh(g64[:, 6:9]), sig(g64[:, 9:])
    c_new = f * c64 + i * gg
    h, c2 = backend.lstm_cell(put(backend, g, "transposed"), put(backend, c))
    np.testing.assert_allclose(get(backend, h), o * np.tanh(c_new), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(get(backend, c2), c_new, **TOL[np.dtype(dtype)])
    dh, dc = normal(rng, (3, 3), dtype), normal(rng, (3, 3), dtype)
    t = np.tanh(c_new.astype(dtype).astype(np.float64))
    d = dc + dh * o * (1 - t * t)
    want = np.concatenate([d * gg * i * (1 - i), d * c64 * f * (1 - f), d * i * (1 - gg * gg),
                           dh * t * o * (1 - o)], axis=1)
    dgates, dcell = backend.lstm_cell_grad(*(put(backend, a) for a in (
        g, c, c_new.astype(dtype), dh, dc)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else TOL[np.dtype(dtype)]
    np.testing.assert_allclose(get(backend, dgates), want, **tol)
    np.testing.assert_allclose(get(backend, dcell), d * f, **tol)
    assert get(backend, dgates).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_cell_and_its_gradient(backend, rng, dtype):
    gx, gh = (normal(rng, (3, 9), dtype) * 2 for _ in range(2))
    h, dh = normal(rng, (3, 3), dtype), normal(rng, (3, 3), dtype)
    x64, g64, h64, d64 = (a.astype(np.float64) for a in (gx, gh, h, dh))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(x64[:, :3] + g64[:, :3]), sig(x64[:, 3:6] + g64[:, 3:6])
    n = np.tanh(x64[:, 6:] + r * g64[:, 6:])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else TOL[np.dtype(dtype)]
    got = backend.gru_cell(put(backend, gx, "transposed"), put(backend, gh), put(backend, h))
    np.testing.assert_allclose(get(backend, got), n + z * (h64 - n), **tol)
    a = d64 * (1 - z) * (1 - n * n)
    a_r, a_z = a * g64[:, 6:] * r * (1 - r), d64 * (h64 - n) * z * (1 - z)
    dgx, dgh, dhh = backend.gru_cell_grad(*(put(backend, v) for v in (gx, gh, h, dh)))
    np.testing.assert_allclose(get(backend, dgx), np.concatenate([a_r, a_z, a], 1), **tol)
    np.testing.assert_allclose(get(backend, dgh), np.concatenate([a_r, a_z, a * r], 1), **tol)
    np.testing.assert_allclose(get(backend, dhh), d64 * z, **tol)
    assert get(backend, dgx).dtype == dtype


# ------------------------------------------------- coverage of the interface
def test_every_backend_method_is_covered():
    """Adding a kernel to Backend without a conformance test here fails."""
    import inspect
    methods = {name for name, f in inspect.getmembers(backends.Backend, inspect.isfunction)
               if not name.startswith("_")}
    source = open(__file__).read()
    missing = sorted(m for m in methods if f"backend.{m}(" not in source)
    assert not missing, f"no conformance test calls {missing}"


# ------------------------------------------------------------ Numba-CPU only
def _numba_cpu():
    try:
        return backends.get("numba")
    except Exception as e:  # pragma: no cover - numba missing
        pytest.skip(f"numba backend unavailable: {e}")


def test_numba_kernels_are_parallel_njit_with_disk_cache():
    _numba_cpu()
    import numba
    from opgraph.backends import numba_cpu

    assert len(numba_cpu.KERNELS) >= 10
    for kernel in numba_cpu.KERNELS:
        assert isinstance(kernel, numba.core.registry.CPUDispatcher), kernel
        assert kernel.targetoptions.get("parallel"), kernel.py_func.__name__
        assert type(kernel._cache).__name__ == "FunctionCache", kernel.py_func.__name__


def test_numba_compiled_kernel_is_written_to_the_cache():
    nb = _numba_cpu()
    from opgraph.backends import numba_cpu

    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    nb.softmax(x, -1)
    nb.scatter_rows_add(3, np.array([0, 2, 0]), x)
    nb.tropical_matmul(x, x.T, "max_plus")
    for kernel in (numba_cpu._softmax_kernel, numba_cpu._scatter_rows_kernel,
                   numba_cpu._tropical_max_plus):
        # either loaded from the on-disk cache or compiled and saved to it
        assert kernel.signatures, kernel.py_func.__name__
        assert os.path.exists(kernel._cache._cache_file._index_path), kernel.py_func.__name__


def _every_kernel(rng):
    """One call of every overridden Numba-CPU kernel, float32 and float64."""
    calls = []
    for dtype in DTYPES:
        a, b = ints(rng, (9, 33), dtype), ints(rng, (2, 33, 20), dtype)
        x = normal(rng, (3, 2, 7, 6), dtype)
        idx = rng.integers(0, 37, size=500)
        src = normal(rng, (500, 3), dtype)
        index = rng.integers(0, 6, size=(3, 4, 5))
        calls += [
            ("tropical", lambda be, a=a, b=b: [be.tropical_matmul(a, b, s) for s in SEMIRINGS]),
            ("scatter_rows_add", lambda be, idx=idx, src=src: be.scatter_rows_add(37, idx, src)),
            ("index_put_add", lambda be, idx=idx, src=src: be.index_put_add(
                (37, 3), (idx,), src)),
            ("scatter_add", lambda be, i=index, s=normal(rng, (3, 4, 5), dtype):
                be.scatter_add((3, 6, 5), 1, i, s)),
            ("im2col", lambda be, x=x: be.im2col(x, 3, 2, 1, 1)),
            ("col2im", lambda be, c=normal(rng, (3, 12, 49), dtype): be.col2im(
                c, (3, 2, 7, 6), 3, 2, 1, 1)),
            ("conv_patches", lambda be, x=x: be.conv_patches(x, 3, 2, 1, 1)),
            ("conv_patches_adjoint", lambda be, c=normal(rng, (12, 147), dtype):
                be.conv_patches_adjoint(c, (3, 2, 7, 6), 3, 2, 1, 1)),
            ("max_pool2d", lambda be, x=x: be.max_pool2d(x, 2, 2)),
            ("softmax", lambda be, x=x: be.softmax(x, 1)),
            ("log_softmax", lambda be, x=x: be.log_softmax(x, -1)),
            ("sigmoid", lambda be, x=x: be.unary("sigmoid", x)),
            ("silu", lambda be, x=x: be.unary("silu", x)),
        ]
    return calls


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [y for r in result for y in _flat(r)]
    return [np.asarray(result)]


def test_numba_parallel_and_serial_paths_match_the_reference(rng, monkeypatch):
    """Every kernel on its multi-threaded path (forced even for small inputs) and
    on one thread gives the reference's result; bit-identical between the two."""
    nb = _numba_cpu()
    import numba
    from opgraph.backends import numba_cpu

    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_WORK", 0)
    before = numba.get_num_threads()
    for name, call in _every_kernel(rng):
        want = _flat(call(REF))
        try:
            numba.set_num_threads(1)
            one = _flat(call(nb))
        finally:
            numba.set_num_threads(before)
        many = _flat(call(nb))
        for w, x, y in zip(want, one, many):
            np.testing.assert_array_equal(x, y, err_msg=name)
            assert x.dtype == w.dtype, name
            if w.dtype.kind == "f":
                np.testing.assert_allclose(y, w, err_msg=name, **TOL[w.dtype])
            else:
                np.testing.assert_array_equal(y, w, err_msg=name)


# ------------------------------------- Numba-CPU direct (plane-grid) convolution
def _conv_all(be, x, w, b, dy, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1):
    """conv2d and all three gradients, as host arrays, plus what conv2d saved."""
    y, saved = be.conv2d(be.asarray(x), be.asarray(w), None if b is None else be.asarray(b),
                         stride, padding, dilation, groups)
    grads = be.conv2d_backward(be.asarray(dy), be.asarray(x), be.asarray(w), saved, stride,
                               padding, dilation, groups, True, b is not None)
    return [get(be, y)] + [get(be, g) for g in grads if g is not None], saved


def _conv_data(rng, dtype, x_shape=(2, 3, 6, 5), w_shape=(5, 3, 3, 3), padding=(1, 1)):
    x, w = normal(rng, x_shape, dtype), normal(rng, w_shape, dtype)
    b = normal(rng, (w_shape[0],), dtype)
    oh = x_shape[2] + 2 * padding[0] - w_shape[2] + 1
    ow = x_shape[3] + 2 * padding[1] - w_shape[3] + 1
    return x, w, b, normal(rng, (x_shape[0], w_shape[0], oh, ow), dtype)


@pytest.mark.parametrize("channels,kernel,stride,groups,w_dtype,direct", [
    (3, (3, 3), (1, 1), 1, np.float32, True), (3, (3, 3), (2, 1), 1, np.float32, False),
    (3, (3, 3), (1, 1), 3, np.float32, False), (3, (3, 3), (1, 1), 1, np.float64, False),
    (3, (1, 1), (1, 1), 1, np.float32, False), (3, (1, 2), (1, 1), 1, np.float32, True),
    (113, (3, 3), (1, 1), 1, np.float32, True), (114, (3, 3), (1, 1), 1, np.float32, False)])
def test_numba_conv2d_convolves_directly_for_stride_1_one_group_and_few_sources(
        rng, channels, kernel, stride, groups, w_dtype, direct):
    # 113 channels x 9 taps = 1017 sources, 114 x 9 = 1026: over DIRECT_CONV_MAX_SOURCES
    nb = _numba_cpu()
    from opgraph.backends import numba_cpu

    assert numba_cpu.DIRECT_CONV_MAX_SOURCES == 1024
    x = normal(rng, (2, channels, 6, 5), np.float32)
    w = normal(rng, (6, channels // groups) + kernel, w_dtype)
    _, saved = nb.conv2d(x, w, None, stride, (1, 1), (1, 1), groups)
    assert isinstance(saved, numba_cpu._DirectConv) == direct


@pytest.mark.parametrize("at", [0, 7, -1])  # a corner (it meets the grid's padding), inside
@pytest.mark.parametrize("where,value", [
    ("x", np.inf), ("x", -np.inf), ("x", np.nan), ("w", np.inf), ("w", np.nan),
    ("dy", np.inf), ("dy", np.nan), ("b", np.nan)])
def test_numba_direct_conv2d_with_an_inf_or_nan_matches_numpy(rng, where, value, at):
    # the grid's padding cells meet an inf as 0 * inf = NaN: the backward must not let
    # that reach a gradient that is finite in the true convolution
    nb = _numba_cpu()
    data = dict(zip(("x", "w", "b", "dy"), _conv_data(rng, np.float64)))
    data[where].flat[at % data[where].size] = value
    got, saved = _conv_all(nb, data["x"], data["w"], data["b"], data["dy"])
    want, _ = _conv_all(REF, data["x"], data["w"], data["b"], data["dy"])
    assert type(saved).__name__ == "_DirectConv"
    for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=name)
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=name)


def test_numba_direct_conv2d_reuses_its_work_arrays_correctly(rng):
    # alternating geometries and dtypes, and new gradients on the same geometry: each
    # result equals the reference's (a reused grid keeps zeros between its cells)
    nb = _numba_cpu()
    cases = [_conv_data(rng, np.float64), _conv_data(rng, np.float32, (1, 2, 4, 7), (3, 2, 2, 3),
                                                      (2, 0)),
             _conv_data(rng, np.float64)]
    for x, w, b, dy in cases + cases[::-1]:
        padding = (1, 1) if x.shape[1] == 3 else (2, 0)
        got, _ = _conv_all(nb, x, w, b, dy, padding=padding)
        want, _ = _conv_all(REF, x, w, b, dy, padding=padding)
        tol = TOL[np.dtype(x.dtype)] if x.dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, **tol)


def test_numba_direct_conv2d_same_bits_on_any_thread_count_and_in_python_threads(
        rng, monkeypatch):
    nb = _numba_cpu()
    import numba
    from concurrent.futures import ThreadPoolExecutor
    from opgraph.backends import numba_cpu

    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_WORK", 0)
    data = [_conv_data(rng, np.float32, (3, 4, 9, 8), (6, 4, 3, 3)) for _ in range(4)]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [_conv_all(nb, *d)[0] for d in data]
    finally:
        numba.set_num_threads(before)
    with ThreadPoolExecutor(4) as pool:  # the work arrays are per thread
        many = list(pool.map(lambda d: _conv_all(nb, *d)[0], data * 3))
    for i, results in enumerate(many):
        for a, b in zip(one[i % 4], results):
            np.testing.assert_array_equal(a, b)
