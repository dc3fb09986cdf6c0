"""What several test files share: the tests of an op table, a NumPy conv2d, and the
optimizer runner with prescribed gradients."""
import numpy as np
import pytest

import opgraph as og
from opgraph import nn


def op_inputs(backend, shapes, positive, seed=0):
    """(NumPy arrays, float64 tensors that require grad) of the given shapes: standard
    normal, or |normal| + 0.5 when `positive`."""
    rng = np.random.default_rng(seed)
    arrays = [np.abs(a) + 0.5 if positive else a for a in (rng.standard_normal(s) for s in shapes)]
    return arrays, [og.tensor(a, dtype=np.float64, requires_grad=True, backend=backend)
                    for a in arrays]


def as_list(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def op_table_tests(cases):
    """The three tests of a table name -> (function, NumPy reference, input shapes, positive
    inputs only): forward against the reference (values, float64, shape) and gradcheck on
    every backend, gradgradcheck on NumPy. A test file binds them to its own names."""
    names = sorted(cases)

    @pytest.mark.parametrize("name", names)
    def test_forward_matches_numpy(name, backend):
        fn, ref, shapes, positive = cases[name]
        arrays, tensors = op_inputs(backend, shapes, positive)
        got, want = as_list(fn(*tensors)), as_list(ref(*arrays))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == np.float64 and g.shape == np.shape(w)
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)

    @pytest.mark.parametrize("name", names)
    def test_gradcheck(name, backend):
        fn, _, shapes, positive = cases[name]
        _, tensors = op_inputs(backend, shapes, positive)
        assert og.gradcheck(fn, tensors)

    @pytest.mark.parametrize("name", names)
    def test_gradgradcheck(name):
        fn, _, shapes, positive = cases[name]
        _, tensors = op_inputs("numpy", shapes, positive)
        assert og.gradgradcheck(fn, tensors)

    return test_forward_matches_numpy, test_gradcheck, test_gradgradcheck


def conv2d_ref(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """torch.nn.functional.conv2d with (h, w) pairs, by loops over the output."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for o in range(f):
        g = o // fg
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                          j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, o, i, j] = (patch * w[o]).sum((1, 2, 3))
    return out + (0 if b is None else b[None, :, None, None])


def normal_grads(shape, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def run_optimizer(opt_cls, kwargs, backend, p0, grads):
    """Run the optimizer with prescribed gradients; returns the parameter after each step."""
    p = nn.Parameter(og.tensor(p0, dtype=np.float64, backend=backend))
    opt = opt_cls([p], **kwargs)
    trail = []
    for g in grads:
        opt.zero_grad()
        p.grad = og.tensor(g, dtype=np.float64, backend=backend)
        opt.step()
        assert backend.is_array(p.data), "the update left the backend's array type"
        assert p.dtype == np.float64 and p.shape == p0.shape
        trail.append(p.numpy())
    return trail
