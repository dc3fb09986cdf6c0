"""Edge cases that used to give silent wrong answers: each is now the right answer
(checked against NumPy, brute force or finite differences) or an error, on every backend."""
import warnings

import numpy as np
import pytest

import opgraph as og
from opgraph import nn


def f64(values, backend, requires_grad=True):
    return og.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad,
                     backend=backend)


def test_transpose_and_permute_never_wrap_axes(backend):
    x = og.zeros(2, 3, backend=backend)
    for bad in [(0, 5), (2, 0), (-3, 0)]:
        with pytest.raises(IndexError, match="Transpose: dim"):
            og.transpose(x, bad)
        with pytest.raises(IndexError, match="Transpose: dim"):
            x.permute(*bad)
    assert x.permute(-1, -2).shape == (3, 2)  # negative dims in range are fine
    with pytest.raises(IndexError, match="Flatten: dim 2 is out of range"):
        nn.Flatten(2)(x)
    with pytest.raises(IndexError, match="Flatten: dim 1 is out of range"):
        nn.Flatten()(og.tensor(3.0, backend=backend))
    assert nn.Flatten(0)(og.tensor(3.0, backend=backend)).shape == (1,)


def test_float_index_arrays_are_index_errors_not_truncated(backend):
    x = og.tensor(np.arange(6.0).reshape(3, 2), backend=backend)
    for key in ([0.5, 1.7], np.array([1.0]), (slice(None), [0.0]), [None]):
        with pytest.raises(IndexError, match="Index: index arrays must be integers"):
            x[key]
    assert x[[]].shape == (0, 2)  # an empty list selects nothing, as in NumPy and torch
    np.testing.assert_array_equal(x[[2, 0]].numpy(), [[4, 5], [0, 1]])


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array([{}], dtype=object),
                                 np.array(["a"]), np.array(["2020-01-01"], dtype="M8[D]"),
                                 np.array([1], dtype="m8[s]")])
def test_only_bool_integer_and_float_data_are_tensors(bad):
    name = str(bad.dtype)
    with pytest.raises(TypeError, match=rf"tensor:.*{name[:4]}"):
        og.tensor(bad)
    with pytest.raises(TypeError, match=rf"from_numpy: dtype {name[:4]}"):
        og.from_numpy(bad)
    with pytest.raises(TypeError, match=rf"Add: unsupported dtype {name[:4]}"):
        og.ones(1) + bad
    with pytest.raises(TypeError, match=r"is not supported"):
        og.zeros(2, dtype=bad.dtype)
    with pytest.raises(TypeError, match=r"astype: dtype .* is not supported"):
        og.ones(1).astype(bad.dtype)


def test_mixed_arithmetic_never_drops_an_imaginary_part(backend):
    x = og.ones(1, backend=backend)
    for op in (lambda: x + np.array([1j]), lambda: x * np.complex64(1j), lambda: x - 1j):
        with pytest.raises(TypeError, match="complex"):
            op()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_scalars_do_not_promote(dtype, backend):
    x = og.tensor(np.array([1.0, 2.0], dtype=dtype), backend=backend)
    for y in (x ** np.float64(2), og.log_eps(x, np.float64(1e-3)), x * np.float64(2),
              x + np.float32(1), og.pow(x, np.int64(3)), og.where(x > 1, x, np.float64(0))):
        assert y.dtype == dtype
    np.testing.assert_allclose((x ** np.float64(2)).numpy(), [1.0, 4.0])


def test_pow_gradient_at_zero_to_the_zero_is_zero(backend):
    # d(a^b)/da at a = b = 0 is 0 (as torch), for a scalar and for a tensor exponent
    a = f64([0.0, 0.0, 2.0, 3.0], backend)
    b = f64([0.0, 1.0, 0.0, 2.0], backend)
    (a ** b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 1.0, 0.0, 6.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, np.log(2.0), 9 * np.log(3.0)])
    a = f64([0.0, 1.5], backend)
    (a ** 0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    # second order stays finite and right away from a = 0
    a, b = f64([0.0, 0.7], backend), f64([0.0, 0.0], backend)
    ga, gb = og.grad((a ** b).sum(), [a, b], create_graph=True)
    assert np.isfinite(ga.numpy()).all() and np.isfinite(gb.numpy()).all()
    assert og.gradgradcheck(lambda a, b: a ** b, [f64([0.5, 1.5], backend), f64([0.0, 2.0], backend)])


def test_empty_batches_and_dims(backend):
    logits = og.zeros(0, 3, dtype=np.float64, requires_grad=True, backend=backend)
    targets = og.tensor(np.zeros(0, np.int64), backend=backend)
    loss = og.cross_entropy(logits, targets)
    assert np.isnan(loss.item())  # the mean of no losses, like mean()
    loss.backward()
    assert logits.grad.shape == (0, 3)
    for f in (og.softmax, og.log_softmax):
        x = og.zeros(2, 0, dtype=np.float64, requires_grad=True, backend=backend)
        y = f(x, 1)
        assert y.shape == (2, 0)
        y.sum().backward()
        assert x.grad.shape == (2, 0)
        assert f(og.zeros(0, 3, backend=backend), 1).shape == (0, 3)
    assert og.max(og.zeros(0, 3, backend=backend), 1).values.shape == (0,)
    assert og.argmax(og.zeros(0, 3, backend=backend), 1).shape == (0,)


def test_zero_dim_tensors_in_max_gather_cat_chunk(backend):
    s = og.tensor(3.0, dtype=np.float64, requires_grad=True, backend=backend)
    m = og.max(s, 0)
    m = m[0] if isinstance(m, tuple) else m
    m.backward()
    assert m.item() == 3.0 and s.grad.item() == 1.0
    assert og.argmax(s, 0).item() == 0 and og.argmax(s).item() == 0
    g = og.gather(s, 0, og.tensor(0, backend=backend))
    assert g.shape == () and g.item() == 3.0
    np.testing.assert_array_equal(og.gather(s, 0, og.tensor([0, 0], backend=backend)).numpy(),
                                  [3.0, 3.0])
    with pytest.raises(ValueError, match="Gather: index out of range"):
        og.gather(s, 0, og.tensor(1, backend=backend))
    with pytest.raises(ValueError, match="Cat: the tensor at position 1 is 0-d"):
        og.cat([og.ones(1, backend=backend), s])
    with pytest.raises(ValueError, match="Chunk: expects a tensor with at least 1 dim"):
        og.chunk(s, 2)
    assert og.stack([s, s]).shape == (2,)


def test_integer_powers_of_integer_tensors(backend):
    i = og.tensor([1, 2, 3], backend=backend)
    np.testing.assert_array_equal((i ** 2).numpy(), [1, 4, 9])
    np.testing.assert_allclose((i ** -1.0).numpy(), [1.0, 0.5, 1 / 3])  # a float exponent
    with pytest.raises(ValueError, match="Pow: an integer tensor"):
        i ** -1


def test_unknown_kernel_names_list_the_known_ones(backend):
    with pytest.raises(ValueError, match=r"unknown unary op 'foo'; expected one of .*'exp'"):
        backend.unary("foo", backend.asarray(np.zeros(2)))
    with pytest.raises(ValueError, match=r"unknown binary op 'foo'; expected one of .*'add'"):
        backend.binary("foo", backend.asarray(np.zeros(2)), backend.asarray(np.zeros(2)))


@pytest.mark.parametrize("name, hyper", [
    ("SGD", dict(lr=np.float64(0.1), momentum=np.float64(0.9), weight_decay=np.float64(0.01))),
    ("Adam", dict(lr=np.float64(0.1), betas=(np.float64(0.9), np.float64(0.99)),
                  eps=np.float64(1e-8), weight_decay=np.float64(0.01))),
    ("AdamW", dict(lr=np.float64(0.1), betas=(np.float64(0.9), np.float64(0.99)),
                   eps=np.float64(1e-8), weight_decay=np.float64(0.01))),
])
def test_optimizers_given_numpy_scalars_keep_float32(name, hyper, backend):
    w = og.tensor([1.0, -2.0, 3.0], requires_grad=True, backend=backend)
    ref = og.tensor([1.0, -2.0, 3.0], requires_grad=True, backend=backend)
    opt = getattr(og.optim, name)([w], **hyper)
    plain = {k: (tuple(float(b) for b in v) if isinstance(v, tuple) else float(v))
             for k, v in hyper.items()}
    ref_opt = getattr(og.optim, name)([ref], **plain)
    for step in range(3):
        if step == 2:  # a value set later (as a scheduler does) counts too
            opt.param_groups[0]["lr"] = np.float64(0.05)
            ref_opt.param_groups[0]["lr"] = 0.05
        for o, p in ((opt, w), (ref_opt, ref)):
            o.zero_grad()
            (p * p).sum().backward()
            o.step()
    assert w.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[id(w)].values() if hasattr(v, "dtype"))
    np.testing.assert_array_equal(w.numpy(), ref.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_einsum_with_an_integer_operand_keeps_the_float_dtype(dtype, backend):
    x = og.tensor(np.arange(6.0).reshape(2, 3), dtype=dtype, backend=backend)
    i = og.tensor([[1, 2], [3, 4], [5, 6]], backend=backend)
    want = np.arange(6.0).reshape(2, 3) @ np.array([[1, 2], [3, 4], [5, 6]])
    for y in (og.einsum("ij,jk->ik", x, i), og.einsum("jk,ij->ik", i, x),
              og.einsum(x, [0, 1], i, [1, 2], [0, 2]), x @ i):
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), want)
    t = og.tropical_einsum("ij,jk->ik", x, i)
    assert t.dtype == dtype
    np.testing.assert_allclose(t.numpy(), (np.arange(6.0).reshape(2, 3)[:, :, None]
                                           + np.array([[1, 2], [3, 4], [5, 6]])[None]).max(1))
    assert og.einsum("ij,jk->ik", i.T, i).dtype == np.int64  # no float operand: integers


def test_conv_and_pool_of_an_empty_batch(backend):
    x = og.zeros(0, 2, 5, 5, dtype=np.float64, requires_grad=True, backend=backend)
    w = og.tensor(np.ones((3, 2, 2, 2)), requires_grad=True, backend=backend)
    y = og.conv2d(x, w, stride=1, padding=1)
    assert y.shape == (0, 3, 6, 6)
    y.sum().backward()
    assert x.grad.shape == x.shape and (w.grad.numpy() == 0).all()
    x.grad = None
    p = og.max_pool2d(x, 2)
    assert p.shape == (0, 2, 2, 2)
    p.sum().backward()
    assert x.grad.shape == x.shape


def test_python_numbers_given_a_dtype_convert_straight_to_it():
    # not through the float32 default: 0.1 as float64 is the float64 nearest 0.1
    assert og.tensor([0.1, 1 / 3], dtype="float64").numpy().tolist() == [0.1, 1 / 3]
    assert og.tensor(0.1, dtype=np.float64).item() == 0.1
    assert og.tensor([[2 ** 53 + 1]], dtype=np.int64).item() == 2 ** 53 + 1
    np.testing.assert_array_equal(og.tensor([1.7, -1.7], dtype=np.int64).numpy(), [1, -1])
    with pytest.raises(ValueError, match="tensor: the data cannot be converted to int64"):
        og.tensor(float("nan"), dtype=np.int64)
    with pytest.raises(OverflowError, match="tensor: the data cannot be converted to uint8"):
        og.tensor([300], dtype=np.uint8)
    # integers past int64 never wrap to negatives
    for big in (2 ** 63, [2 ** 63 + 5], np.array([2 ** 63], dtype=np.uint64)):
        with pytest.raises(OverflowError, match="tensor: the value 92233720368547758.. does not "
                                                "fit int64"):
            og.tensor(big)
    assert og.tensor(np.array([2 ** 63], dtype=np.uint64), dtype=np.uint64).item() == 2 ** 63
    with pytest.raises(OverflowError, match=r"tensor: the value -18446744073709551621 does not "):
        og.tensor([[1], [-2 ** 64 - 5]])


def test_creation_functions_pick_dtypes_as_torch():
    assert og.full((2,), 3).dtype == np.int64  # torch.full infers the dtype from the value
    assert og.full((2,), True).dtype == np.bool_
    assert og.full((2,), 3.0).dtype == np.float32
    assert og.full((2,), np.float64(3)).dtype == np.float32
    assert og.full((), 1.5, dtype=np.int64).item() == 1
    # an integer arange truncates start, end and step first, as torch
    for args, want in [((0, 2.5, 1), [0, 1]), ((0.5, 3), [0, 1, 2]), ((0, 3.7, 1.5), [0, 1, 2]),
                       ((-1.5, 2), [-1, 0, 1]), ((0, 10, 2.5), [0, 2, 4, 6, 8])]:
        assert og.arange(*args, dtype=np.int64).tolist() == want
    with pytest.raises(ValueError, match=r"arange: step must be nonzero \(the step 0\.3"):
        og.arange(0, 1, 0.3, dtype=np.int64)
    np.testing.assert_array_equal(og.arange(0, 1, 0.25, dtype=np.float64).numpy(),
                                  [0, 0.25, 0.5, 0.75])


def test_real_valued_ops_of_integer_and_bool_tensors_are_float32(backend):
    # torch's rule: exp(int64), int64 / int64 and sigmoid(bool) are the default float
    # dtype, on every backend (NumPy alone would say float64, or float16 for bool)
    i = og.tensor([1, 2, 4], backend=backend)
    b = og.tensor([True, False, True], backend=backend)
    v = np.array([1.0, 2.0, 4.0])
    for got, want in [(og.exp(i), np.exp(v)), (og.log(i), np.log(v)), (og.sqrt(i), np.sqrt(v)),
                      (og.sigmoid(b), 1 / (1 + np.exp(-np.array([1.0, 0, 1])))),
                      (og.tanh(i), np.tanh(v)), (og.sin(b), np.sin([1.0, 0, 1])),
                      (i / 2, v / 2), (i / i, v / v), (i ** 0.5, v ** 0.5), (i ** 2.0, v ** 2),
                      (og.mean(i), np.asarray(v.mean())), (og.softmax(i, 0), np.exp(v) / np.exp(v).sum()),
                      (og.log_eps(i, 1), np.log(v + 1)), (og.silu(b), [1 / (1 + np.exp(-1)), 0, 1 / (1 + np.exp(-1))])]:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    F = og.nn.functional
    for f in (F.gelu, F.elu, F.softplus, F.selu):
        assert f(i).dtype == np.float32 and f(b).dtype == np.float32
    np.testing.assert_allclose(F.elu(og.tensor([-1, 2], backend=backend)).numpy(), [np.expm1(-1), 2],
                               rtol=1e-6)
    assert (i ** 2).dtype == np.int64 and (i * 2).dtype == np.int64 and og.relu(i).dtype == np.int64
    assert (og.tensor([1.0, 2.0], dtype=np.float64, backend=backend) / i[:2]).dtype == np.float64
    with pytest.raises(TypeError, match="ReLU: bool tensors are not supported"):
        og.relu(b)


def test_big_endian_data_becomes_native(backend):
    # kernels (Numba's, CUDA's) need native byte order, and '>f8' == np.float64 is False
    a = np.arange(6.0).reshape(2, 3).astype(">f8")
    for x in (og.from_numpy(a, requires_grad=True, backend=backend), og.tensor(a, backend=backend),
              og.Tensor(a, backend=backend)):
        assert x.dtype == np.float64 and x.dtype.isnative
        np.testing.assert_array_equal((x @ x.T).numpy(), a @ a.T)
    assert og.zeros(2, dtype=">f4", backend=backend).dtype == np.float32
    assert og.tensor([1, 2], dtype=">i4", backend=backend).dtype == np.int32


def test_integer_dtypes_are_the_same_on_every_backend(backend):
    assert og.tensor([1, 2], dtype=np.int32, backend=backend).dtype == np.int32
    assert og.from_numpy(np.ones(2, np.uint8), backend=backend).dtype == np.uint8
    assert og.Tensor(og.tensor([1, 2], dtype=np.int32), backend=backend).dtype == np.int32
    assert og.tensor(np.ones(2, np.int32), backend=backend).dtype == np.int64  # tensor(): int64


def test_creation_functions_name_themselves_in_requires_grad_errors():
    for name, call in [("zeros", lambda: og.zeros(2, dtype=np.int64, requires_grad=True)),
                       ("arange", lambda: og.arange(3, requires_grad=True)),
                       ("full", lambda: og.full((2,), 3, requires_grad=True)),
                       ("eye", lambda: og.eye(2, dtype=np.int64, requires_grad=True)),
                       ("from_numpy", lambda: og.from_numpy(np.ones(2, int), requires_grad=True)),
                       ("zeros_like", lambda: og.zeros_like(og.tensor([1]), requires_grad=True)),
                       ("requires_grad_", lambda: og.tensor([1]).requires_grad_())]:
        with pytest.raises(TypeError, match=f"^{name}: only floating-point tensors can require "
                                            "grad, got dtype int64"):
            call()
    with pytest.raises(TypeError, match="^randn: requires_grad must be a bool, got str"):
        og.randn(2, requires_grad="x")


EDGE = np.array([0.0, -0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 3e38, -3e38, 1e-45], np.float32)

# name: (opgraph call on x, y; NumPy reference on arrays)
SILENT = {
    "log": (lambda x, y: x.log(), np.log),
    "sqrt": (lambda x, y: x.sqrt(), np.sqrt),
    "rsqrt": (lambda x, y: x.rsqrt(), lambda a: 1 / np.sqrt(a)),
    "exp": (lambda x, y: x.exp(), np.exp),
    "sin": (lambda x, y: x.sin(), np.sin),
    "div": (lambda x, y: x / y, lambda a, b: a / b),
    "mul": (lambda x, y: x * y, lambda a, b: a * b),
    "sub": (lambda x, y: x - y, lambda a, b: a - b),
    "pow": (lambda x, y: x ** -1.5, lambda a, b: a ** np.float32(-1.5)),
    "floor_divide": (lambda x, y: x // y, np.floor_divide),
    "remainder": (lambda x, y: x % y, np.remainder),
    "sum": (lambda x, y: (x * y).sum(), lambda a, b: np.sum(a * b)),
    "matmul": (lambda x, y: x.reshape(1, -1) @ y.reshape(-1, 1),
               lambda a, b: a.reshape(1, -1) @ b.reshape(-1, 1)),
}


@pytest.mark.parametrize("name", sorted(SILENT))
def test_inf_and_nan_results_are_silent_as_torch(backend, name):
    """No NumPy RuntimeWarning leaks from an op (torch returns inf / nan silently), and the
    values, gradients included, are NumPy's."""
    f, ref = SILENT[name]
    x = og.tensor(EDGE, requires_grad=True, backend=backend)
    y = og.tensor(EDGE[::-1].copy(), requires_grad=True, backend=backend)
    with warnings.catch_warnings():
        # under Numba's CUDA simulator the device functions are Python on NumPy scalars,
        # which warn; a GPU does not
        warnings.simplefilter("ignore" if backend.name == "cuda" else "error")
        out = f(x, y)
        out.sum().backward()
    with np.errstate(all="ignore"):
        unary = getattr(ref, "nin", None) == 1 or getattr(ref, "__code__", None) and \
            ref.__code__.co_argcount == 1
        want = ref(EDGE) if unary else ref(EDGE, EDGE[::-1])
    np.testing.assert_allclose(out.numpy(), np.asarray(want, np.float32), rtol=1e-6)
    assert x.grad.shape == x.shape


def test_losses_of_nothing_are_nan_without_warnings(backend):
    logits = og.randn(3, 4, seed=0, backend=backend, requires_grad=True)
    ignored = og.tensor([-100, -100, -100], backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if backend.name == "cuda" else "error")  # as above
        losses = [nn.functional.cross_entropy(logits, ignored),
                  nn.functional.nll_loss(logits.log_softmax(-1), ignored),
                  nn.functional.cross_entropy(logits, og.tensor([0, 1, 2], backend=backend),
                                              weight=og.zeros(4, backend=backend)),
                  nn.functional.cross_entropy(og.zeros(0, 4, backend=backend),
                                              og.tensor(np.zeros(0, np.int64), backend=backend))]
        sum(losses[:3]).backward()
    assert all(np.isnan(loss.item()) for loss in losses)
    assert np.isnan(logits.grad.numpy()).all()  # 0 / 0, as torch


def test_the_callers_errstate_is_left_alone():
    with np.errstate(divide="raise"):
        (og.tensor([1.0]) / 0).numpy()
        with pytest.raises(FloatingPointError):
            np.float64(1.0) / np.float64(0.0)
    assert np.geterr()["divide"] == "warn"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int32, np.bool_])
def test_integer_and_bool_sums_are_int64(backend, dtype):
    x = og.tensor(np.array([[200, 100], [1, 0]]).astype(dtype), backend=backend)
    want = np.array([[200, 100], [1, 0]]).astype(dtype).astype(np.int64)
    assert x.sum().dtype == np.int64 and x.sum().item() == want.sum()  # uint8: not mod 256
    np.testing.assert_array_equal(x.sum(0).numpy(), want.sum(0))
    assert x.sum(-1, keepdim=True).dtype == np.int64


def test_max_of_a_tensor_with_nan_shares_the_gradient_among_its_nans(backend):
    x = og.tensor([np.nan, 1.0, np.nan, 3.0], requires_grad=True, backend=backend)
    assert np.isnan(x.max().item())
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.0, 0.5, 0.0])  # as torch.max()
    y = og.tensor([[np.nan, 1.0], [2.0, 5.0]], requires_grad=True, backend=backend)
    y.amin(1).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[1.0, 0.0], [1.0, 0.0]])
