"""opgraph.tropical_einsum: values and argmax-routed gradients against brute force."""
import itertools
import math

import numpy as np
import pytest

from opgraph import backends
import opgraph as og
from opgraph.ops import tropical as T
from opgraph.ops.einsum import parse

RULES = {  # name -> (⊕ picks better of two, ⊗, zero)
    "max_plus": (lambda x, y: x > y, lambda x, y: x + y, -math.inf, 0.0),
    "min_plus": (lambda x, y: x < y, lambda x, y: x + y, math.inf, 0.0),
    "max_mul": (lambda x, y: x > y, lambda x, y: x * y, 0.0, 1.0),
}


def brute(subscripts, arrays, semiring, upstream=None):
    """Enumerate every index assignment: (value, gradient per operand). The gradient sends
    upstream[out] to the entries of the winning assignment of each output entry (the
    first in lexicographic order of the labels, in order of first appearance)."""
    better, times, zero, one = RULES[semiring]
    spec = parse("brute", subscripts, [a.shape for a in arrays])
    labels = list(dict.fromkeys(x for t in spec.inputs for x in t))
    out_shape = tuple(spec.sizes[x] for x in spec.output)
    value = np.full(out_shape, zero)
    win = {}
    for assignment in itertools.product(*[range(spec.sizes[x]) for x in labels]):
        at = dict(zip(labels, assignment))
        # broadcast size-1 dims read index 0
        entries = [a[tuple(at[x] if n != 1 else 0 for x, n in zip(t, a.shape))]
                   for t, a in zip(spec.inputs, arrays)]
        v = one
        for e in entries:
            v = times(v, e)
        o = tuple(at[x] for x in spec.output)
        if o not in win or better(v, value[o]):
            value[o] = v
            win[o] = at
    grads = [np.zeros(a.shape) for a in arrays]
    if upstream is None:
        upstream = np.ones(out_shape)
    for o, at in win.items():
        pos = [tuple(at[x] if n != 1 else 0 for x, n in zip(t, a.shape))
               for t, a in zip(spec.inputs, arrays)]
        for k in range(len(arrays)):
            factor = upstream[o]
            if semiring == "max_mul":
                for j in range(len(arrays)):
                    if j != k:
                        factor = factor * arrays[j][pos[j]]
            grads[k][pos[k]] += factor
    return value, grads


CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk->ki", [(2, 3), (3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 3)]),
    ("ab,bc,cd,da->", [(2, 3), (3, 2), (2, 3), (3, 2)]),
    ("ab,bc,cd,de,ea->", [(2, 2), (2, 3), (3, 2), (2, 2), (2, 2)]),   # 5 operands
    ("ij->", [(3, 4)]),                         # lone indices: ⊕ over all
    ("ij->j", [(3, 4)]),
    ("ii->i", [(3, 3)]),
    ("iij,jk->k", [(2, 2, 3), (3, 2)]),
    ("ij,k->k", [(2, 3), (4,)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...j,jk->...k", [(2, 1, 3), (3, 2)]),
    ("ij,jk->ik", [(2, 1), (3, 2)]),            # size-1 broadcast
    (",ij->ij", [(), (2, 2)]),
    ("i,i,i->i", [(3,), (3,), (3,)]),
]


def _inputs(backend, shapes, semiring, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.random(s) + 0.1 if semiring == "max_mul" else rng.standard_normal(s)
              for s in shapes]
    tensors = [og.tensor(a, dtype=np.float64, requires_grad=True, backend=backend) for a in arrays]
    return arrays, tensors


@pytest.mark.parametrize("semiring", ["max_plus", "min_plus", "max_mul"])
@pytest.mark.parametrize("subscripts,shapes", CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_vs_brute_force(backend, semiring, subscripts, shapes):
    arrays, xs = _inputs(backend, shapes, semiring, seed=len(subscripts))
    out = og.tropical_einsum(subscripts, *xs, semiring=semiring)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    value, grads = brute(subscripts, arrays, semiring, upstream)
    np.testing.assert_allclose(out.numpy(), value, rtol=1e-12)
    got = og.grad(out, xs, grad_output=og.tensor(upstream, backend=backend))
    for g, ref in zip(got, grads):
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("semiring", ["max_plus", "min_plus", "max_mul"])
@pytest.mark.parametrize("subscripts,shapes", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_finite_differences_without_ties(semiring, subscripts, shapes):
    _, xs = _inputs("numpy", shapes, semiring, seed=3)
    og.gradcheck(lambda *t: og.tropical_einsum(subscripts, *t, semiring=semiring), xs, eps=1e-7)


def test_ties_go_to_the_lowest_index(backend):
    # every product ties: the gradient goes to k = 0 in every step, on every backend
    a = og.tensor(np.zeros((2, 3)), requires_grad=True, backend=backend)
    b = og.tensor(np.zeros((3, 2)), requires_grad=True, backend=backend)
    out = og.tropical_einsum("ij,jk->ik", a, b)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[2, 0, 0], [2, 0, 0]])
    np.testing.assert_array_equal(b.grad.numpy(), [[2, 2], [0, 0], [0, 0]])
    # lone-index reduction: first maximum in row-major order of the reduced labels
    x = og.tensor(np.array([[1.0, 5.0], [5.0, 0.0]]), requires_grad=True, backend=backend)
    og.tropical_einsum("ij->", x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1], [0, 0]])


def test_integer_weights_mis_like_network_has_one_hot_gradient(backend):
    """MIS on a triangle plus a pendant: vertex tensors [0, w], edge tensors [[0,0],[0,-inf]]."""
    edges = [(0, 1), (1, 2), (0, 2), (2, 3)]
    edge = np.array([[0.0, 0.0], [0.0, -np.inf]])
    args, verts = [], []
    for v in range(4):
        t = og.tensor(np.array([0.0, 1.0]), requires_grad=True, backend=backend)
        verts.append(t)
        args += [t, [v]]
    for u, v in edges:
        args += [og.tensor(edge, backend=backend), [u, v]]
    size = og.tropical_einsum(*args, [])
    assert size.item() == 2
    config = [int(g.numpy()[1]) for g in og.grad(size, verts)]
    assert sum(config) == 2
    assert all(not (config[u] and config[v]) for u, v in edges)
    assert config == [1, 0, 0, 1]  # ties resolved toward the lowest index


def test_more_than_52_labels_and_explicit_path(backend):
    """A max-plus chain of 60 matrices (61 integer labels) along a left-to-right path."""
    rng = np.random.default_rng(4)
    n = 60
    mats = [rng.standard_normal((2, 2)) for _ in range(n)]
    args = []
    for i, m in enumerate(mats):
        args += [og.tensor(m, backend=backend), [i, i + 1]]
    path = [(0, 1)] * (n - 1)
    out = og.tropical_einsum(*args, [0, n], optimize=path)
    ref = mats[0]
    for m in mats[1:]:
        ref = np.max(ref[:, :, None] + m[None, :, :], axis=1)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    greedy = og.tropical_einsum(*args, [0, n])
    np.testing.assert_allclose(greedy.numpy(), ref, rtol=1e-12)


def test_path_and_largest_intermediate_are_exposed():
    a, b, c = og.zeros(2, 8), og.zeros(8, 8), og.zeros(8, 2)
    op = T.TropicalEinsum("ij,jk,kl->il", "min_plus", optimize=[(1, 2), (0, 1)])
    op(a, b, c)
    assert op.path == [(1, 2), (0, 1)]
    assert op.largest_intermediate == 16
    assert op.info.largest_intermediate == 16


def test_errors():
    a = og.tensor(np.array([[1.0, -0.5], [0.0, 2.0]]))
    with pytest.raises(ValueError, match=r"semiring='max_mul'.*operand 1.*negative.*>= 0"):
        og.tropical_einsum("ij,jk->ik", og.ones(2, 2), a, semiring="max_mul")
    with pytest.raises(ValueError, match="unknown semiring 'plus_times'"):
        og.tropical_einsum("ij,jk->ik", a, a, semiring="plus_times")
    with pytest.raises(ValueError, match=r"tropical_einsum\('ij,jk->il'\).*'l' appears in no input"):
        og.tropical_einsum("ij,jk->il", a, a)
    with pytest.raises(ValueError, match="built in"):
        T.register_semiring(T.Semiring("max_plus", "max", "add", -math.inf, 0))
    with pytest.raises(ValueError, match="plus must be"):
        T.Semiring("sum_prod", "sum", "mul", 0, 1)


def test_once_differentiable():
    a = og.tensor(np.random.default_rng(0).standard_normal((2, 2)), requires_grad=True)
    out = og.tropical_einsum("ij,jk->", a, a)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        og.grad(out, [a], create_graph=True)


def test_user_semiring(backend):
    """max-min (bottleneck) semiring, registered without editing the library."""
    sr = T.register_semiring(T.Semiring("max_min_test", plus="max", times="minimum",
                                        zero=-math.inf, one=math.inf))
    assert "max_min_test" in T.semirings()
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    ta = og.tensor(a, requires_grad=True, backend=backend)
    tb = og.tensor(b, requires_grad=True, backend=backend)
    out = og.tropical_einsum("ij,jk->ik", ta, tb, semiring=sr.name)
    cand = np.minimum(a[:, :, None], b[None, :, :])
    np.testing.assert_allclose(out.numpy(), cand.max(axis=1))
    out.sum().backward()
    k = cand.argmax(axis=1)
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    for i, j in itertools.product(range(3), range(2)):
        if a[i, k[i, j]] <= b[k[i, j], j]:
            ga[i, k[i, j]] += 1
        else:
            gb[k[i, j], j] += 1
    np.testing.assert_array_equal(ta.grad.numpy(), ga)
    np.testing.assert_array_equal(tb.grad.numpy(), gb)


# ---------------------------------------------------------------------------- the kernel

def _brute_matmul(a, b, semiring):
    better, times, zero, _ = RULES[semiring]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    c = np.full(batch + (n, m), zero)
    arg = np.zeros(batch + (n, m), dtype=np.int64)
    for idx in np.ndindex(*batch, n, m):
        *bi, i, j = idx
        for l in range(k):
            v = times(a[tuple(bi) + (i, l)], b[tuple(bi) + (l, j)])
            if l == 0 or better(v, c[idx]):
                c[idx], arg[idx] = v, l
    return c, arg


@pytest.mark.parametrize("semiring", list(backends.SEMIRINGS))
def test_tropical_matmul_kernel(backend, semiring):
    rng = np.random.default_rng(6)
    a = rng.integers(0, 3, size=(2, 1, 3, 5)).astype(np.float64)   # integers: many ties
    b = rng.integers(0, 3, size=(1, 2, 5, 4)).astype(np.float64)
    c, arg = backend.tropical_matmul(backend.asarray(a), backend.asarray(b), semiring)
    ref_c, ref_arg = _brute_matmul(a, b, semiring)
    np.testing.assert_array_equal(backend.to_numpy(c), ref_c)
    np.testing.assert_array_equal(backend.to_numpy(arg), ref_arg)


@pytest.mark.parametrize("semiring", list(backends.SEMIRINGS))
def test_numpy_tropical_matmul_is_blocked(semiring, monkeypatch):
    """With a tiny block the kernel gives the same values and winners (ties across blocks
    keep the lowest index), and never builds an (n, k, m) slab larger than the block."""
    nb = backends.NumpyBackend()
    monkeypatch.setattr(nb, "tropical_block_elements", 12)
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, size=(3, 11)).astype(np.float64)
    b = rng.integers(0, 2, size=(11, 4)).astype(np.float64)
    largest = []
    import opgraph.backends.numpy_backend as nbm
    times = backends.semiring.BUILTIN[semiring].times
    fn = nbm._TIMES_UFUNC[times]

    def wrapped(x, y):
        r = fn(x, y)
        largest.append(r.size)
        return r

    monkeypatch.setitem(nbm._TIMES_UFUNC, times, wrapped)
    c, arg = nb.tropical_matmul(a, b, semiring)
    ref_c, ref_arg = _brute_matmul(a, b, semiring)
    np.testing.assert_array_equal(c, ref_c)
    np.testing.assert_array_equal(arg, ref_arg)
    assert max(largest) <= 12  # candidate blocks of at most 12 entries, never (3, 11, 4)
    assert sum(largest) == 3 * 11 * 4  # every (row, k, column) candidate is formed exactly once


def test_generic_kernel_matches_builtin(backend):
    rng = np.random.default_rng(8)
    a = backend.asarray(rng.integers(0, 3, size=(2, 3, 7)).astype(np.float64))
    b = backend.asarray(rng.integers(0, 3, size=(2, 7, 2)).astype(np.float64))
    for name in ("max_plus", "min_plus", "max_mul"):
        sr = T.get_semiring(name)
        c1, g1 = T.generic_matmul(backend, a, b, sr, block_elements=5)
        c2, g2 = backend.tropical_matmul(a, b, name)
        np.testing.assert_array_equal(backend.to_numpy(c1), backend.to_numpy(c2))
        np.testing.assert_array_equal(backend.to_numpy(g1), backend.to_numpy(g2))


def test_zero_size_dims_give_the_semiring_zero(backend):
    a = og.tensor(np.ones((2, 0)), dtype=np.float64, requires_grad=True, backend=backend)
    b = og.tensor(np.ones((0, 3)), dtype=np.float64, requires_grad=True, backend=backend)
    c = og.tropical_einsum("ij,jk->ik", a, b)
    assert c.shape == (2, 3) and (c.numpy() == -np.inf).all()
    assert (og.tropical_einsum("ij->i", a, semiring="min_plus").numpy() == np.inf).all()
    ga, gb = og.grad(c, [a, b], og.tensor(np.ones((2, 3)), backend=backend))
    assert ga.shape == (2, 0) and gb.shape == (0, 3)


def test_nan_gives_the_same_result_and_routing_on_every_backend():
    """A NaN candidate wins (the first one, as numpy.max): the result is NaN where it
    reaches and the gradient goes to the NaN's entries, identically on both CPU backends."""
    a = np.array([[1.0, np.nan, 3.0], [0.0, 2.0, 1.0]])
    b = np.array([[1.0, 0.0], [2.0, 5.0], [0.0, np.nan]])
    results = {}
    for name in ("numpy", "numba", "cuda"):
        if name not in og.backends.available():
            continue
        ta = og.tensor(a, requires_grad=True, backend=name)
        tb = og.tensor(b, requires_grad=True, backend=name)
        out = og.tropical_einsum("ij,jk->ik", ta, tb)
        ga, gb = og.grad(out, [ta, tb], og.tensor(np.ones((2, 2)), backend=name))
        results[name] = (out.numpy(), ga.numpy(), gb.numpy())
    out, ga, gb = results["numpy"]
    assert np.isnan(out[0]).all() and np.isnan(out[1, 1]) and out[1, 0] == 4.0
    np.testing.assert_array_equal(ga, [[0, 2, 0], [0, 1, 1]])   # row 0: the NaN at j = 1
    for name in results:
        for x, y in zip(results["numpy"], results[name]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("semiring", ["max_plus", "min_plus", "max_mul"])
def test_numba_contract_of_many_binary_axes_equals_numpy(semiring):
    """The Numba backend's large steps: a long reduction into a small output (copied
    contracted-axes-last by the tiled permute, one vectorised reduction per entry) and a
    permuted view as input, exactly as the NumPy backend's step, infinities included."""
    if "numba" not in backends.available():
        pytest.skip("numba is not installed")
    nb_, np_ = backends.get("numba"), backends.get("numpy")
    rng = np.random.default_rng(7)
    batch, left, contracted, right = [0, 1], [2, 3, 4], list(range(5, 16)), [16, 17]
    for dtype in (np.float32, np.float64):
        a_labels = list(rng.permutation(batch + left + contracted))
        b_labels = list(rng.permutation(batch + contracted + right))
        a = rng.integers(0, 4, (2,) * len(a_labels)).astype(dtype)
        b = rng.integers(0, 4, (2,) * len(b_labels)).astype(dtype)
        if semiring != "max_mul":
            a.reshape(-1)[rng.integers(0, a.size, 50)] = -np.inf if semiring == "max_plus" else np.inf
        view = a.transpose(rng.permutation(a.ndim))   # a permuted view, as steps pass on
        view_labels = [a_labels[list(a.strides).index(s)] for s in view.strides]
        for x, x_labels in ((a, a_labels), (view, view_labels)):
            perm_a = tuple(x_labels.index(l) for l in batch + left + contracted)
            perm_b = tuple(b_labels.index(l) for l in batch + contracted + right)
            shapes = ((4, 8, 2 ** 11), (4, 2 ** 11, 4), (4, 8, 4))
            got = nb_.tropical_contract(x, b, perm_a, shapes[0], perm_b, shapes[1], shapes[2],
                                        semiring)
            want = np_.tropical_contract(x, b, perm_a, shapes[0], perm_b, shapes[1], shapes[2],
                                         semiring)
            assert got.dtype == dtype and np.array_equal(got, want)
