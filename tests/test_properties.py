"""Property tests (hypothesis): broadcasting binary ops and reductions on random shapes."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import opgraph as og

shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3)


@settings(max_examples=60, deadline=None)
@given(shapes, st.sampled_from(["add", "sub", "mul", "div"]), st.integers(0, 2 ** 16))
def test_broadcasting_binary_ops_match_numpy_and_reduce_gradients(bshapes, name, seed):
    rng = np.random.default_rng(seed)
    sa, sb = bshapes.input_shapes
    a_np, b_np = rng.standard_normal(sa), rng.uniform(0.5, 2.0, sb)
    a = og.tensor(a_np, requires_grad=True)
    b = og.tensor(b_np, requires_grad=True)
    out = getattr(og, name)(a, b)
    want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[name](a_np, b_np)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    out.sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    assert og.gradcheck(lambda x, y: getattr(og, name)(x, y), [a, b])


@settings(max_examples=40, deadline=None)
@given(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), st.data())
def test_sum_and_mean_over_any_dims(shape, data):
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda d: d % len(shape),
                              max_size=len(shape)))
    keepdim = data.draw(st.booleans())
    a_np = np.random.default_rng(len(shape)).standard_normal(shape)
    a = og.tensor(a_np, requires_grad=True)
    axis = tuple(dims) if dims else None
    np.testing.assert_allclose(a.sum(axis, keepdim).numpy(), a_np.sum(axis, keepdims=keepdim))
    np.testing.assert_allclose(a.mean(axis, keepdim).numpy(), a_np.mean(axis, keepdims=keepdim))
    assert og.gradcheck(lambda x: x.mean(axis, keepdim), [a])
