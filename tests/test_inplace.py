"""In-place operators and methods with torch's rules, on every backend: updates under
no_grad write the tensor's storage (views and detach() see them), a leaf that requires
grad refuses them while recording, a non-leaf's history is rebased onto the in-place op,
and a backward that needs overwritten values raises (the version counter)."""
import numpy as np
import pytest

import opgraph as og

A = np.arange(12.0).reshape(3, 4) / 4 - 1.2  # no zeros, no ties


def leaf(backend, requires_grad=True, a=A):
    return og.tensor(a, dtype=np.float64, requires_grad=requires_grad, backend=backend)


# ---------------------------------------------------------------- no_grad updates
def test_sgd_step_under_no_grad_updates_the_parameter(backend):
    w = leaf(backend)
    (w * w).sum().backward()
    same = w
    with og.no_grad():
        w -= 0.1 * w.grad
    assert w is same and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.numpy(), A - 0.1 * 2 * A)


@pytest.mark.parametrize("name,call,expect", [
    ("add_", lambda x: x.add_(2.0), A + 2),
    ("add_alpha", lambda x: x.add_(og.ones(4, backend=x.backend), alpha=-3), A - 3),
    ("sub_", lambda x: x.sub_(1.5), A - 1.5),
    ("mul_", lambda x: x.mul_(np.arange(4.0)), A * np.arange(4.0)),
    ("div_", lambda x: x.div_(4.0), A / 4),
    ("pow_", lambda x: x.pow_(2), A ** 2),
    ("neg_", lambda x: x.neg_(), -A),
    ("zero_", lambda x: x.zero_(), np.zeros_like(A)),
    ("fill_", lambda x: x.fill_(7), np.full_like(A, 7)),
    ("copy_", lambda x: x.copy_(og.tensor(np.arange(4), backend=x.backend)),
     np.broadcast_to(np.arange(4.0), A.shape)),
    ("clamp_", lambda x: x.clamp_(-0.5, 0.5), np.clip(A, -0.5, 0.5)),
    ("clamp_min", lambda x: x.clamp_(min=0), np.maximum(A, 0)),
    ("abs_", lambda x: x.abs_(), np.abs(A)),
    ("exp_", lambda x: x.exp_(), np.exp(A)),
    ("relu_", lambda x: x.relu_(), np.maximum(A, 0)),
    ("sigmoid_", lambda x: x.sigmoid_(), 1 / (1 + np.exp(-A))),
    ("tanh_", lambda x: x.tanh_(), np.tanh(A)),
    ("masked_fill_", lambda x: x.masked_fill_(x > 0, -1.0), np.where(A > 0, -1.0, A)),
    ("addcmul_", lambda x: x.addcmul_(x, x, value=0.5), A + 0.5 * A * A),
    ("addcdiv_", lambda x: x.addcdiv_(x, x * 0 + 2, value=3), A + 3 * A / 2),
    ("lerp_", lambda x: x.lerp_(og.zeros_like(x), 0.25), A * 0.75),
    ("iadd", lambda x: x.__iadd__(1), A + 1),
    ("isub", lambda x: x.__isub__(og.ones(3, 1, backend=x.backend)), A - 1),
    ("imul", lambda x: x.__imul__(2), A * 2),
    ("itruediv", lambda x: x.__itruediv__(2), A / 2),
    ("ipow", lambda x: x.__ipow__(3), A ** 3),
])
def test_in_place_methods_write_the_storage(backend, name, call, expect):
    x = leaf(backend, requires_grad=False)
    alias = x.detach()  # shares the storage
    before = x._version
    with og.no_grad():
        out = call(x)
    assert out is x and x.shape == A.shape and x.dtype == np.float64
    np.testing.assert_allclose(x.numpy(), expect, rtol=1e-12)
    np.testing.assert_allclose(alias.numpy(), expect, rtol=1e-12)
    assert x._version > before and alias._version == x._version


def test_in_place_keeps_float32_and_refuses_unsafe_casts(backend):
    x = og.zeros(3, backend=backend)
    x.add_(og.ones(3, dtype=np.float64, backend=backend))
    assert x.dtype == np.float32 and x.tolist() == [1, 1, 1]
    i = og.zeros(3, dtype=og.int64, backend=backend)
    i += 2
    i.mul_(og.tensor([1, 2, 3], backend=backend))
    assert i.dtype == np.int64 and i.tolist() == [2, 4, 6]
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.add_(1.5)
    i.copy_(og.tensor([1.7, -2.2, 3.9], backend=backend))  # copy_ converts any dtype
    assert i.tolist() == [1, -2, 3]
    i.fill_(2.9)
    assert i.tolist() == [2, 2, 2]


def test_in_place_result_cannot_grow_the_tensor(backend):
    x = og.zeros(3, backend=backend)
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast "
                                           r"shape \[2, 3\]"):
        x.add_(og.ones(2, 3, backend=backend))
    with pytest.raises(RuntimeError, match="broadcast"):
        x.copy_(og.ones(4, backend=backend))
    with pytest.raises(RuntimeError, match="0-d"):
        x.fill_(og.ones(3, backend=backend))
    assert x.tolist() == [0, 0, 0]


def test_expanded_views_refuse_in_place_writes(backend):
    x = og.zeros(1, 3, backend=backend)
    with pytest.raises(RuntimeError, match="single memory location"):
        x.expand(4, 3).add_(1)
    assert x.tolist() == [[0, 0, 0]]


def test_writes_through_views_reach_the_base(backend):
    w = leaf(backend)
    with og.no_grad():
        w[0].zero_()
        w.t()[1].fill_(7.0)
        w[:, 2:] *= 2
        w.view(12)[-1] = 100.0
        w.reshape(4, 3).T[0, 0] = -5
    want = A.copy()
    want[0] = 0
    want[:, 1] = 7
    want[:, 2:] *= 2
    want[2, 3] = 100
    want[0, 0] = -5
    np.testing.assert_allclose(w.numpy(), want)


def test_from_numpy_shares_memory_on_the_numpy_backend():
    a = np.zeros(3)
    t = og.from_numpy(a)
    t.add_(1)
    t[0] = 5
    assert a.tolist() == [5, 1, 1]


def test_setitem_under_no_grad(backend):
    x = leaf(backend, requires_grad=False)
    x[0] = 1.0
    x[1:, ::2] = og.tensor([[-1.0, -2.0]], backend=backend)
    x[og.tensor([2, 0], backend=backend), 3] = 9.0
    x[x > 2.5] = 2.5
    want = A.copy()
    want[0] = 1.0
    want[1:, ::2] = [[-1, -2]]
    want[[2, 0], 3] = 9
    want[want > 2.5] = 2.5
    np.testing.assert_allclose(x.numpy(), want)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[0] = og.ones(5, backend=backend)
    with pytest.raises(IndexError):
        x[7] = 1.0


def test_version_counter_is_shared_by_views_and_detach(backend):
    x = og.zeros(2, 3, backend=backend)
    v, d = x.view(6), x.detach()
    assert x._version == 0
    v.add_(1)
    d.mul_(2)
    assert x._version == v._version == d._version == 2
    assert og.zeros(2, backend=backend)._version == 0
    assert x.clone()._version == 0  # a clone has storage of its own
    with og.no_grad():
        x.data  # .data is the raw array: torch's escape hatch, not tracked
    assert x.tolist() == [[2.0] * 3] * 2


# ---------------------------------------------------------------- while recording
def test_leaf_that_requires_grad_refuses_in_place_while_recording(backend):
    w = leaf(backend)
    for call in (lambda: w.add_(1), lambda: w.__imul__(2), lambda: w.zero_(),
                 lambda: w.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            call()
    with pytest.raises(RuntimeError, match="view of a leaf"):
        w[0].add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        w.t().mul_(2)
    np.testing.assert_array_equal(w.numpy(), A)  # nothing was written


def test_in_place_on_a_non_leaf_rebases_its_history(backend):
    x = leaf(backend)
    b = x * 2
    b.mul_(3)
    b.add_(1)
    assert not b.is_leaf and b.op is not None
    (b * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (6 * A + 1) * 6)


def test_earlier_users_of_a_rebased_tensor_keep_its_old_value(backend):
    x = leaf(backend)
    b = x * 2
    c = b + 1          # Add saves nothing: it may use b before the in-place op
    b.mul_(3)
    (c.sum() + b.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(A.shape, 2 + 6.0))


def test_in_place_operands_that_require_grad(backend):
    x, y = leaf(backend), leaf(backend, a=A[::-1].copy())
    b = x * 2
    b.mul_(y)  # the product's backward needs the old b for y's gradient
    b.div_(y * y)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 / A[::-1])
    np.testing.assert_allclose(y.grad.numpy(), -2 * A / A[::-1] ** 2)


def test_a_leaf_without_grad_joins_the_graph(backend):
    w = leaf(backend)
    acc = og.zeros(3, 4, dtype=np.float64, backend=backend)
    acc += w
    acc *= w
    assert acc.requires_grad and not acc.is_leaf
    acc.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * A)


@pytest.mark.parametrize("name,call,grad", [
    ("relu_", lambda b: b.relu_(), (A > 0) * 1.0),
    ("sigmoid_", lambda b: b.sigmoid_(), np.exp(-A) / (1 + np.exp(-A)) ** 2),
    ("tanh_", lambda b: b.tanh_(), 1 - np.tanh(A) ** 2),
    ("exp_", lambda b: b.exp_(), np.exp(A)),
    ("clamp_", lambda b: b.clamp_(-0.5, 0.5), (np.abs(A) <= 0.5) * 1.0),
    ("abs_", lambda b: b.abs_(), np.sign(A)),
    ("pow_", lambda b: b.pow_(3), 3 * A ** 2),
    ("zero_", lambda b: b.zero_(), np.zeros_like(A)),
    ("masked_fill_", lambda b: b.masked_fill_(b > 0, 0.0), (A <= 0) * 1.0),
])
def test_in_place_unary_gradients(backend, name, call, grad):
    x = leaf(backend)
    b = x * 1
    call(b)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-10, atol=1e-12)


def test_writes_into_views_of_a_non_leaf_update_the_base_history(backend):
    x = leaf(backend)
    b = x * 2
    b[0].mul_(3)
    b.t()[1] += 5       # a view of a view; `+=` on an index runs getitem, iadd, setitem
    b[:, 2] = 0.0
    want = 2 * A
    want[0] *= 3
    want[:, 1] += 5
    want[:, 2] = 0
    np.testing.assert_allclose(b.numpy(), want)
    (b * b).sum().backward()
    slope = np.full(A.shape, 2.0)
    slope[0] = 6
    slope[:, 2] = 0
    np.testing.assert_allclose(x.grad.numpy(), 2 * want * slope)


def test_setitem_while_recording(backend):
    x, y = leaf(backend), leaf(backend)
    b = x * 2
    b[1:, ::2] = y[0, :2] * 3
    b[b > 2] = 0.0
    (b * b).sum().backward()
    want = 2 * A
    want[1:, ::2] = 3 * A[0, :2]
    kept = want <= 2
    want = np.where(kept, want, 0)
    gx = np.where(kept, 2 * want * 2, 0)
    gx[1:, ::2] = 0
    np.testing.assert_allclose(x.grad.numpy(), gx)
    gy = np.zeros_like(A)
    gy[0, :2] = (np.where(kept, 2 * want, 0)[1:, ::2] * 3).sum(0)
    np.testing.assert_allclose(y.grad.numpy(), gy)


def test_the_outputs_of_chunk_refuse_in_place_while_recording(backend):
    a, _ = (leaf(backend) * 1).chunk(2, 1)
    with pytest.raises(RuntimeError, match="one of the outputs of Chunk"):
        a.add_(1)


# ---------------------------------------------------------------- version checks
def test_modifying_a_saved_input_raises_at_backward(backend):
    x = leaf(backend)
    b = x * 2
    c = b * b           # Mul keeps b for its backward
    b.add_(1)
    with pytest.raises(RuntimeError, match="Mul: one of the variables needed for gradient "
                                           "computation has been modified by an inplace operation"):
        c.sum().backward()


def test_modifying_a_saved_output_raises_at_backward(backend):
    for make in (lambda x: x.exp(), lambda x: x.sigmoid(), lambda x: x.relu(),
                 lambda x: og.softmax(x, -1)):
        x = leaf(backend)
        y = make(x)
        y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_no_grad_update_of_a_saved_tensor_raises(backend):
    w, x = leaf(backend), leaf(backend, requires_grad=False)
    loss = (w * x).sum()
    with og.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        loss.backward()
    loss = (w * x).sum()  # recorded after the write: fine
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), A + 1)


def test_writes_that_backward_does_not_need_are_fine(backend):
    x = leaf(backend)
    b = x * 2
    c = b + 1           # Add keeps nothing
    d = b.sum()         # nor does Sum
    b.zero_()
    (c.sum() + d).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(A.shape, 4.0))
    w = leaf(backend)
    y = w * 3
    with og.no_grad():
        w -= 1          # the Mul keeps the constant 3, not w
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(A.shape, 3.0))


def test_version_check_through_a_view(backend):
    x = leaf(backend)
    b = x * 2
    c = b.exp()        # keeps its output
    c.view(12)[0] = 0.0
    with pytest.raises(RuntimeError, match="Exp"):
        c.sum().backward()


def test_retain_graph_second_backward_after_an_optimizer_step(backend):
    w = leaf(backend)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with og.no_grad():
        w.sub_(w.grad, alpha=0.1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_training_loop_with_in_place_updates_learns(backend):
    rng = np.random.default_rng(0)
    xs = og.tensor(rng.standard_normal((32, 3)), backend=backend)
    ys = xs @ og.tensor([[1.0], [-2.0], [0.5]], backend=backend)
    w = og.zeros(3, 1, requires_grad=True, backend=backend)
    for _ in range(60):
        loss = ((xs @ w - ys) ** 2).mean()
        w.grad = None
        loss.backward()
        with og.no_grad():
            w -= 0.1 * w.grad
    np.testing.assert_allclose(w.numpy().ravel(), [1.0, -2.0, 0.5], atol=1e-3)


@pytest.mark.parametrize("name,make", [
    ("matmul", lambda x: x @ x.T),
    ("conv2d", lambda x: og.conv2d(x.reshape(1, 1, 3, 4), og.ones(2, 1, 2, 2, dtype=np.float64,
                                                                 backend=x.backend))),
    ("layer_norm", lambda x: og.nn.functional.layer_norm(x, (4,))),
    ("batch_norm", lambda x: og.nn.functional.batch_norm(x, None, None, training=True)),
    ("gelu", lambda x: og.nn.functional.gelu(x)),
    ("leaky_relu", lambda x: og.nn.functional.leaky_relu(x, 0.1)),
    ("einsum", lambda x: og.einsum("ij,kj->ik", x, x)),
    ("index", lambda x: x[1:] * 1),
    ("sum_max", lambda x: x.sum(0) + x.max(1).values.sum()),
    ("amax_keepdim", lambda x: x.amax(1, keepdim=True)),
    ("min_all", lambda x: x.min() * 1),
])
def test_in_place_on_results_their_op_does_not_keep(backend, name, make):
    """An in-place update of an op's output (out += residual, out.relu_()) is fine when the
    op's backward does not read its output: the gradient is the op's own."""
    x = leaf(backend)
    make(x).sum().backward()
    expected = x.grad.numpy()
    x.grad = None
    y = make(x)
    y += 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_an_op_s_own_saved_arrays_are_checked_too(backend):
    x = leaf(backend)
    mask = x > 0
    y = og.where(mask, x, 0.0)  # Where keeps the condition's array
    mask.fill_(True)
    with pytest.raises(RuntimeError, match="Where: .*its saved cond"):
        y.sum().backward()
