"""One input-conversion rule (opgraph.tensor.as_tensors) for op instances and public
functions alike, and Tensor's methods bound from one table."""
import numpy as np
import pytest

import opgraph as og
from opgraph import functions, ops
from opgraph.tensor import METHODS


def x32():
    return og.tensor([1.0, 2.0], requires_grad=True)


CASES = [  # (op instance call, public function call)
    (lambda x: ops.Mul()(x, 2), lambda x: x * 2),
    (lambda x: ops.Add()(2.5, x), lambda x: 2.5 + x),
    (lambda x: ops.Sub()(x, np.float64(2)), lambda x: x - np.float64(2)),
    (lambda x: ops.Div()(x, np.array([1.0, 4.0])), lambda x: x / np.array([1.0, 4.0])),
    (lambda x: ops.Mul()(x, og.tensor([1, 2])), lambda x: x * og.tensor([1, 2])),
    (lambda x: ops.Mul()(x, True), lambda x: x * True),
    (lambda x: ops.elementwise.PowTensor()(x, np.int64(3)), lambda x: og.pow(x, og.tensor(3))),
    (lambda x: ops.Pow(np.float64(2))(x), lambda x: x ** np.float64(2)),
    (lambda x: ops.LogWithEpsilon(np.float64(1e-3))(x), lambda x: og.log_eps(x, np.float64(1e-3))),
    (lambda x: ops.Cat()(x, [3, 4]), lambda x: og.cat([x, [3, 4]])),
    (lambda x: ops.Where(np.array([True, False]))(x, 0), lambda x: og.where([True, False], x, 0)),
    (lambda x: ops.MatMul()(x.reshape(1, 2), np.ones((2, 1))), lambda x: x.reshape(1, 2) @ np.ones((2, 1))),
]


@pytest.mark.parametrize("op_call, function_call", CASES)
def test_op_instances_and_functions_convert_alike(op_call, function_call):
    a, b = op_call(x32()), function_call(x32())
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_float64_stays_float64_and_integers_stay_integers():
    x = og.tensor([1.0, 2.0], dtype=np.float64)
    assert (x * 2).dtype == np.float64 and ops.Mul()(x, np.float32(2)).dtype == np.float64
    n = og.tensor([1, 2])
    assert (n * 2).dtype == np.int64 and ops.Add()(n, n).dtype == np.int64
    assert (n * 2.5).dtype == np.float32  # torch: an integer tensor with a float scalar
    assert (n * np.float64(2.5)).dtype == np.float32  # NumPy scalars are weak
    assert (x32() + og.tensor([1.0, 2.0], dtype=np.float64)).dtype == np.float64  # as NumPy


def test_index_inputs_are_not_promoted():
    x = og.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = ops.Gather(1)(x, [[1], [0]])
    np.testing.assert_array_equal(out.numpy(), [[2.0], [3.0]])
    with pytest.raises(TypeError, match="Gather.*integers"):
        og.gather(x, 1, [[0.5], [1.0]])


@pytest.mark.parametrize("bad", ["a", None, {1: 2}, 1j, np.array([1j])])
def test_unconvertible_inputs_name_the_op(bad):
    with pytest.raises(TypeError, match="Mul"):
        ops.Mul()(x32(), bad)


def test_inputs_on_different_backends_name_the_op():
    pytest.importorskip("numba")
    y = og.tensor([1.0, 2.0], backend="numba")
    with pytest.raises(ValueError, match="Add.*different backends"):
        x32() + y


def test_every_public_function_with_a_torch_method_is_a_tensor_method():
    no_method = {"cat", "stack", "einsum", "einsum_path", "tropical_einsum", "Semiring",
                 "register_semiring", "embedding", "cross_entropy", "conv2d", "max_pool2d"}
    for name in set(functions.__all__) - no_method:
        assert name in METHODS, f"Tensor.{name} is missing"
        if isinstance(METHODS[name], str):
            assert getattr(og.Tensor, name) is getattr(functions, METHODS[name]), name
    for name, target in METHODS.items():
        assert callable(getattr(og.Tensor, name)), name
        if isinstance(target, str):
            assert hasattr(functions, target), f"METHODS[{name!r}] names no function"
    assert callable(og.permute) and "permute" in dir(og)


def test_reflected_operators_and_method_adapters():
    x = og.tensor([1.0, 2.0])
    np.testing.assert_allclose((1 - x).numpy(), [0.0, -1.0])
    np.testing.assert_allclose((2 / x).numpy(), [2.0, 1.0])
    np.testing.assert_allclose((2 ** x).numpy(), [2.0, 4.0])
    np.testing.assert_allclose((np.ones((1, 2)) @ x.reshape(2, 1)).numpy(), [[3.0]])
    np.testing.assert_allclose(x.where(x > 1, 0.0).numpy(), [0.0, 2.0])
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64
    assert (x == 1).numpy().tolist() == [True, False] and (x == None) is False  # noqa: E711


def _t(dtype, ndim=1):
    return og.from_numpy(np.array([1, 0, 2] if ndim else 1, dtype=dtype))


# (left, right, dtype of left + right): n-d tensors, 0-d tensors and Python numbers are
# three categories; a lower one counts only with a higher kind (bool < int < float)
PROMOTION = [
    (_t(np.uint8), 1, np.uint8), (_t(np.int32), 1, np.int32), (_t(np.int8), True, np.int8),
    (_t(np.int16), 7, np.int16), (_t(np.bool_), 1, np.int64), (_t(np.bool_), True, np.bool_),
    (_t(np.bool_), 2.5, np.float32), (_t(np.int32), 2.5, np.float32),
    (_t(np.uint8), np.int64(3), np.uint8), (_t(np.int32), np.float64(0.5), np.float32),
    (_t(np.float32), _t(np.float64, 0), np.float32), (_t(np.int32), _t(np.int64, 0), np.int32),
    (_t(np.int32), _t(np.float64, 0), np.float64), (_t(np.bool_), _t(np.int8, 0), np.int8),
    (_t(np.int64, 0), _t(np.int8, 0), np.int64), (_t(np.float32, 0), _t(np.int64), np.float32),
    (_t(np.int32), _t(np.float32), np.float32), (_t(np.int64), _t(np.float32), np.float32),
    (_t(np.uint8), _t(np.int8), np.int16), (_t(np.float32), _t(np.float64), np.float64),
    (_t(np.int8, 0), 1, np.int8), (_t(np.int8, 0), 1.0, np.float32),
]


@pytest.mark.parametrize("a, b, dtype", PROMOTION, ids=lambda v: getattr(v, "__name__", None))
def test_arithmetic_promotes_by_category(a, b, dtype):
    for f in (lambda p, q: p + q, lambda p, q: p * q, lambda p, q: p ** q):
        for left, right in ((a, b), (b, a)):
            if all(isinstance(v, (bool, np.bool_)) or getattr(v, "dtype", None) == np.bool_
                   for v in (left, right)) and f(1, 2) == 1:
                continue  # bool ** bool: below
            out = f(left, right)
            assert out.dtype == dtype, (left, right)
            lhs, rhs = (np.asarray(v.numpy() if isinstance(v, og.Tensor) else v, dtype)
                        for v in (left, right))
            np.testing.assert_array_equal(out.numpy(), f(lhs, rhs).astype(dtype))
    # true division: integers give the default float, floats keep the promoted float
    assert (a / b).dtype == (dtype if np.dtype(dtype).kind == "f" else np.float32)


def test_promotion_keeps_the_gradient_of_a_cast_input():
    x = og.tensor([1.0, 2.0, 4.0], requires_grad=True)
    s = og.tensor(3.0, dtype=np.float64, requires_grad=True)
    y = x * s
    assert y.dtype == np.float32
    y.sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == 7.0
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_integers_past_the_range_wrap_in_ring_ops_and_compare_exactly():
    u = og.tensor([1, 0, 2], dtype=np.uint8)
    np.testing.assert_array_equal((u + 300).numpy(), [45, 44, 46])  # mod 256, as torch
    np.testing.assert_array_equal((u - 3).numpy(), [254, 253, 255])
    np.testing.assert_array_equal((u * -1).numpy(), [255, 0, 254])
    assert (u < 300).numpy().all() and not (u == 300).numpy().any()
    assert not (u < -3).numpy().any() and (u > -3).numpy().all()
    assert (og.tensor([100], dtype=np.int8) <= 1000).item()
    for bad in (lambda: og.where(u > 0, u, 300), lambda: u.clamp(max=300),
                lambda: u.masked_fill(u > 0, -1), lambda: og.full_like(u, 256),
                lambda: u.fill_(-1), lambda: u ** 300):
        with pytest.raises(OverflowError, match="cannot be converted to uint8"):
            bad()


def test_bool_powers_and_clamp_dtypes():
    b = og.tensor([True, False])
    assert (b ** True).dtype == np.bool_ and (b ** True).numpy().tolist() == [True, False]
    assert (b ** False).numpy().tolist() == [True, True]
    with pytest.raises(TypeError, match="PowTensor: a bool tensor"):
        b ** og.tensor([True, True])
    i = og.tensor([1, 2, 3])
    assert i.clamp(max=2.5).dtype == np.float32
    np.testing.assert_array_equal(i.clamp(max=2.5).numpy(), [1, 2, 2.5])
    assert og.clamp(og.tensor([1, 0, 2], dtype=np.int8), max=True).numpy().tolist() == [1, 0, 1]
    # a missing bound is the widest of the result's dtype: int8 meeting uint8 bounds
    out = og.clamp(og.tensor(1, dtype=np.int8), max=og.tensor([1, 0, 2], dtype=np.uint8))
    assert out.dtype == np.uint8 and out.numpy().tolist() == [1, 0, 1]
