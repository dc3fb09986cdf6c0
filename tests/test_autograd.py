"""The tape and the reverse replay: accumulation by identity, retain_graph, released
graphs, no_grad, detach, grad(), tape.gradient, second order."""
import numpy as np
import pytest

import opgraph as og


def leaf(values, dtype=np.float64):
    return og.tensor(values, dtype=dtype, requires_grad=True)


def test_x_times_x_and_x_plus_x():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, -4, 6])
    y = leaf([1.0, 2.0])
    (y + y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [2, 2])


def test_tensor_feeding_many_ops():
    x = leaf([0.5, 1.5])
    a = x.exp()
    out = (a * x + a.sin() - x * 3 + a / x).sum()
    out.backward()
    xv = np.array([0.5, 1.5])
    e = np.exp(xv)
    want = e * xv + e + np.cos(e) * e - 3 + (e * xv - e) / xv ** 2
    np.testing.assert_allclose(x.grad.numpy(), want)


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_threads_backpropagating_into_one_leaf_lose_no_update():
    # each thread records on its own tape; the accumulation into the shared .grad is atomic
    import threading
    w = og.zeros(1000, requires_grad=True)

    def work():
        for _ in range(300):
            (w * 2.0).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(1000, 4800.0, np.float32))


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_second_backward_through_released_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with og.Tape() as tape:
        with og.no_grad():
            y = (x * 2).exp().sum()
    assert y.op is None and not y.requires_grad
    assert tape.ops == []

    @og.no_grad()
    def f(t):
        return t * 2

    @og.no_grad
    def g(t):
        return t * 2
    assert f(x).op is None and g(x).op is None and (x * 2).op is not None


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * x
    z = (y.detach() * x).sum()  # d/dx of (const * x)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 4])
    assert y.detach().op is None and not y.detach().requires_grad


def test_grad_returns_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    y = (x * w).sum()
    gx, gw = og.grad(y, [x, w])
    np.testing.assert_allclose(gx.numpy(), [3, 4])
    np.testing.assert_allclose(gw.numpy(), [1, 2])
    assert x.grad is None and w.grad is None


def test_grad_of_unused_input_is_zero():
    x, u = leaf([1.0]), leaf([5.0, 6.0])
    gx, gu = og.grad((x * 2).sum(), [x, u])
    np.testing.assert_allclose(gu.numpy(), [0, 0])


def test_grad_allow_unused_and_materialize_grads_as_torch():
    x, u = leaf([1.0]), leaf([5.0, 6.0])
    y = (x * 2).sum()
    gx, gu = og.grad(y, [x, u], retain_graph=True, allow_unused=True)
    assert gu is None and gx.numpy().tolist() == [2.0]
    gx, gu = og.grad(y, [x, u], retain_graph=True, allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(gu.numpy(), [0, 0])
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(2,\)\) was not used"):
        og.grad(y, [x, u], retain_graph=True, allow_unused=False)
    with pytest.raises(ValueError, match="materialize_grads=True needs allow_unused"):
        og.grad(y, [x, u], allow_unused=False, materialize_grads=True)
    # reached only through an integer op (argmax): not used, as in torch
    (gu,) = og.grad(y + u.argmax(), [u], allow_unused=True)
    assert gu is None


def test_tape_records_ops_in_order_and_gradient():
    x = leaf([1.0, 2.0])
    with og.Tape() as tape:
        y = x.exp()
        z = (y * 2).sum()
    assert [op.name for op in tape.ops] == ["Exp", "Mul", "SumDim"]
    assert "Exp" in str(tape) and "(2,)" in str(tape)
    (g,) = tape.gradient(z, [x])
    np.testing.assert_allclose(g.numpy(), 2 * np.exp([1.0, 2.0]))


def test_backward_releases_the_ops_from_the_tape():
    x = leaf([1.0, 2.0])
    with og.Tape() as tape:
        loss = (x * x).sum()
        assert len(tape.ops) == 2
        loss.backward()
        assert tape.ops == []


def test_backward_on_non_scalar_needs_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    for error in (ValueError, RuntimeError):  # opgraph's shape errors; torch's RuntimeError
        with pytest.raises(error, match=r"non-scalar.*\(2,\)"):
            y.backward()
    y.backward(og.tensor([1.0, 10.0], dtype=np.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2, 20])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        og.tensor([1.0]).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        og.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        og.tensor([1, 2]).requires_grad_()


def test_multi_output_chunk_with_some_outputs_unused():
    x = leaf(np.arange(6.0))
    a, b, c = og.chunk(x, 3)
    (b * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 5, 5, 0, 0])
    assert isinstance(a.op, og.MultiOutputOperation) and a.op is b.op


def test_hessian_vector_product_of_small_mlp_matches_finite_differences():
    rng = np.random.default_rng(0)
    w1 = og.tensor(rng.standard_normal((3, 5)), dtype=np.float64, requires_grad=True)
    w2 = og.tensor(rng.standard_normal((5, 2)), dtype=np.float64, requires_grad=True)
    xb = og.tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    tb = og.tensor([0, 1, 1, 0])
    v1, v2 = rng.standard_normal((3, 5)), rng.standard_normal((5, 2))

    def loss_of(a, b):
        return og.cross_entropy((xb @ a).tanh() @ b, tb)

    g1, g2 = og.grad(loss_of(w1, w2), [w1, w2], create_graph=True)
    dot = (g1 * og.tensor(v1, dtype=np.float64)).sum() + (g2 * og.tensor(v2, dtype=np.float64)).sum()
    h1, h2 = og.grad(dot, [w1, w2])

    def gradient_at(a, b):
        ta = og.tensor(a, dtype=np.float64, requires_grad=True)
        tb_ = og.tensor(b, dtype=np.float64, requires_grad=True)
        return [g.numpy() for g in og.grad(loss_of(ta, tb_), [ta, tb_])]

    eps = 1e-6
    plus = gradient_at(w1.numpy() + eps * v1, w2.numpy() + eps * v2)
    minus = gradient_at(w1.numpy() - eps * v1, w2.numpy() - eps * v2)
    np.testing.assert_allclose(h1.numpy(), (plus[0] - minus[0]) / (2 * eps), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h2.numpy(), (plus[1] - minus[1]) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_gradient_penalty_double_backward_through_relu_mlp():
    x = leaf([[0.3, -0.7]])
    w = leaf([[1.0, -2.0], [0.5, 0.25]])
    (gx,) = og.grad((x @ w).sigmoid().sum(), [x], create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    assert w.grad is not None and np.all(np.isfinite(w.grad.numpy()))
    assert og.gradcheck(lambda w_: (og.grad((x @ w_).sigmoid().sum(), [x], create_graph=True)[0] ** 2).sum(),
                        [w])


def test_once_differentiable_op_refuses_second_order():
    class Cube(og.Operation):
        """y = x³; dx = 3x²·dy computed from the raw array (so once-differentiable)"""
        once_differentiable = True

        def forward(self, x):
            return self.backend.binary("pow", x, 3)

        def backward(self, grad):
            x = self.inputs[0].data
            return (grad * self.constant(self.backend.binary("mul", 3.0, self.backend.binary("mul", x, x))),)

    x = leaf([2.0])
    (g,) = og.grad(Cube()(x).sum(), [x])
    np.testing.assert_allclose(g.numpy(), [12.0])
    with pytest.raises(RuntimeError, match="once-differentiable"):
        og.grad(Cube()(x).sum(), [x], create_graph=True)


def test_user_defined_op_needs_nothing_else():
    class Square(og.Operation):
        """y = x²;  dx = 2·x·dy"""

        def forward(self, x):
            return self.backend.binary("mul", x, x)

        def backward(self, grad):
            (x,) = self.inputs
            return (grad * 2 * x,)

    x = leaf([1.0, -3.0])
    assert og.gradcheck(lambda t: Square()(t), [x])
    assert og.gradgradcheck(lambda t: Square()(t), [x])


def test_user_defined_op_mistakes_are_named():
    class Identity(og.Operation):
        def forward(self, x, *rest):
            return x

    class ArrayGrad(Identity):
        def backward(self, grad):
            return (np.ones(2),)

    class BareGrad(Identity):
        def backward(self, grad):
            return grad

    class ListForward(og.Operation):
        def forward(self, x):
            return [1.0, 2.0]

    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match=r"ArrayGrad.backward must return Tensors \(or None\), "
                                        r"got ndarray for an input of shape \(2,\)"):
        ArrayGrad()(x).sum().backward()
    BareGrad()(x).sum().backward()  # one Tensor for one input is fine, as in torch
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])
    with pytest.raises(TypeError, match=r"BareGrad.backward must return a tuple with one Tensor "
                                        r"\(or None\) per input \(2 inputs\), got Tensor"):
        BareGrad()(x, x).sum().backward()
    with pytest.raises(TypeError, match="ListForward.forward must return an array of the numpy "
                                        "backend, got list"):
        ListForward()(x)


def test_gradcheck_reports_input_index_and_values():
    class WrongSquare(og.Operation):
        def forward(self, x):
            return self.backend.binary("mul", x, x)

        def backward(self, grad):
            return (grad * 3 * self.inputs[0],)

    with pytest.raises(og.GradcheckError, match=r"input 0 .* index \(0,\).*analytic.*numeric"):
        og.gradcheck(lambda t: WrongSquare()(t), [leaf([1.0, 2.0])])


def test_wrong_gradient_shape_from_user_op_is_reported():
    class Bad(og.Operation):
        def forward(self, x):
            return x

        def backward(self, grad):
            return (grad.sum(),)

    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape"):
        Bad()(leaf([1.0, 2.0])).sum().backward()


def test_tensor_basics():
    x = og.tensor([[1, 2], [3, 4]])
    assert x.dtype == np.int64 and x.shape == (2, 2) and x.ndim == 2
    y = og.tensor([1.5, 2.5])
    assert y.dtype == np.float32
    assert og.tensor(np.zeros(2)).dtype == np.float64
    assert og.zeros(2, 3).shape == (2, 3) and og.ones((2,)).numpy().tolist() == [1, 1]
    np.testing.assert_array_equal(og.randn(3, seed=1).numpy(), og.randn(3, seed=1).numpy())
    assert og.tensor([[2.0]]).item() == 2.0
    a = np.arange(3.0)
    shared = og.from_numpy(a)
    a[0] = 7
    assert shared.numpy()[0] == 7 and shared.dtype == np.float64
    assert (np.ones(2) + og.tensor([1.0, 2.0])).numpy().tolist() == [2, 3]


def test_data_is_assignable_for_in_place_updates():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    w.data = w.data - 0.5 * w.grad.data
    np.testing.assert_allclose(w.numpy(), [0, 0])


def test_pow_with_a_tensor_exponent_handles_negative_and_zero_bases():
    a = og.tensor([-2.0, 0.0, 3.0], dtype=np.float64, requires_grad=True)
    b = og.tensor([2.0, 2.0, 0.5], dtype=np.float64, requires_grad=True)
    y = a ** b
    np.testing.assert_allclose(y.numpy(), [4.0, 0.0, np.sqrt(3.0)])
    with np.errstate(invalid="ignore"):
        y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [-4.0, 0.0, 0.5 / np.sqrt(3.0)])
    # d/db a^b = a^b log a: 0 at a = 0 (as torch), undefined (NaN) for a negative base
    assert np.isnan(b.grad.numpy()[0])
    np.testing.assert_allclose(b.grad.numpy()[1:], [0.0, np.sqrt(3.0) * np.log(3.0)])


def test_grad_wrt_an_intermediate_leaves_the_graph_above_it_alone():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = (y * y).sum()
    (gy,) = og.grad(z, [y])
    np.testing.assert_allclose(gy.numpy(), 2 * y.numpy())
    y.sum().backward()  # the op that made y was not needed, so not released
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    # ...but an op both above y and on a path to x is used for x
    x2 = leaf([3.0])
    y2 = x2 * 2
    gy2, gx2 = og.grad((y2 * x2).sum(), [y2, x2])
    np.testing.assert_allclose([gy2.item(), gx2.item()], [3.0, 12.0])


def test_leaf_grads_are_writable_and_not_shared():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    g = og.tensor([1.0, 1.0], dtype=np.float64)
    (a + b).backward(g)
    assert a.grad is not b.grad and a.grad is not g
    a.grad.data *= 0.5  # in-place gradient clipping, as torch users do
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0])
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    x.sum().backward()  # the gradient of sum is a broadcast: .grad is still its own array
    x.grad.data *= 0.0
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


def test_each_grad_keeps_its_tensors_dtype():
    x32 = leaf([1.0, 2.0], dtype=np.float32)
    y64 = leaf([3.0, 4.0])
    out = x32 + y64
    assert out.dtype == np.float64  # float32 with float64 promotes, as NumPy and torch
    out.sum().backward()
    assert x32.grad.dtype == np.float32 and y64.grad.dtype == np.float64
    # an integer tensor meeting a float32 one does not promote it (torch's rule)
    n = og.tensor([1, 2])
    assert (x32 * n).dtype == np.float32
    assert og.where(x32 > 1, x32, og.tensor([0, 0])).dtype == np.float32
    assert og.cat([x32, n]).dtype == np.float32


def test_an_op_instance_is_applied_once():
    from opgraph.ops.elementwise import Mul
    a, b = leaf([1.0]), leaf([2.0])
    op = Mul()
    op(a, b)
    with pytest.raises(RuntimeError, match="Mul: this op instance was already applied"):
        op(a, b)


def test_enable_grad_as_a_decorator_turns_recording_on():
    x = leaf([1.0])

    @og.enable_grad()
    def inner():
        return x * 2

    with og.no_grad():
        assert inner().requires_grad
        assert not (x * 2).requires_grad


def test_comparisons_are_elementwise_and_tensors_stay_hashable():
    x = og.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal((x == og.tensor([1.0, 0.0, 3.0])).numpy(), [True, False, True])
    np.testing.assert_array_equal((x != 2).numpy(), [True, False, True])
    assert int((x == x).astype(np.int64).sum().item()) == 3
    assert (x == None) is False and x not in [None, "x"]  # noqa: E711
    assert len({x, x, og.tensor([1.0])}) == 2


def test_dims_of_a_0d_tensor_and_empty_reductions_as_torch():
    s = og.tensor(3.0)
    assert s.sum(0).item() == 3.0 and s.sum(-1).item() == 3.0
    assert s.flatten().shape == (1,)
    assert np.isnan(og.zeros(0).mean().item())
    assert [c.shape for c in og.zeros(0, 3).chunk(3)] == [(0, 3)] * 3


def test_transpose_two_ints_swap_and_permute_permutes():
    x = og.zeros(2, 3)
    assert x.transpose(0, 1).shape == (3, 2) and x.transpose(-1, -2).shape == (3, 2)
    assert x.transpose((0, 1)).shape == (2, 3)  # one tuple: a permutation (NumPy)
    assert x.permute(0, 1).shape == (2, 3) and x.permute(1, 0).shape == (3, 2)
    assert og.zeros(2, 3, 4).transpose(0, 2).shape == (4, 3, 2)


def test_gradcheck_perturbs_fortran_ordered_inputs():
    x = og.tensor(np.asfortranarray(np.random.default_rng(0).random((2, 3))), requires_grad=True)
    assert og.gradcheck(lambda a: (a * a).sum(), [x])


def test_gradgradcheck_names_the_second_order():
    class BadSquare(og.Operation):
        """y = x²; dx = 2·x·dy, written with a wrong second derivative"""
        def forward(self, x):
            return self.backend.binary("mul", x, x)

        def backward(self, grad):
            (x,) = self.inputs
            return (grad * 2 * x.detach() + 0 * x,)  # detach: the second order is lost

    x = leaf([1.0, 2.0])
    assert og.gradcheck(lambda a: BadSquare()(a), [x])
    with pytest.raises(og.GradcheckError, match=r"gradgradcheck \(second order"):
        og.gradgradcheck(lambda a: BadSquare()(a), [x])


def test_retain_grad_keeps_a_non_leaf_gradient_as_torch():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.retain_grad()
    assert y.retains_grad and not x.retains_grad
    z.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.numpy(), [6, 12])
    assert z.grad.item() == 1.0 and x.grad.numpy().tolist() == [18, 36]
    z.backward()  # accumulates, as a leaf's .grad does
    np.testing.assert_allclose(y.grad.numpy(), [12, 24])
    a = leaf([1.0, 2.0])
    b = a + 0  # Add passes the gradient on as it is: .grad of a and b must not share it
    b.retain_grad()
    b.sum().backward()
    a.grad.mul_(0)
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1])
    with pytest.raises(RuntimeError, match="retain_grad: the tensor .* does not require grad"):
        og.tensor([1.0]).retain_grad()


def test_only_a_leaf_can_stop_requiring_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="requires_grad_: only a leaf's flag can be changed; "
                                           "this tensor was computed by Mul"):
        (x * 2).requires_grad_(False)
    assert not x.requires_grad_(False).requires_grad


def test_gradcheck_of_a_function_without_a_float_output_is_named():
    with pytest.raises(ValueError, match=r"gradcheck: fn has no floating-point output .*int64"):
        og.gradcheck(lambda t: t.argmax(), [leaf([1.0, 2.0])])


def test_backward_grad_on_another_backend_or_dtype():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="backward: grad lives on backend numba, the output on "
                                         "numpy"):
        (x * 2).backward(og.ones(2, backend="numba"))
    (x * 2).backward(og.tensor([1, 3]))  # an integer grad takes the output's dtype
    assert x.grad.dtype == np.float64 and x.grad.numpy().tolist() == [2, 6]
    (gx,) = og.grad(x * x, [x], og.ones(2, dtype=np.float32))
    assert gx.dtype == np.float64


def test_gradcheck_can_return_false_instead_of_raising():
    class WrongSquare(og.Operation):
        def forward(self, x):
            return self.backend.binary("mul", x, x)

        def backward(self, grad):
            return (grad * 3 * self.inputs[0],)

    x = leaf([1.0, 2.0])
    assert og.gradcheck(lambda t: WrongSquare()(t), [x], raise_exception=False) is False

    class FirstOrderSquare(WrongSquare):  # right once, but its backward drops x's graph
        def backward(self, grad):
            return (grad * 2 * self.inputs[0].detach(),)

    assert og.gradcheck(lambda t: FirstOrderSquare()(t), [x])
    assert og.gradgradcheck(lambda t: FirstOrderSquare()(t), [x], raise_exception=False) is False
    assert og.gradcheck(lambda t: t * t, [x], raise_exception=False) is True


def test_grad_outputs_one_per_output_under_either_name():
    x = leaf([1.0, 2.0])
    y1, y2 = x * 2, (x * x).sum()
    g = og.grad([y1, y2], [x], grad_outputs=[og.tensor([1.0, 1.0], dtype=np.float64), None],
                retain_graph=True)
    np.testing.assert_allclose(g[0].numpy(), [4, 6])  # 2 + 2x
    with pytest.raises(ValueError, match="grad: 1 grad_output for 2 outputs"):
        og.grad([y1, y2], [x], [og.ones(2, dtype=np.float64)], retain_graph=True)
    with pytest.raises(TypeError, match="grad: give grad_output or grad_outputs, not both"):
        og.grad(y1, [x], og.ones(2), grad_outputs=og.ones(2))


def test_first_order_backward_shortcuts_agree_with_the_differentiable_backward(backend):
    # MatMul, ReLU and the broadcast sum of a bias call the backend directly in a
    # first-order backward and build ops under create_graph: both give one gradient
    rng = np.random.default_rng(7)
    x = og.tensor(rng.standard_normal((3, 4)), dtype=np.float64, backend=backend)
    w1 = og.tensor(rng.standard_normal((4, 5)), dtype=np.float64, requires_grad=True,
                   backend=backend)
    b1 = og.tensor(rng.standard_normal(5), dtype=np.float64, requires_grad=True, backend=backend)
    w2 = og.tensor(rng.standard_normal((5, 2)), dtype=np.float64, requires_grad=True,
                   backend=backend)
    params = [w1, b1, w2]

    def loss():
        return og.cross_entropy((x @ w1 + b1).relu() @ w2, og.tensor([0, 1, 1], backend=backend))

    first = og.grad(loss(), params)
    ops = og.grad(loss(), params, create_graph=True)
    for g, h in zip(first, ops):
        assert g.requires_grad is False and h.requires_grad is True
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-12, atol=1e-14)
    og.gradcheck(lambda a, b, c: og.cross_entropy((x @ a + b).relu() @ c,
                                                  og.tensor([0, 1, 1], backend=backend)),
                 params)
